/**
 * Notices every change of config.ini, however it was made: the directory is watched and events
 * filtered by name (editors and `sed -i` replace the inode, so watching the file itself would go
 * deaf after the first save), and a slow content-hash poll backs the watcher up where events do
 * not arrive (bind mounts, VM shares). Events are debounced with a minimum quiet time and a
 * maximum delay, so a burst of writes settles into one run and a constant stream still runs.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';

export interface SourceWatcherOptions {
  path: string;
  debounceMinMs: number;
  debounceMaxMs: number;
  pollIntervalMs: number;
  /**
   * Called after the debounce; never called again while a previous call is running. `settled`:
   * the watcher saw the file quiet for the whole minimum time (no event since the last one);
   * false when the maximum delay cut a stream of writes short, or the poll or a flush found the
   * change, which says nothing of whether a writer is still at work.
   */
  onChange: (trigger: { settled: boolean }) => Promise<void>;
  onError: (error: unknown) => void;
  /** Source of file events for the directory; default chokidar (tests turn events off to check the poll). */
  watchDirectory?: WatchDirectory;
  /** Times the debounce and the poll; default the system clock. */
  clock?: Clock;
}

/** Calls `onEvent` with the path of every added, changed or removed file in `dir`. */
export type WatchDirectory = (
  dir: string,
  onEvent: (path: string) => void,
  onError: (error: unknown) => void,
) => { ready: Promise<void>; close(): Promise<void> };

export const chokidarWatchDirectory: WatchDirectory = (dir, onEvent, onError) => {
  const watcher: FSWatcher = watch(dir, { depth: 0, ignoreInitial: true, persistent: true });
  watcher.on('all', (_event, changed) => onEvent(changed));
  watcher.on('error', onError);
  return { ready: new Promise<void>((resolve) => watcher.once('ready', () => resolve())), close: () => watcher.close() };
};

export interface SourceWatcher {
  /** Resolves once the watcher is subscribed (changes from then on are seen). */
  ready: Promise<void>;
  /** The hash the poll compares against, after a run read the file. */
  markSeen(hash: string | undefined): void;
  /**
   * Runs now what would run later: a change in its quiet time, or one no event reported yet (the
   * file differs from what the last run read). Resolves when that run is done. For shutdown: a
   * write the API acknowledged is applied before the process exits.
   */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export function createSourceWatcher(options: SourceWatcherOptions): SourceWatcher {
  const { path, debounceMinMs, debounceMaxMs, pollIntervalMs, onChange, onError, clock = systemClock } = options;
  const name = basename(path);
  let timer: TimerHandle | undefined;
  let firstEventAt: number | undefined;
  let running = false;
  let current: Promise<void> | undefined;
  let pendingWhileRunning = false;
  let closed = false;
  let seenHash: string | undefined;
  /** The pending run was cut short by the maximum delay, or not scheduled by a file event. */
  let unsettled = false;

  const fire = (): void => {
    const settled = !unsettled;
    timer = undefined;
    firstEventAt = undefined;
    unsettled = false;
    if (running) {
      pendingWhileRunning = true;
      return;
    }
    running = true;
    current = onChange({ settled })
      .catch(onError)
      .finally(() => {
        running = false;
        current = undefined;
        if (pendingWhileRunning && !closed) {
          pendingWhileRunning = false;
          // The events came while the file was being read: whether the writer is done is not known.
          schedule({ settled: false });
        }
      });
  };

  const cancelTimer = (): void => {
    clock.clearTimeout(timer);
    timer = undefined;
    firstEventAt = undefined;
    unsettled = false;
  };

  const differsFromSeen = async (): Promise<boolean> => {
    try {
      return (
        createHash('sha256')
          .update(await readFile(path))
          .digest('hex') !== seenHash
      );
    } catch {
      return seenHash !== undefined;
    }
  };

  const schedule = ({ settled }: { settled: boolean }): void => {
    if (closed) return;
    const now = clock.now();
    firstEventAt ??= now;
    const due = Math.min(now + debounceMinMs, firstEventAt + debounceMaxMs);
    if (!settled || due < now + debounceMinMs) unsettled = true;
    clock.clearTimeout(timer);
    timer = clock.setTimeout(fire, Math.max(0, due - now));
  };

  const watcher = (options.watchDirectory ?? chokidarWatchDirectory)(
    dirname(path),
    (changed) => {
      if (basename(changed) === name) schedule({ settled: true });
    },
    onError,
  );

  // The poll only starts a debounce when none is pending: it must never push back a run the
  // watcher already scheduled (it would often see the new content first, during the quiet time).
  // The next poll is set once a read is done, so reads of a slow share never pile up.
  let poll: TimerHandle | undefined;
  const armPoll = (): void => {
    if (closed) return;
    poll = clock.setTimeout(() => {
      void differsFromSeen()
        .then((differs) => {
          if (differs && !timer && !running) schedule({ settled: false });
        })
        .finally(armPoll);
    }, pollIntervalMs);
    poll.unref();
  };
  armPoll();

  return {
    ready: watcher.ready,
    markSeen(hash) {
      seenHash = hash;
    },
    async flush() {
      if (closed) return;
      cancelTimer();
      // A run in progress may schedule the next one as it ends; that one runs here instead.
      while (current) {
        await current;
        cancelTimer();
      }
      if (!(await differsFromSeen())) return;
      unsettled = true;
      fire();
      await current;
    },
    async close() {
      closed = true;
      clock.clearTimeout(poll);
      clock.clearTimeout(timer);
      await watcher.close();
    },
  };
}
