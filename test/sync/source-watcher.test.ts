import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { revisionOf } from '../../src/settings/revision.js';
import { createSourceWatcher, type SourceWatcher, type WatchDirectory } from '../../src/sync/source-watcher.js';
import { eventually } from '../support/wait.js';

let dir: string;
let path: string;
let watcher: SourceWatcher | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'confhub-watch-'));
  mkdirSync(join(dir, 'config'));
  mkdirSync(join(dir, 'elsewhere'));
  path = join(dir, 'config', 'config.ini');
  writeFileSync(path, 'a = 1\n');
});
afterEach(async () => {
  await watcher?.close();
  watcher = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** No file events at all, as on a bind mount or VM share where inotify stays silent. */
const silentDirectory: WatchDirectory = () => ({ ready: Promise.resolve(), close: async () => undefined });

async function watch(options: { pollIntervalMs: number; debounceMinMs?: number; debounceMaxMs?: number; slowRunMs?: number; events?: boolean }) {
  const runs: number[] = [];
  watcher = createSourceWatcher({
    path,
    debounceMinMs: options.debounceMinMs ?? 20,
    debounceMaxMs: options.debounceMaxMs ?? 200,
    pollIntervalMs: options.pollIntervalMs,
    onChange: async () => {
      runs.push(Date.now());
      if (options.slowRunMs) await new Promise((resolve) => setTimeout(resolve, options.slowRunMs));
    },
    onError: (error) => {
      throw error;
    },
    ...(options.events === false ? { watchDirectory: silentDirectory } : {}),
  });
  await watcher.ready;
  watcher.markSeen(revisionOf('a = 1\n'));
  return runs;
}

describe('source watcher', () => {
  it('when flushed during the quiet time, then the change runs at once and the debounce does not run it again', async () => {
    const runs = await watch({ pollIntervalMs: 60_000, debounceMinMs: 5000, debounceMaxMs: 10_000 });
    writeFileSync(path, 'a = 2\n');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(runs).toEqual([]);
    const flushed = Date.now();
    await watcher!.flush();
    expect(runs).toHaveLength(1);
    // Well before the 5 s quiet time would have ended.
    expect(runs[0]! - flushed).toBeLessThan(2500);
    watcher!.markSeen(revisionOf('a = 2\n'));
    await watcher!.flush();
    expect(runs).toHaveLength(1);
  });

  it('when flushed before any event arrived, then the content that differs from the last read still runs', async () => {
    const runs = await watch({ pollIntervalMs: 60_000, events: false });
    writeFileSync(path, 'a = 2\n');
    await watcher!.flush();
    expect(runs).toHaveLength(1);
  });

  it('when flushed while a run is in progress, then it waits for it, and a change that came meanwhile runs too', async () => {
    const runs = await watch({ pollIntervalMs: 60_000, debounceMinMs: 10, slowRunMs: 300 });
    writeFileSync(path, 'a = 2\n');
    await eventually('the first run starts', () => runs.length === 1, 3000);
    writeFileSync(path, 'a = 3\n');
    await watcher!.flush();
    expect(runs).toHaveLength(2);
  });

  it('when flushed with nothing new, then nothing runs', async () => {
    const runs = await watch({ pollIntervalMs: 60_000 });
    await watcher!.flush();
    expect(runs).toEqual([]);
  });

  it('when config.ini is replaced by rename, then one run follows', async () => {
    const runs = await watch({ pollIntervalMs: 60_000 });
    writeFileSync(join(dir, 'config', '.tmp'), 'a = 2\n');
    renameSync(join(dir, 'config', '.tmp'), path);
    await eventually('a run', () => runs.length === 1, 3000);
  });

  it('when no file event arrives, then the hash poll finds the change', async () => {
    const runs = await watch({ pollIntervalMs: 100, events: false });
    writeFileSync(path, 'a = 2\n');
    await eventually('the poll triggers a run', () => runs.length === 1, 3000);
  });

  it('when no file event arrives and the poll is slow, then nothing has run yet (the poll is what caught it above)', async () => {
    const runs = await watch({ pollIntervalMs: 60_000, events: false });
    writeFileSync(path, 'a = 2\n');
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(runs).toEqual([]);
  });

  it('when the content is what was last seen, then the poll does not run', async () => {
    const runs = await watch({ pollIntervalMs: 50, events: false });
    writeFileSync(path, 'a = 1\n');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(runs).toEqual([]);
  });

  it('when the poll sees a change the watcher already scheduled, then the run is not pushed back', async () => {
    const runs = await watch({ pollIntervalMs: 10, debounceMinMs: 150, debounceMaxMs: 1000 });
    const written = Date.now();
    writeFileSync(path, 'a = 2\n');
    await eventually('a run', () => runs.length === 1, 3000);
    // Each poll tick (every 10 ms) would otherwise restart the 150 ms quiet time until debounce_max.
    expect(runs[0]! - written).toBeLessThan(400);
  });

  it('when other files of the directory change, then nothing runs', async () => {
    const runs = await watch({ pollIntervalMs: 60_000 });
    writeFileSync(join(dir, 'config', 'system.ini'), 'x = 1\n');
    writeFileSync(join(dir, 'config', 'config.ini.bak'), 'x = 1\n');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(runs).toEqual([]);
  });

  it('when writes keep coming, then runs happen at most every debounce_max_ms, and a change during a run gets its own run after it', async () => {
    const runs = await watch({ pollIntervalMs: 60_000, debounceMinMs: 100, debounceMaxMs: 250, slowRunMs: 150 });
    const started = Date.now();
    while (Date.now() - started < 700) {
      writeFileSync(path, `a = ${Date.now()}\n`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await new Promise((resolve) => setTimeout(resolve, 600));
    // A constant stream still runs (max delay), but nowhere near once per write (~35 writes).
    expect(runs.length).toBeGreaterThanOrEqual(2);
    expect(runs.length).toBeLessThanOrEqual(6);
    const last = runs[runs.length - 1]!;
    expect(last).toBeGreaterThan(started + 700);
  });
});
