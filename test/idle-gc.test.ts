/**
 * The idle collector: when it collects (idle after growth), when it leaves V8 alone (allocation
 * going on, nothing grown), and that the collection it takes from V8 is a real one.
 */
import v8 from 'node:v8';
import { describe, expect, it } from 'vitest';
import { fullCollection, startIdleGc, type HeapSample } from '../src/idle-gc.js';
import { createLogger } from '../src/log.js';
import { createManualClock } from './support/manual-clock.js';

const MiB = 1024 * 1024;
const logger = createLogger({ level: 'silent' });

/** A heap the test moves by hand; a collection drops it to `live`. */
function fakeHeap(start: HeapSample & { live: number }) {
  let heap = { ...start };
  let collections = 0;
  return {
    sample: (): HeapSample => ({ usedBytes: heap.usedBytes, physicalBytes: heap.physicalBytes }),
    collect: (): void => {
      collections++;
      heap = { ...heap, usedBytes: heap.live, physicalBytes: heap.live + 2 * MiB };
    },
    allocate(bytes: number, grow = 0): void {
      heap = { ...heap, usedBytes: heap.usedBytes + bytes, physicalBytes: heap.physicalBytes + grow };
    },
    collections: () => collections,
  };
}

/** An idle collector looking every 5 s at a fake heap, on a manual clock. */
function started(heapAt: HeapSample & { live: number } = { usedBytes: 40 * MiB, physicalBytes: 60 * MiB, live: 15 * MiB }) {
  const clock = createManualClock();
  const heap = fakeHeap(heapAt);
  let busy = 0;
  const idle = startIdleGc({ logger, clock, intervalMs: 5000, sample: heap.sample, collect: heap.collect, busy: () => busy });
  return {
    clock,
    heap,
    idle,
    /** The share of the time the thread works from now on. */
    working: (share: number) => {
      busy = share;
    },
  };
}

describe('idle collector', () => {
  it('when the heap grew and then nothing is allocated, then one full collection runs, and no other while it stays idle', async () => {
    const { clock, heap, idle } = started();
    await clock.advance(5000);
    expect(heap.collections()).toBe(0); // the first look has nothing to compare with
    await clock.advance(5000);
    expect(heap.collections()).toBe(1);
    await clock.advance(60_000);
    expect(heap.collections()).toBe(1);
    idle.stop();
  });

  it('when something allocates between every two looks, then it never collects, whatever the heap size', async () => {
    const { clock, heap, idle } = started({ usedBytes: 40 * MiB, physicalBytes: 90 * MiB, live: 15 * MiB });
    for (let i = 0; i < 20; i++) {
      heap.allocate(2 * MiB);
      await clock.advance(5000);
    }
    expect(heap.collections()).toBe(0);
    idle.stop();
  });

  it('when a burst grows the heap again after a collection, then it collects again once idle; light traffic still counts as idle', async () => {
    const { clock, heap, idle } = started();
    await clock.advance(10_000);
    expect(heap.collections()).toBe(1);
    // Growth below the threshold is not worth a pause.
    heap.allocate(3 * MiB, 3 * MiB);
    await clock.advance(15_000);
    expect(heap.collections()).toBe(1);
    heap.allocate(30 * MiB, 30 * MiB);
    await clock.advance(5000);
    // A health check now and then allocates a little.
    heap.allocate(64 * 1024);
    await clock.advance(5000);
    expect(heap.collections()).toBe(2);
    idle.stop();
  });

  it('when the event loop works 1 % of the time or more, then it does not collect, however little was allocated', async () => {
    const { clock, heap, idle, working } = started();
    working(0.02);
    await clock.advance(60_000);
    expect(heap.collections()).toBe(0);
    working(0.001);
    await clock.advance(5000);
    expect(heap.collections()).toBe(1);
    idle.stop();
  });

  it('when work is reported between two looks, then it waits for a look without any, however little was allocated', async () => {
    const { clock, heap, idle } = started();
    await clock.advance(5000);
    for (let i = 0; i < 5; i++) {
      idle.activity();
      await clock.advance(5000);
    }
    expect(heap.collections()).toBe(0);
    await clock.advance(5000);
    expect(heap.collections()).toBe(1);
    idle.stop();
  });

  it('when stopped, then it looks no more', async () => {
    const { clock, idle } = started();
    idle.stop();
    expect(clock.pendingDue()).toEqual([]);
  });

  it('when old objects die with a few survivors on every page, then the collection compacts and gives the pages back', () => {
    const collect = fullCollection()!;
    const physical = (): number => v8.getHeapStatistics().total_physical_size;
    let big: { a: number; b: string }[] | undefined = [];
    for (let i = 0; i < 400_000; i++) big.push({ a: i, b: `x${i}` });
    const survivors = big.filter((_, i) => i % 50 === 0);
    collect();
    collect();
    const before = physical();
    big = undefined;
    collect();
    // Without compaction about 4 MiB of some 40 come back; with it, most of them.
    expect(before - physical()).toBeGreaterThan(15 * MiB);
    expect(survivors).toHaveLength(8000);
  });

  it("when V8's own collection is taken, then it frees unreachable objects", () => {
    const collect = fullCollection();
    expect(collect).toBeTypeOf('function');
    let freed = false;
    const probe = new FinalizationRegistry<string>(() => {
      freed = true;
    });
    (() => {
      const garbage = { payload: new Array(1000).fill('x') };
      probe.register(garbage, 'garbage');
    })();
    collect!();
    // Finalizers run after the collection, on a later turn.
    return new Promise<void>((resolve) =>
      setTimeout(() => {
        expect(freed).toBe(true);
        resolve();
      }, 50),
    );
  });
});
