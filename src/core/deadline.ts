/**
 * A deadline on a promise: settles as the promise does, or rejects with the error onTimeout()
 * returns once timeoutMs have passed on the clock. The work behind the promise is not cancelled
 * (callers give their own timeouts to the I/O); this only stops a caller from waiting longer than
 * promised.
 */
import { systemClock, type Clock } from './clock.js';

export interface DeadlineInput {
  readonly timeoutMs: number;
  readonly onTimeout: () => Error;
  readonly clock?: Clock;
}

export function withDeadline<T>(promise: Promise<T>, { timeoutMs, onTimeout, clock = systemClock }: DeadlineInput): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = clock.setTimeout(() => reject(onTimeout()), timeoutMs);
    // A deadline alone must not keep the process alive.
    timer.unref();
    promise.then(
      (value) => {
        clock.clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clock.clearTimeout(timer);
        reject(error);
      },
    );
  });
}
