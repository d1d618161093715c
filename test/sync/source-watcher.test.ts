/**
 * The source watcher on a manual clock: the debounce and the poll move only when a test advances
 * the clock, so every test states when a run happens, to the millisecond, however busy the
 * machine is. File events come from chokidar itself where the kernel's part is under test, and
 * from the test where the debounce is.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { revisionOf } from '../../src/settings/revision.js';
import { chokidarWatchDirectory, createSourceWatcher, type SourceWatcher, type WatchDirectory } from '../../src/sync/source-watcher.js';
import { createManualClock, type ManualClock } from '../support/manual-clock.js';
import { eventually } from '../support/wait.js';

let dir: string;
let path: string;
let watcher: SourceWatcher | undefined;
let clock: ManualClock;
/** What each run was told: whether the watcher saw the file quiet for the whole minimum time. */
let settledOf: boolean[];
beforeEach(() => {
  settledOf = [];
  dir = mkdtempSync(join(tmpdir(), 'confhub-watch-'));
  mkdirSync(join(dir, 'config'));
  mkdirSync(join(dir, 'elsewhere'));
  path = join(dir, 'config', 'config.ini');
  writeFileSync(path, 'a = 1\n');
  clock = createManualClock();
});
afterEach(async () => {
  await watcher?.close();
  watcher = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** No file events at all, as on a bind mount or VM share where inotify stays silent. */
const silentDirectory: WatchDirectory = () => ({ ready: Promise.resolve(), close: async () => undefined });

/** File events the test sends itself: the debounce, not the kernel, is under test. */
function manualEvents(): { source: WatchDirectory; emit: (name?: string) => void } {
  let deliver: ((path: string) => void) | undefined;
  return {
    source: (_dir, onEvent) => {
      deliver = onEvent;
      return { ready: Promise.resolve(), close: async () => undefined };
    },
    emit: (name = 'config.ini') => deliver!(join(dir, 'config', name)),
  };
}

/** chokidar, with the name of every file it reported: a test waits until the kernel's event has arrived. */
function recordedChokidar(): { source: WatchDirectory; seen: string[] } {
  const seen: string[] = [];
  return {
    seen,
    source: (watched, onEvent, onError) =>
      chokidarWatchDirectory(
        watched,
        (changed) => {
          seen.push(basename(changed));
          onEvent(changed);
        },
        onError,
      ),
  };
}

/** Holds every run until released, as a reconcile that takes a while would. */
function gate(): { hold: () => Promise<void>; release: () => void } {
  let open: (() => void) | undefined;
  let held: Promise<void> | undefined;
  return {
    hold: () => (held ??= new Promise<void>((resolve) => (open = resolve))),
    release: () => {
      open?.();
      held = undefined;
    },
  };
}

interface WatchOptions {
  events: WatchDirectory;
  pollIntervalMs?: number;
  debounceMinMs?: number;
  debounceMaxMs?: number;
  /** Each run waits for this before it ends. */
  hold?: () => Promise<void>;
}

/** Starts a watcher on the manual clock; returns the clock times at which runs started. */
async function watch(options: WatchOptions): Promise<number[]> {
  const runs: number[] = [];
  watcher = createSourceWatcher({
    path,
    debounceMinMs: options.debounceMinMs ?? 20,
    debounceMaxMs: options.debounceMaxMs ?? 200,
    pollIntervalMs: options.pollIntervalMs ?? 60_000,
    clock,
    onChange: async ({ settled }) => {
      runs.push(clock.now());
      settledOf.push(settled);
      if (options.hold) await options.hold();
    },
    onError: (error) => {
      throw error;
    },
    watchDirectory: options.events,
  });
  await watcher.ready;
  watcher.markSeen(revisionOf('a = 1\n'));
  return runs;
}

/**
 * Waits (in real time: it reads the file) until the poll that fired at this clock time has read
 * the file, which is when it sets its next tick.
 */
async function pollRead(pollIntervalMs: number): Promise<void> {
  const next = clock.now() + pollIntervalMs;
  await eventually('the poll has read the file', () => clock.pendingDue().includes(next));
}

async function pollOnce(pollIntervalMs: number): Promise<void> {
  await clock.advance(pollIntervalMs);
  await pollRead(pollIntervalMs);
}

describe('source watcher', () => {
  it('when a change event arrives, then it runs exactly debounce_min_ms later, once, and not a moment before', async () => {
    const events = manualEvents();
    const runs = await watch({ events: events.source, debounceMinMs: 100, debounceMaxMs: 1000 });
    const start = clock.now();
    events.emit();
    await clock.advance(99);
    expect(runs).toEqual([]);
    await clock.advance(1);
    expect(runs).toEqual([start + 100]);
    await clock.advance(10_000);
    expect(runs).toEqual([start + 100]);
    // Quiet for the whole minimum time: the run may read the file once.
    expect(settledOf).toEqual([true]);
  });

  it('when events of other files arrive, then nothing is scheduled', async () => {
    const events = manualEvents();
    const runs = await watch({ events: events.source });
    events.emit('system.ini');
    events.emit('config.ini.bak');
    events.emit('.config.ini.swp');
    expect(clock.pendingDue()).toEqual([clock.now() + 60_000]);
    await clock.advance(10_000);
    expect(runs).toEqual([]);
  });

  it('when writes keep coming, then a run happens every debounce_max_ms after the first write of a burst, and never more often', async () => {
    const events = manualEvents();
    const runs = await watch({ events: events.source, debounceMinMs: 100, debounceMaxMs: 250 });
    const start = clock.now();
    // One write every 20 ms for 700 ms: the quiet time of 100 ms never comes.
    for (let t = 0; t < 700; t += 20) {
      events.emit();
      await clock.advance(20);
    }
    await clock.advance(1000);
    // Each burst runs debounce_max_ms after its first write (0, 260 and 520): 35 writes, 3 runs,
    // the last one after the last write.
    expect(runs).toEqual([start + 250, start + 510, start + 770]);
    // Cut short by the maximum delay: a writer may still be at work.
    expect(settledOf).toEqual([false, false, false]);
  });

  it('when a change arrives during a run, then it gets its own run after that one, debounce_min_ms after it ended', async () => {
    const events = manualEvents();
    const held = gate();
    const runs = await watch({ events: events.source, debounceMinMs: 100, debounceMaxMs: 1000, hold: held.hold });
    const start = clock.now();
    events.emit();
    await clock.advance(100);
    expect(runs).toEqual([start + 100]);
    events.emit();
    await clock.advance(500);
    // Its quiet time is over, but the first run still holds: runs never overlap.
    expect(runs).toEqual([start + 100]);
    held.release();
    await clock.advance(99);
    expect(runs).toEqual([start + 100]);
    await clock.advance(1);
    expect(runs).toEqual([start + 100, start + 700]);
    // The second change came while the file was being read: not known to be settled.
    expect(settledOf).toEqual([true, false]);
    held.release();
  });

  it('when flushed during the quiet time, then the change runs at once and the debounce does not run it again', async () => {
    const events = manualEvents();
    const runs = await watch({ events: events.source, debounceMinMs: 5000, debounceMaxMs: 10_000 });
    const start = clock.now();
    writeFileSync(path, 'a = 2\n');
    events.emit();
    await clock.advance(200);
    expect(runs).toEqual([]);
    await watcher!.flush();
    // No clock time passed: flush() did not wait for the rest of the quiet time.
    expect(runs).toEqual([start + 200]);
    expect(settledOf).toEqual([false]);
    watcher!.markSeen(revisionOf('a = 2\n'));
    await clock.advance(10_000);
    await watcher!.flush();
    expect(runs).toHaveLength(1);
  });

  it('when flushed before any event arrived, then the content that differs from the last read still runs', async () => {
    const runs = await watch({ events: silentDirectory });
    writeFileSync(path, 'a = 2\n');
    await watcher!.flush();
    expect(runs).toEqual([clock.now()]);
  });

  it('when flushed while a run is in progress, then it waits for it, and a change that came meanwhile runs too', async () => {
    const events = manualEvents();
    const held = gate();
    const runs = await watch({ events: events.source, debounceMinMs: 10, hold: held.hold });
    writeFileSync(path, 'a = 2\n');
    events.emit();
    await clock.advance(10);
    expect(runs).toHaveLength(1);
    writeFileSync(path, 'a = 3\n');
    events.emit();
    let flushed = false;
    const flushing = watcher!.flush().then(() => {
      flushed = true;
    });
    await clock.settle();
    expect(flushed).toBe(false);
    held.release();
    await eventually('the change made during the run has run', () => runs.length === 2);
    held.release();
    await flushing;
    expect(runs).toHaveLength(2);
  });

  it('when flushed with nothing new, then nothing runs', async () => {
    const runs = await watch({ events: silentDirectory });
    await watcher!.flush();
    expect(runs).toEqual([]);
  });

  it('when config.ini is replaced by rename, then chokidar reports it and one run follows debounce_min_ms later', async () => {
    const chokidar = recordedChokidar();
    const runs = await watch({ events: chokidar.source, debounceMinMs: 100 });
    writeFileSync(join(dir, 'config', '.tmp'), 'a = 2\n');
    renameSync(join(dir, 'config', '.tmp'), path);
    await eventually('chokidar reports config.ini', () => chokidar.seen.includes('config.ini'));
    const reportedAt = clock.now();
    expect(runs).toEqual([]);
    await clock.advance(100);
    expect(runs).toEqual([reportedAt + 100]);
  });

  it('when other files of the directory change, then chokidar reports them and nothing runs', async () => {
    const chokidar = recordedChokidar();
    const runs = await watch({ events: chokidar.source });
    writeFileSync(join(dir, 'config', 'system.ini'), 'x = 1\n');
    writeFileSync(join(dir, 'config', 'config.ini.bak'), 'x = 1\n');
    writeFileSync(join(dir, 'elsewhere', 'config.ini'), 'x = 1\n');
    await eventually('chokidar reports both files', () => chokidar.seen.includes('system.ini') && chokidar.seen.includes('config.ini.bak'));
    // Only the poll's next tick is pending: no debounce was started.
    expect(clock.pendingDue()).toEqual([clock.now() + 60_000]);
    await clock.advance(10_000);
    expect(runs).toEqual([]);
  });

  it('when no file event arrives, then the hash poll finds the change at its next tick, and not before', async () => {
    const runs = await watch({ events: silentDirectory, pollIntervalMs: 1000, debounceMinMs: 20 });
    const start = clock.now();
    writeFileSync(path, 'a = 2\n');
    await clock.advance(999);
    expect(runs).toEqual([]);
    await clock.advance(1);
    await pollRead(1000);
    expect(runs).toEqual([]);
    await clock.advance(20);
    expect(runs).toEqual([start + 1020]);
    // Found by the poll: nothing says the writer is done.
    expect(settledOf).toEqual([false]);
  });

  it('when the content is what was last seen, then the poll does not run', async () => {
    const runs = await watch({ events: silentDirectory, pollIntervalMs: 50 });
    writeFileSync(path, 'a = 1\n');
    for (let tick = 0; tick < 5; tick++) {
      await pollOnce(50);
      // Only the poll's next tick: the read found nothing new.
      expect(clock.pendingDue()).toEqual([clock.now() + 50]);
    }
    await clock.advance(49);
    expect(runs).toEqual([]);
  });

  it('when the poll sees a change the watcher already scheduled, then the run is not pushed back', async () => {
    const events = manualEvents();
    const runs = await watch({ events: events.source, pollIntervalMs: 10, debounceMinMs: 150, debounceMaxMs: 1000 });
    const start = clock.now();
    writeFileSync(path, 'a = 2\n');
    events.emit();
    // Every tick reads the changed content during the quiet time; each would otherwise restart it.
    for (let tick = 0; tick < 14; tick++) await pollOnce(10);
    expect(runs).toEqual([]);
    await clock.advance(10);
    expect(runs).toEqual([start + 150]);
    expect(settledOf).toEqual([true]);
  });
});
