/**
 * A Clock that moves only when a test says so. Timers fire in due order (equal due times in the
 * order they were set), and after each one the promise chains it started are given the chance to
 * settle, so a test can say "after 100 ms exactly one run happened; at 99 ms none had".
 *
 * Real I/O (a file read, an HTTP request, a daemon's answer) does not follow this clock: where the
 * code under test waits on both, run() lets the I/O take the real time it needs and moves the
 * clock only while the code waits on one of its timers.
 */
import type { Clock, TimerHandle } from '../../src/core/clock.js';

interface Timer {
  readonly id: number;
  readonly due: number;
  readonly callback: () => void;
}

export interface ManualClock extends Clock {
  /** Moves the clock by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): Promise<void>;
  /** Fires every timer, including those set while firing, until none is left. */
  runAll(options?: { maxTimers?: number }): Promise<void>;
  /**
   * Settles `promise` while firing the next timer whenever the code waits on nothing but this
   * clock; between timers it waits in real time for the I/O in flight.
   */
  run<T>(promise: Promise<T>, options?: { maxTimers?: number }): Promise<T>;
  /** Due times of the pending timers, earliest first. */
  pendingDue(): number[];
  /** Lets promise chains and callbacks of I/O that already completed run. */
  settle(): Promise<void>;
}

/** setImmediate turns: enough for chains of awaits between a timer and the next thing it waits on. */
const SETTLE_TURNS = 20;
const DEFAULT_MAX_TIMERS = 10_000;

export function createManualClock(options: { startAt?: number } = {}): ManualClock {
  let current = options.startAt ?? Date.parse('2026-01-01T00:00:00Z');
  let nextId = 1;
  const timers = new Map<number, Timer>();
  const idOf = new WeakMap<TimerHandle, number>();

  function earliest(): Timer | undefined {
    let found: Timer | undefined;
    for (const timer of timers.values()) {
      if (!found || timer.due < found.due || (timer.due === found.due && timer.id < found.id)) found = timer;
    }
    return found;
  }

  async function settle(): Promise<void> {
    for (let i = 0; i < SETTLE_TURNS; i++) await new Promise<void>((resolve) => setImmediate(resolve));
  }

  async function fire(timer: Timer): Promise<void> {
    timers.delete(timer.id);
    current = Math.max(current, timer.due);
    timer.callback();
    await settle();
  }

  function tooMany(maxTimers: number): Error {
    return new Error(`manual clock: more than ${maxTimers} timers fired; is a timer re-arming itself forever?`);
  }

  const clock: ManualClock = {
    now: () => current,
    setTimeout(callback, ms) {
      const timer: Timer = { id: nextId++, due: current + Math.max(0, ms), callback };
      timers.set(timer.id, timer);
      const handle: TimerHandle = { unref: () => handle };
      idOf.set(handle, timer.id);
      return handle;
    },
    clearTimeout(handle) {
      const id = handle === undefined ? undefined : idOf.get(handle);
      if (id !== undefined) timers.delete(id);
    },
    async advance(ms) {
      const target = current + ms;
      await settle();
      for (;;) {
        const next = earliest();
        if (!next || next.due > target) break;
        await fire(next);
      }
      current = target;
      await settle();
    },
    async runAll({ maxTimers = DEFAULT_MAX_TIMERS } = {}) {
      await settle();
      for (let fired = 0; ; fired++) {
        const next = earliest();
        if (!next) return;
        if (fired >= maxTimers) throw tooMany(maxTimers);
        await fire(next);
      }
    },
    async run(promise, { maxTimers = DEFAULT_MAX_TIMERS } = {}) {
      let settled = false;
      const done = promise.then(
        () => {
          settled = true;
        },
        () => {
          settled = true;
        },
      );
      let fired = 0;
      for (;;) {
        await settle();
        if (settled) break;
        const next = earliest();
        if (next) {
          if (fired++ >= maxTimers) throw tooMany(maxTimers);
          await fire(next);
        } else {
          // Nothing due on this clock: the code waits for real I/O.
          await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 5))]);
        }
      }
      return promise;
    },
    pendingDue: () => [...timers.values()].sort((a, b) => a.due - b.due || a.id - b.id).map((t) => t.due),
    settle,
  };
  return clock;
}
