/**
 * Heap probe for the memory benchmark's profile mode (BENCH_MEMORY_PROFILE=1): preloaded into the
 * confhub under test with `node --import`, never shipped. confhub itself exposes no heap of its
 * sync worker and no way to force a GC, so this probe keeps every Worker the process creates and,
 * on SIGUSR2, writes a heap snapshot of the main thread and of each worker (a snapshot collects
 * garbage first) and the main thread's V8 statistics into BENCH_HEAP_PROBE_DIR, then `done.json`.
 *
 * Plain JavaScript: loading a TypeScript loader into the process would be measured too.
 */
import { writeFileSync, createWriteStream } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import v8 from 'node:v8';
import workerThreads from 'node:worker_threads';

const dir = process.env.BENCH_HEAP_PROBE_DIR;

if (workerThreads.isMainThread && dir) {
  const workers = new Set();
  const Original = workerThreads.Worker;
  workerThreads.Worker = class ProbedWorker extends Original {
    constructor(...args) {
      super(...args);
      workers.add(this);
      this.once('exit', () => workers.delete(this));
    }
  };
  // `import { Worker } from 'node:worker_threads'` in confhub binds to the patched class.
  syncBuiltinESMExports();

  let round = 0;
  process.on('SIGUSR2', () => {
    round++;
    void (async () => {
      const files = { main: join(dir, `main-${round}.heapsnapshot`), workers: [] };
      v8.writeHeapSnapshot(files.main);
      let index = 0;
      for (const worker of workers) {
        const file = join(dir, `worker-${round}-${index++}.heapsnapshot`);
        await pipeline(await worker.getHeapSnapshot(), createWriteStream(file));
        files.workers.push(file);
      }
      const stats = {
        round,
        files,
        main: { memoryUsage: process.memoryUsage(), heap: v8.getHeapStatistics(), spaces: v8.getHeapSpaceStatistics() },
      };
      writeFileSync(join(dir, `done-${round}.json`), JSON.stringify(stats));
    })();
  });
}
