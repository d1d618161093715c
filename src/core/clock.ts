/**
 * Time as a dependency: the debounce, the source watcher's poll and every retry loop take a Clock,
 * so tests drive them with a manual clock instead of sleeping and hoping a busy CI keeps up.
 */
export interface TimerHandle {
  /** A timer alone must not keep the process alive. */
  unref(): unknown;
}

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (callback: () => void, ms: number): TimerHandle => setTimeout(callback, ms),
  clearTimeout: (handle: TimerHandle | undefined) => {
    if (handle !== undefined) clearTimeout(handle as NodeJS.Timeout);
  },
});

/** Resolves after `ms` on the given clock; the timer never holds the process open. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => {
    clock.setTimeout(resolve, ms).unref();
  });
}
