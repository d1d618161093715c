/**
 * Image benchmark (npm run bench:image; also the last step of npm run bench): the confhub image
 * built from this checkout against a private dockerd, then started the way it is deployed
 * (--network host, a data volume, the Docker socket). Results go to bench/results/image.json, a
 * Markdown summary to stdout, progress to stderr.
 *
 * 1. Build: a cold `docker build --network host` (empty build cache; the base image is made
 *    first and not counted), and the image's size.
 * Each start is timed to /healthz 200 (the process tree is up, confhub listens) and /readyz 200.
 * 2. First boot: BENCH_STARTS containers, each on an empty data directory: container start →
 *    /readyz 200. That is supervisord starting, confhub installing the defaults, generating the
 *    keys and passwords, sealing, creating the history and finishing the first reconcile.
 * 3. Cold start: BENCH_STARTS containers on one initialized data directory: container start →
 *    /readyz 200, then docker stop → exited.
 *
 * No sibling service runs: the Docker targets wait for theirs, which /readyz does not wait for.
 * Budgets are reported, never enforced; the exit code is 1 only when the run itself failed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Docker from 'dockerode';
import { startDockerd, type PrivateDockerd } from '../test/support/engines.js';
import { buildImage, createConfhubContainer, DEFAULT_BASE_IMAGE, ensureBaseImage, imageSize } from '../test/support/image.js';
import { freePort } from '../test/support/ports.js';
import { positiveFromEnv } from './lib/env.js';
import { describeMachine, type MachineInfo } from './lib/machine.js';
import { log, runBench, sleep } from './lib/processes.js';
import { budgetTable, fmt, markdownTable, RESULTS_DIR, writeResults, type Budget } from './lib/report.js';
import { summarize, type Summary } from './lib/stats.js';

const RESULTS_PATH = join(RESULTS_DIR, 'image.json');
const TAG = 'confhub:bench';
const STARTS = positiveFromEnv('BENCH_STARTS', 5, 'count');

interface StartResult {
  /** Container start → /healthz 200: the process tree is up and confhub listens. */
  healthMs: number;
  readyMs: number;
  stopMs: number;
  exitCode: number;
}

/** One container on dataDir: start → /readyz 200 → docker stop. */
async function startOnce(docker: Docker, dockerd: PrivateDockerd, dataDir: string, name: string): Promise<StartResult> {
  const port = await freePort();
  const container = await createConfhubContainer(docker, { image: TAG, name, dataDir, port, dockerd });
  try {
    const started = performance.now();
    await container.start();
    const until = async (path: string): Promise<number> => {
      for (;;) {
        const ok = await fetch(`http://127.0.0.1:${port}${path}`).then(
          (res) => res.status === 200,
          () => false,
        );
        if (ok) return performance.now() - started;
        if (performance.now() - started > 120_000) throw new Error(`${name}: ${path} did not answer 200 within 120 s`);
        await sleep(10);
      }
    };
    const healthMs = await until('/healthz');
    const readyMs = await until('/readyz');
    const stopping = performance.now();
    await container.stop({ t: 10 });
    const stopMs = performance.now() - stopping;
    const { ExitCode } = (await container.inspect()).State;
    return { healthMs, readyMs, stopMs, exitCode: ExitCode };
  } finally {
    await container.remove({ force: true });
  }
}

interface Report {
  machine: MachineInfo;
  settings: { starts: number; baseImage: string };
  build: { coldMs: number; imageBytes: number; baseImageBytes: number };
  firstBoot: { healthMs: Summary; readyMs: Summary; stopMs: Summary; exitCodes: number[] };
  coldStart: { healthMs: Summary; readyMs: Summary; stopMs: Summary; exitCodes: number[] };
  budgets: Budget[];
}

async function measure(): Promise<Omit<Report, 'machine' | 'budgets'>> {
  const dockerd = await startDockerd();
  const docker = new Docker({ socketPath: dockerd.socketPath });
  const dirs: string[] = [];
  try {
    log('base image');
    const baseImage = await ensureBaseImage(docker, log);
    log(`cold build from ${baseImage}`);
    const buildStarted = performance.now();
    await buildImage(docker, { tag: TAG, baseImage });
    const coldMs = performance.now() - buildStarted;
    const imageBytes = await imageSize(docker, TAG);
    const baseImageBytes = await imageSize(docker, baseImage);

    const first: StartResult[] = [];
    for (let i = 0; i < STARTS; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'confhub-image-bench-'));
      dirs.push(dir);
      first.push(await startOnce(docker, dockerd, dir, `confhub-first-${i}`));
      log(`first boot ${i + 1}/${STARTS}: ready after ${Math.round(first.at(-1)!.readyMs)} ms`);
    }
    const cold: StartResult[] = [];
    for (let i = 0; i < STARTS; i++) {
      cold.push(await startOnce(docker, dockerd, dirs[0]!, `confhub-cold-${i}`));
      log(`cold start ${i + 1}/${STARTS}: ready after ${Math.round(cold.at(-1)!.readyMs)} ms`);
    }
    const summaryOf = (results: StartResult[]) => ({
      healthMs: summarize(results.map((r) => r.healthMs)),
      readyMs: summarize(results.map((r) => r.readyMs)),
      stopMs: summarize(results.map((r) => r.stopMs)),
      exitCodes: results.map((r) => r.exitCode),
    });
    return {
      settings: { starts: STARTS, baseImage: baseImage === DEFAULT_BASE_IMAGE ? baseImage : "local debootstrap bookworm minbase + the machine's Node" },
      build: { coldMs: Math.round(coldMs), imageBytes, baseImageBytes },
      firstBoot: summaryOf(first),
      coldStart: summaryOf(cold),
    };
  } finally {
    await dockerd.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}

function markdown(r: Report): string {
  const ms = (s: Summary): string[] => [fmt(s.p50, 0), fmt(s.max, 0)];
  return [
    `**Image** (${r.settings.baseImage}; ${r.settings.starts} starts of each kind, --network host, no sibling services):`,
    '',
    ...markdownTable(['what', 'measured'], 'lr', [
      ['image size', `${fmt(r.build.imageBytes / 1024 / 1024, 0)} MiB`],
      ['of which the base image', `${fmt(r.build.baseImageBytes / 1024 / 1024, 0)} MiB`],
      ['cold build (empty build cache, base image present)', `${fmt(r.build.coldMs / 1000, 0)} s`],
    ]),
    '',
    ...markdownTable(['container start →', '/healthz p50 ms', '/readyz p50 ms', '/readyz max ms', 'docker stop p50 ms', 'exit codes'], 'lrrrrl', [
      [
        'first boot (empty volume: defaults, keys, passwords, history, first reconcile)',
        fmt(r.firstBoot.healthMs.p50, 0),
        ...ms(r.firstBoot.readyMs),
        fmt(r.firstBoot.stopMs.p50, 0),
        r.firstBoot.exitCodes.join(' '),
      ],
      [
        'cold start (initialized volume)',
        fmt(r.coldStart.healthMs.p50, 0),
        ...ms(r.coldStart.readyMs),
        fmt(r.coldStart.stopMs.p50, 0),
        r.coldStart.exitCodes.join(' '),
      ],
    ]),
    '',
    ...budgetTable(r.budgets),
  ].join('\n');
}

async function main(): Promise<void> {
  const machine = describeMachine();
  const measured = await measure();
  const cleanStops = [...measured.firstBoot.exitCodes, ...measured.coldStart.exitCodes].every((code) => code === 0);
  const budgets: Budget[] = [
    {
      name: 'cold start → /readyz',
      limit: '≤ 10 s',
      actual: `${fmt(measured.coldStart.readyMs.max / 1000, 1)} s (max)`,
      pass: measured.coldStart.readyMs.max <= 10_000,
    },
    {
      name: 'docker stop exits 0 within the 10 s grace',
      limit: 'every stop',
      actual: cleanStops ? 'every stop' : 'not every stop',
      pass: cleanStops && measured.coldStart.stopMs.max < 10_000,
    },
  ];
  const report: Report = { machine, ...measured, budgets };
  writeResults(RESULTS_PATH, report, markdown(report));
  if (!cleanStops) process.exitCode = 1;
}

runBench(main);
