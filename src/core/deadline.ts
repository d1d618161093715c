/**
 * A deadline on a promise: settles as the promise does, or rejects with the error onTimeout()
 * returns once timeoutMs have passed. The work behind the promise is not cancelled (callers give
 * their own timeouts to the I/O); this only stops a caller from waiting longer than promised.
 */
export function withDeadline<T>(promise: Promise<T>, timeoutMs: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), timeoutMs);
    // A deadline alone must not keep the process alive.
    timer.unref();
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
