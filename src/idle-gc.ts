/**
 * Gives memory back once a burst of work is over. Under load V8 grows the main thread's young
 * generation to 32 MiB and lets promoted garbage pile up in the old one; it shrinks both only
 * after a full collection, and its own idle-time collector (the memory reducer) is started by a
 * full collection during the load, which a load of small requests may never cause. Measured after
 * 10 s of GETs: 147 MiB resident 30 s later, 97 MiB after one full collection.
 *
 * So every few seconds this looks at the thread: when its event loop was busy less than 1 % of the
 * time since the last look, little was allocated and no work was reported (it is idle), and the
 * heap grew by more than a threshold since the last collection, it runs one full collection (a few
 * tens of milliseconds, at a time nothing waits). Under load V8 keeps its own heuristics: a
 * collection in the middle of a slow trickle of changes would find a young generation it does not
 * shrink while allocation goes on, and hide the growth from the next look. Each thread has its
 * own heap and runs its own (the sync worker's held 25 MiB after 500 changes, 14 MiB of it live).
 */
import { performance } from 'node:perf_hooks';
import { runInNewContext } from 'node:vm';
import v8 from 'node:v8';
import type { Logger } from 'pino';
import { systemClock, type Clock, type TimerHandle } from './core/clock.js';

export interface HeapSample {
  /** Bytes of live and not yet collected objects. */
  readonly usedBytes: number;
  /** Bytes of the heap backed by memory (what shows in the resident size). */
  readonly physicalBytes: number;
}

export interface IdleGcOptions {
  readonly logger: Logger;
  readonly clock?: Clock;
  /** How often the heap is looked at. */
  readonly intervalMs?: number;
  /** Less allocated than this between two looks counts as idle. */
  readonly quietBytes?: number;
  /** A smaller share of the time spent working between two looks counts as idle. */
  readonly maxBusy?: number;
  /** Growth of the heap since the last collection that is worth giving back. */
  readonly growthBytes?: number;
  /**
   * Defaults: v8.getHeapStatistics, the event loop's utilization since the last call, and a full
   * collection through V8's gc extension.
   */
  readonly sample?: () => HeapSample;
  readonly busy?: () => number;
  readonly collect?: () => void;
}

export interface IdleGc {
  /** Work happened (a request, a sync run): the next look does not count as idle. */
  activity(): void;
  stop(): void;
}

const DEFAULT_INTERVAL_MS = 5000;
const DEFAULT_QUIET_BYTES = 1024 * 1024;
const DEFAULT_MAX_BUSY = 0.01;
const DEFAULT_GROWTH_BYTES = 4 * 1024 * 1024;

function v8Sample(): HeapSample {
  const { used_heap_size: usedBytes, total_physical_size: physicalBytes } = v8.getHeapStatistics();
  return { usedBytes, physicalBytes };
}

/** The share of the time this thread's event loop worked since the last call. */
function eventLoopBusy(): () => number {
  let previous = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const { utilization } = performance.eventLoopUtilization(now, previous);
    previous = now;
    return utilization;
  };
}

/**
 * V8's full collection, compacting. Node offers it only with --expose-gc at start; the flag set now
 * applies to contexts created after it, so a new context hands the function over. The flag stays
 * set for this process: the other thread takes its own function the same way. Without compaction
 * a collection frees objects but keeps most pages (a few survivors on each): the sync worker's
 * old space stayed at 15.5 MiB physical for 7.6 MiB of objects.
 */
export function fullCollection(): (() => void) | undefined {
  v8.setFlagsFromString('--expose-gc');
  const gc: unknown = runInNewContext('gc');
  if (typeof gc !== 'function') return undefined;
  return () => {
    v8.setFlagsFromString('--compact-on-every-full-gc');
    try {
      (gc as () => void)();
    } finally {
      v8.setFlagsFromString('--no-compact-on-every-full-gc');
    }
  };
}

export function startIdleGc(options: IdleGcOptions): IdleGc {
  const {
    clock = systemClock,
    intervalMs = DEFAULT_INTERVAL_MS,
    quietBytes = DEFAULT_QUIET_BYTES,
    growthBytes = DEFAULT_GROWTH_BYTES,
    maxBusy = DEFAULT_MAX_BUSY,
    sample = v8Sample,
    busy = eventLoopBusy(),
  } = options;
  const log = options.logger.child({ module: 'idle-gc' });
  const collect = options.collect ?? fullCollection();
  if (!collect) {
    log.warn('no full garbage collection available; memory is given back only when V8 decides to');
    return { activity: () => undefined, stop: () => undefined };
  }
  let last: HeapSample | undefined;
  /** The smallest physical heap size since the last collection; none before the first one. */
  let floor: number | undefined;
  let timer: TimerHandle | undefined;
  let stopped = false;
  let active = false;

  function look(): void {
    const now = sample();
    const allocated = last === undefined ? Number.POSITIVE_INFINITY : now.usedBytes - last.usedBytes;
    const worked = busy();
    // A drop means a collection ran since the last look: something was allocating.
    const idle = !active && worked < maxBusy && allocated >= 0 && allocated < quietBytes;
    active = false;
    last = now;
    if (floor !== undefined) floor = Math.min(floor, now.physicalBytes);
    if (idle && now.physicalBytes > (floor ?? 0) + growthBytes) {
      const started = clock.now();
      collect!();
      last = sample();
      floor = last.physicalBytes;
      log.debug({ fromBytes: now.physicalBytes, toBytes: floor, busy: worked, durationMs: clock.now() - started }, 'collected garbage while idle');
    }
    schedule();
  }

  function schedule(): void {
    if (stopped) return;
    timer = clock.setTimeout(look, intervalMs);
    timer.unref();
  }

  schedule();
  return {
    activity() {
      active = true;
    },
    stop() {
      stopped = true;
      clock.clearTimeout(timer);
    },
  };
}
