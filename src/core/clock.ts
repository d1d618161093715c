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

export interface SleepOptions {
  /**
   * Hold the process open while waiting: a reload waiting for its service (`confhub once` has
   * nothing else keeping it running). Background retries do not.
   */
  readonly keepAlive?: boolean;
}

/** Resolves after `ms` (at least 0) on the given clock. */
export function sleep(clock: Clock, ms: number, { keepAlive = false }: SleepOptions = {}): Promise<void> {
  return new Promise((resolve) => {
    const timer = clock.setTimeout(resolve, Math.max(0, ms));
    if (!keepAlive) timer.unref();
  });
}
