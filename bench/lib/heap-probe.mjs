/**
 * Heap probe for the memory benchmark's profile mode (BENCH_MEMORY_PROFILE=1): preloaded into the
 * confhub under test with `node --import`, never shipped. confhub exposes neither its sync
 * worker's heap nor a way to collect garbage, so this probe starts every Worker behind a short
 * prelude that answers heap questions on a BroadcastChannel, and on SIGUSR2 runs the command
 * written to BENCH_HEAP_PROBE_DIR/command:
 *   `stats`     V8 heap statistics of the main thread and of each worker → stats-<n>.json
 *   `snapshot`  a heap snapshot of each thread (each collects garbage first) → snapshot-<n>.json
 *               naming the files
 * Plain JavaScript: loading a TypeScript loader into the process would be measured too.
 */
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import v8 from 'node:v8';
import workerThreads from 'node:worker_threads';

const dir = process.env.BENCH_HEAP_PROBE_DIR;
const CHANNEL = 'confhub-bench-heap-probe';

/** Runs in each worker before its own entry module: answers `stats` asks with its heap. */
const PRELUDE = `
const v8 = require('node:v8');
const channel = new BroadcastChannel(${JSON.stringify(CHANNEL)});
channel.unref();
channel.onmessage = ({ data }) => {
  if (data?.ask === 'stats') channel.postMessage({ answer: data.id, heap: v8.getHeapStatistics(), spaces: v8.getHeapSpaceStatistics() });
};
`;

function heapOf(heap, spaces) {
  return {
    usedBytes: heap.used_heap_size,
    totalBytes: heap.total_heap_size,
    physicalBytes: heap.total_physical_size,
    spaces: Object.fromEntries(
      spaces.map((s) => [s.space_name, { sizeBytes: s.space_size, usedBytes: s.space_used_size, physicalBytes: s.physical_space_size }]),
    ),
  };
}

if (workerThreads.isMainThread && dir) {
  const workers = new Set();
  const Original = workerThreads.Worker;
  workerThreads.Worker = class ProbedWorker extends Original {
    constructor(entry, options = {}) {
      // A URL entry runs behind the prelude; confhub's eval entry (tests) is left as it is.
      const wrapped = entry instanceof URL && !options.eval;
      super(wrapped ? `${PRELUDE}\nimport(${JSON.stringify(entry.href)});` : entry, wrapped ? { ...options, eval: true } : options);
      workers.add(this);
      this.once('exit', () => workers.delete(this));
    }
  };
  // `import { Worker } from 'node:worker_threads'` in confhub binds to the patched class.
  syncBuiltinESMExports();

  const channel = new BroadcastChannel(CHANNEL);
  channel.unref();
  let asked = 0;

  async function workerStats() {
    const id = ++asked;
    const answers = [];
    const listener = ({ data }) => {
      if (data?.answer === id) answers.push(heapOf(data.heap, data.spaces));
    };
    channel.addEventListener('message', listener);
    channel.postMessage({ ask: 'stats', id });
    for (let i = 0; i < 50 && answers.length < workers.size; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    channel.removeEventListener('message', listener);
    return answers;
  }

  async function snapshots(round) {
    const files = { main: join(dir, `main-${round}.heapsnapshot`), workers: [] };
    v8.writeHeapSnapshot(files.main);
    let index = 0;
    for (const worker of workers) {
      const file = join(dir, `worker-${round}-${index++}.heapsnapshot`);
      await pipeline(await worker.getHeapSnapshot(), createWriteStream(file));
      files.workers.push(file);
    }
    return files;
  }

  let round = 0;
  process.on('SIGUSR2', () => {
    const n = ++round;
    void (async () => {
      const command = readFileSync(join(dir, 'command'), 'utf8').trim();
      const result =
        command === 'snapshot'
          ? { files: await snapshots(n) }
          : { main: heapOf(v8.getHeapStatistics(), v8.getHeapSpaceStatistics()), workers: await workerStats() };
      writeFileSync(join(dir, `${command}-${n}.json`), JSON.stringify(result));
    })();
  });
}
