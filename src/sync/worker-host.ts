/**
 * Runs the sync worker thread for the main thread: starts it, restarts it with backoff when it
 * dies, and stops it cleanly (the apply in flight finishes) on shutdown.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { backoffDelay } from '../core/backoff.js';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import type { MainToWorker, WorkerInit, WorkerToMain } from './protocol.js';

export interface WorkerHostOptions {
  init: WorkerInit;
  /** Read at each (re)start: what changes while confhub runs (the last applied commit). */
  initAtStart?: () => Partial<WorkerInit>;
  logger: Logger;
  onMessage: (message: WorkerToMain) => void;
  /** Called when the worker stops unexpectedly (before a restart is scheduled). */
  onExit?: (info: { code: number; restarts: number }) => void;
  restartBaseMs?: number;
  restartMaxMs?: number;
  /**
   * How long a shutdown waits for the apply in flight before terminating the thread. Real time:
   * it guards a real thread, whatever the clock says.
   */
  stopTimeoutMs?: number;
  /** Times the restarts; default the system clock. */
  clock?: Clock;
}

export interface WorkerHost {
  start(): void;
  send(message: MainToWorker): void;
  alive(): boolean;
  restarts(): number;
  stop(): Promise<void>;
}

/**
 * The compiled worker next to this file. Under the test runner this module is TypeScript
 * source: the thread first registers tsx's loader (Node 20 does not apply --import to a
 * worker's entry module), then imports the TypeScript worker.
 */
function createWorker(init: WorkerInit): Worker {
  // The worker handles one small file at a time: a small nursery keeps its share of the RSS low.
  const options = { workerData: init, resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB } };
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./worker.js', import.meta.url), options);
  const entry = JSON.stringify(new URL('./worker.ts', import.meta.url).href);
  const bootstrap = `import('tsx/esm/api').then(({ register }) => { register(); return import(${entry}); })`;
  return new Worker(bootstrap, { ...options, eval: true });
}

const WORKER_YOUNG_GENERATION_MB = 4;

export function createWorkerHost(options: WorkerHostOptions): WorkerHost {
  const { init, onMessage, restartBaseMs = 500, restartMaxMs = 30_000, stopTimeoutMs = 30_000, clock = systemClock } = options;
  const log = options.logger.child({ module: 'worker-host' });
  let worker: Worker | undefined;
  let stopping = false;
  let restartCount = 0;
  let restartTimer: TimerHandle | undefined;
  let consecutiveFailures = 0;
  let stoppedResolve: (() => void) | undefined;
  /** Messages sent before the first start (announcements of first-boot writes), delivered when it starts. */
  let early: MainToWorker[] | undefined = [];

  function spawn(): void {
    const current = createWorker({ ...init, ...options.initAtStart?.(), ...(restartCount > 0 ? { restarted: true } : {}) });
    worker = current;
    for (const message of early ?? []) current.postMessage(message);
    early = undefined;
    current.on('message', (message: WorkerToMain) => {
      // Healthy once a run completed, not merely started: a worker that fails in its first run keeps backing off.
      if (message.type === 'run') consecutiveFailures = 0;
      if (message.type === 'stopped') stoppedResolve?.();
      onMessage(message);
    });
    current.on('error', (error) => log.error({ err: error }, 'sync worker failed'));
    current.on('exit', (code) => {
      if (worker === current) worker = undefined;
      if (stopping) {
        stoppedResolve?.();
        return;
      }
      restartCount++;
      consecutiveFailures++;
      options.onExit?.({ code, restarts: restartCount });
      const delay = backoffDelay({ attempt: consecutiveFailures - 1, baseMs: restartBaseMs, maxMs: restartMaxMs, minMs: restartBaseMs });
      log.error({ code, delayMs: delay }, 'sync worker stopped; restarting');
      restartTimer = clock.setTimeout(spawn, delay);
    });
  }

  return {
    start: spawn,
    send(message) {
      if (worker) worker.postMessage(message);
      else if (early && early.length < 256) early.push(message);
    },
    alive: () => worker !== undefined,
    restarts: () => restartCount,
    async stop() {
      stopping = true;
      clock.clearTimeout(restartTimer);
      const current = worker;
      if (!current) return;
      const stopped = new Promise<void>((resolve) => (stoppedResolve = resolve));
      current.postMessage({ type: 'shutdown' } satisfies MainToWorker);
      const timer = setTimeout(() => void current.terminate(), stopTimeoutMs);
      await stopped;
      clearTimeout(timer);
      await current.terminate();
    },
  };
}
