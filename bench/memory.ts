/**
 * Memory benchmark (npm run bench): confhub's resident memory as users run it, after start, after
 * a load of synced changes and after an idle time. The built server (`node dist/cli.js serve`) on a
 * temp data dir, shipped config.ini and limits, request logs at the shipped level into a file, and
 * a system.ini with two targets reloaded through real engines: `prog`, a program of a private
 * supervisord (supervisor:signal:HUP), and `box`, a busybox container of a private dockerd
 * (docker:signal:HUP; `--network none`). Each change is a `PUT ?wait=true` of one [bench] key that
 * both targets render, so every change writes two files, reloads both services and commits once.
 *
 * Memory is read from /proc/<pid>/status (VmRSS, VmHWM, RssAnon, RssFile) and the main thread's
 * heap from /metrics; nothing is asked of confhub to collect garbage first (it offers no way to):
 * the numbers are what a user sees. BENCH_MEMORY_PROFILE=1 preloads bench/lib/heap-probe.mjs,
 * which adds each thread's V8 heap to every sample and, at the end, heap snapshots of both threads
 * (each collects garbage first; RSS after them is reported apart).
 *
 * Environment: BENCH_MEMORY_CHANGES (default 500), BENCH_MEMORY_IDLE (seconds, default 30),
 * BENCH_MEMORY_HEALTH (`none`, default, or `auto`: a 0.5 s stability check after each reload,
 * about four times slower), BENCH_MEMORY_PROFILE (1: the heap probe).
 * Results: bench/results/memory-<date>.json. Budgets are reported, never enforced.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Docker from 'dockerode';
import { DOCKERD, SUPERVISORD, ensureBusyboxImage, runBusybox, startDockerd, startSupervisord } from '../test/support/engines.js';
import { freePort } from '../test/support/ports.js';
import { assertBuilt, HOST } from './lib/confhub.js';
import { positiveFromEnv } from './lib/env.js';
import { summarizeHeapSnapshot, type HeapSummary } from './lib/heap-snapshot.js';
import { describeMachine } from './lib/machine.js';
import { CLI, ROOT } from './lib/paths.js';
import { log, makeTempDir, onExit, runBench, signalPid, sleep } from './lib/processes.js';
import { budgetTable, fmt, markdownTable, RESULTS_DIR, writeResults, type Budget } from './lib/report.js';
import { processStatus, type ProcessStatus } from './lib/resource-usage.js';
import { countBy, round } from './lib/stats.js';

const CHANGES = positiveFromEnv('BENCH_MEMORY_CHANGES', 500, 'count');
const IDLE_S = positiveFromEnv('BENCH_MEMORY_IDLE', 30, 'seconds');
const HEALTH = process.env.BENCH_MEMORY_HEALTH === 'auto' ? 'auto' : 'none';
const PROFILE = process.env.BENCH_MEMORY_PROFILE === '1';
const TRACE_EVERY = 50;
/** After /readyz: the first reconcile's reloads finish and confhub goes idle, as a user finds it. */
const SETTLE_MS = 15_000;
/** The budget is 120 MB in decimal megabytes: 114.4 MiB. */
const BUDGET_BYTES = 120e6;
const PROGRAM = 'prog';
const CONTAINER = 'confhub-memory-box';
const DATE = new Date().toISOString().slice(0, 10);
const RESULTS_PATH = join(RESULTS_DIR, `memory-${DATE}.json`);
const MIB = 1024 * 1024;

interface Sample extends ProcessStatus {
  after: string;
  /** The main thread's V8 heap from /metrics (prom-client); the worker's heap is not exposed. */
  mainHeapUsedBytes: number | null;
  mainHeapTotalBytes: number | null;
  externalBytes: number | null;
  /** Committed bytes of the main thread's heap spaces (new, old, code, large_object…), from /metrics. */
  mainHeapSpacesBytes: Record<string, number>;
  /** With the heap probe: V8's statistics of each thread. */
  heaps?: ThreadHeaps;
}

interface ThreadHeap {
  usedBytes: number;
  totalBytes: number;
  physicalBytes: number;
  spaces: Record<string, { sizeBytes: number; usedBytes: number; physicalBytes: number }>;
}

interface ThreadHeaps {
  main: ThreadHeap;
  workers: ThreadHeap[];
}

/** The heap probe's commands (bench/lib/heap-probe.mjs): write the command, signal, wait for its answer file. */
function createProbe(pid: number, dir: string) {
  let round = 0;
  return async function ask<T>(command: 'stats' | 'snapshot'): Promise<T> {
    writeFileSync(join(dir, 'command'), command);
    const answer = join(dir, `${command}-${++round}.json`);
    signalPid(pid, 'SIGUSR2');
    const started = performance.now();
    while (!existsSync(answer)) {
      if (performance.now() - started > 120_000) throw new Error(`the heap probe did not answer "${command}" within 120 s`);
      await sleep(50);
    }
    await sleep(50);
    return JSON.parse(readFileSync(answer, 'utf8')) as T;
  };
}

type Probe = ReturnType<typeof createProbe>;

/** `name{space="x"} value` lines of Prometheus text, by space. */
function metricBySpace(text: string, name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const match of text.matchAll(new RegExp(`^${name}\\{space="([a-z_]+)"\\} (\\S+)`, 'gm'))) out[match[1]!] = Number(match[2]);
  return out;
}

/** A value of an unlabelled series in Prometheus text. */
function metricValue(text: string, name: string): number | null {
  const match = new RegExp(`^${name} (\\S+)`, 'm').exec(text);
  return match ? Number(match[1]) : null;
}

async function sample(after: string, confhub: { pid: number; base: string; probe: Probe | undefined }): Promise<Sample> {
  const status = processStatus(confhub.pid);
  let text = '';
  try {
    text = await (await fetch(`${confhub.base}/metrics`)).text();
  } catch {
    // reported as null
  }
  const threads = confhub.probe ? await confhub.probe<ThreadHeaps>('stats') : undefined;
  const result: Sample = {
    after,
    ...status,
    mainHeapUsedBytes: metricValue(text, 'nodejs_heap_size_used_bytes'),
    mainHeapTotalBytes: metricValue(text, 'nodejs_heap_size_total_bytes'),
    externalBytes: metricValue(text, 'nodejs_external_memory_bytes'),
    mainHeapSpacesBytes: metricBySpace(text, 'nodejs_heap_space_size_total_bytes'),
    ...(threads ? { heaps: threads } : {}),
  };
  const heaps = threads
    ? `; heaps (used/physical MiB): main ${heapText(threads.main)}${threads.workers.map((w) => `, worker ${heapText(w)}`).join('')}`
    : `; main heap ${fmt((result.mainHeapTotalBytes ?? NaN) / MIB, 1)} MiB`;
  log(`${after}: RSS ${mib(result.rssKiB)} MiB (peak ${mib(result.peakRssKiB)}, anonymous ${mib(result.rssAnonKiB)})${heaps}`);
  return result;
}

const heapText = (heap: ThreadHeap): string => `${fmt(heap.usedBytes / MIB, 1)}/${fmt(heap.physicalBytes / MIB, 1)}`;

const mib = (kib: number | null): string => fmt((kib ?? NaN) / 1024, 1);

function writeConfig(dataDir: string, sockets: { docker: string; supervisor: string }) {
  const configDir = join(dataDir, 'config');
  mkdirSync(configDir, { recursive: true, mode: 0o700 });
  const shippedSystem = readFileSync(join(ROOT, 'config', 'system.ini'), 'utf8');
  const shippedSync = (key: string): string => new RegExp(`^${key} = (.*)$`, 'm').exec(shippedSystem)?.[1] ?? '';
  const targets = {
    box: {
      sections: 'bench',
      format: 'json',
      output: 'services/box/box.json',
      mode: '0644',
      reload: `docker:signal:HUP:${CONTAINER}`,
      health: HEALTH,
      timeout: '1',
    },
    prog: {
      sections: 'bench',
      format: 'ini',
      output: 'services/prog/prog.ini',
      mode: '0644',
      reload: `supervisor:signal:HUP:${PROGRAM}`,
      health: HEALTH,
      timeout: '1',
    },
  };
  const sync = {
    docker_socket: sockets.docker,
    supervisor_url: sockets.supervisor,
    // The shipped timings.
    debounce_min_ms: shippedSync('debounce_min_ms'),
    debounce_max_ms: shippedSync('debounce_max_ms'),
    poll_interval_ms: shippedSync('poll_interval_ms'),
    on_failure: 'rollback',
  };
  const section = (name: string, keys: Record<string, string>): string[] => [`[${name}]`, ...Object.entries(keys).map(([k, v]) => `${k} = ${v}`), ''];
  const lines = [
    '# confhub memory bench (bench/memory.ts)',
    ...section('sync', sync),
    ...Object.entries(targets).flatMap(([name, keys]) => section(`target:${name}`, keys)),
  ];
  writeFileSync(join(configDir, 'system.ini'), lines.join('\n'));
  const shipped = readFileSync(join(ROOT, 'config', 'config.ini'), 'utf8');
  writeFileSync(join(configDir, 'config.ini'), `${shipped.replace(/\n*$/, '\n')}\n[bench]\nvalue = start\n`, { mode: 0o600 });
  return { targets, sync: { ...sync, docker_socket: '<private dockerd>', supervisor_url: '<private supervisord>' } };
}

/** The inherited environment without CONFHUB_* (a developer's settings must not leak in), plus the data dir and port. */
function confhubEnv(dataDir: string, port: number, apiKey: string, probeDir: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('CONFHUB_') && !name.startsWith('NODE_')) env[name] = value;
  return {
    ...env,
    CONFHUB_DATA_DIR: dataDir,
    CONFHUB_HOST: HOST,
    CONFHUB_PORT: String(port),
    CONFHUB_API_KEY: apiKey,
    ...(probeDir ? { BENCH_HEAP_PROBE_DIR: probeDir } : {}),
  };
}

interface Running {
  pid: number;
  base: string;
  exited: () => boolean;
  stop: () => Promise<number | null>;
}

/** `node dist/cli.js serve`, stdout and stderr into logPath (as a process manager would), ready at /readyz 200. */
async function startConfhub(env: NodeJS.ProcessEnv, logPath: string, port: number): Promise<Running> {
  const fd = openSync(logPath, 'a');
  const args = [...(PROFILE ? ['--import', join(ROOT, 'bench', 'lib', 'heap-probe.mjs')] : []), CLI, 'serve'];
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const forget = onExit(() => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) signalPid(child.pid, 'SIGKILL');
  });
  const exited = (): boolean => child.exitCode !== null || child.signalCode !== null;
  const gone = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const base = `http://${HOST}:${port}`;
  const started = performance.now();
  for (;;) {
    if (exited()) throw new Error(`confhub exited during start-up; its log:\n${tail(logPath)}`);
    const status = await fetch(`${base}/readyz`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) break;
    if (performance.now() - started > 60_000) throw new Error(`confhub was not ready within 60 s; its log:\n${tail(logPath)}`);
    await sleep(100);
  }
  return {
    pid: child.pid!,
    base,
    exited,
    async stop() {
      signalPid(child.pid!, 'SIGTERM');
      const code = await gone;
      forget();
      return code;
    },
  };
}

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '(no log)';
  }
}

interface ChangeResult {
  outcome: string;
  targets: Record<string, string>;
}

async function change(base: string, apiKey: string, value: string): Promise<ChangeResult> {
  const url = `${base}/api/v1/settings/bench?key=value&value=${encodeURIComponent(value)}&wait=true`;
  const response = await fetch(url, { method: 'PUT', headers: { 'x-api-key': apiKey } });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`PUT bench.value answered ${response.status}: ${text.slice(0, 300)}`);
  const body = JSON.parse(text) as { sync: { outcome: string; targets: { target: string; state: string }[] } };
  return { outcome: body.sync.outcome, targets: Object.fromEntries(body.sync.targets.map((t) => [t.target, t.state])) };
}

/** Heap snapshots of both threads through the probe, summarized. */
async function heapProfile(probe: Probe) {
  const { files } = await probe<{ files: { main: string; workers: string[] } }>('snapshot');
  const summaries: { thread: string; heap: HeapSummary }[] = [{ thread: 'main', heap: summarizeHeapSnapshot(files.main) }];
  for (const file of files.workers) summaries.push({ thread: 'sync worker', heap: summarizeHeapSnapshot(file) });
  for (const file of [files.main, ...files.workers]) rmSync(file, { force: true });
  return {
    note: 'heap snapshots (each collects garbage first) of the main thread and the sync worker, taken by bench/lib/heap-probe.mjs after the idle time',
    snapshots: summaries,
  };
}

async function measure(dataDir: string, logDir: string) {
  const dockerd = await startDockerd();
  const forgetDockerd = onExit(() => signalPid(dockerd.pid, 'SIGTERM'));
  let supervisord: Awaited<ReturnType<typeof startSupervisord>> | undefined;
  try {
    const docker = new Docker({ socketPath: dockerd.socketPath });
    log('importing busybox into the private dockerd');
    await ensureBusyboxImage(dockerd.socketPath);
    const boxDir = join(dataDir, 'services', 'box');
    // A shell that takes SIGHUP as a reload: the trap reads the file the target writes.
    await runBusybox({ docker, name: CONTAINER, confDir: boxDir, script: "trap 'wc -c /conf/box.json >/dev/null' HUP; while :; do sleep 1 & wait $!; done" });
    const progDir = join(dataDir, 'services', 'prog');
    mkdirSync(progDir, { recursive: true });
    supervisord = await startSupervisord([
      {
        name: PROGRAM,
        command: `/bin/sh -c 'trap "wc -c ${join(progDir, 'prog.ini')} >/dev/null" HUP; while :; do sleep 1 & wait $!; done'`,
      },
    ]);
    const config = writeConfig(dataDir, { docker: dockerd.socketPath, supervisor: supervisord.url });

    const apiKey = randomBytes(24).toString('hex');
    const probeDir = PROFILE ? makeTempDir('confhub-memory-heap-') : undefined;
    const logPath = join(logDir, 'confhub.log');
    const port = await freePort();
    log(`starting confhub (node dist/cli.js serve${PROFILE ? ' with the heap probe' : ''}); logs into a file`);
    const confhub = await startConfhub(confhubEnv(dataDir, port, apiKey, probeDir), logPath, port);
    const samples: Sample[] = [];
    const outcomes: ChangeResult[] = [];
    const probe = probeDir ? createProbe(confhub.pid, probeDir) : undefined;
    const target = { pid: confhub.pid, base: confhub.base, probe };
    let profile: Awaited<ReturnType<typeof heapProfile>> | undefined;
    let loadSeconds = 0;
    let exitCode: number | null;
    try {
      await sleep(SETTLE_MS);
      samples.push(await sample('start', target));
      const tag = Date.now().toString(36);
      const started = performance.now();
      for (let i = 0; i < CHANGES; i++) {
        outcomes.push(await change(confhub.base, apiKey, `${tag}-${i}`));
        if ((i + 1) % TRACE_EVERY === 0 && i + 1 < CHANGES) samples.push(await sample(`${i + 1} changes`, target));
      }
      loadSeconds = (performance.now() - started) / 1000;
      samples.push(await sample('load', target));
      log(`idle for ${IDLE_S} s`);
      await sleep(IDLE_S * 1000);
      samples.push(await sample('idle', target));
      if (probe) {
        profile = await heapProfile(probe);
        samples.push(await sample('after the heap snapshots (a full GC of both threads)', target));
      }
    } finally {
      exitCode = await confhub.stop();
    }
    const logBytes = statSync(logPath).size;
    const logLines = readFileSync(logPath, 'utf8')
      .split('\n')
      .filter((l) => l !== '').length;
    return {
      settings: {
        changes: CHANGES,
        idleSeconds: IDLE_S,
        settleSecondsAfterReady: SETTLE_MS / 1000,
        health: HEALTH,
        profile: PROFILE,
        confhub: 'node dist/cli.js serve; shipped config.ini, rate limits and log level; logs into a file',
        sync: config.sync,
        targets: config.targets,
        program: `supervisord program ${PROGRAM}: /bin/sh trapping HUP`,
        container: `busybox (docker import of the machine's busybox), --network none, sh trapping HUP`,
        gc: 'not forced from outside: confhub offers no way to ask for it (it collects by itself once idle); with BENCH_MEMORY_PROFILE=1 the heap snapshots at the end do',
      },
      loadSeconds: round(loadSeconds, 1),
      outcomes: countBy(outcomes, (o) => o.outcome),
      targetStates: countBy(
        outcomes.flatMap((o) => Object.entries(o.targets).map(([t, s]) => `${t}: ${s}`)),
        (x) => x,
      ),
      samples,
      log: { bytes: logBytes, lines: logLines },
      exitCode,
      ...(profile ? { heapProfile: profile } : {}),
    };
  } finally {
    await supervisord?.stop();
    await dockerd.stop();
    forgetDockerd();
  }
}

function markdown(report: Awaited<ReturnType<typeof measure>> & { budgets: Budget[] }): string {
  const rows = report.samples
    .filter((s) => !s.after.endsWith(' changes'))
    .map((s) => [s.after, mib(s.rssKiB), mib(s.peakRssKiB), mib(s.rssAnonKiB), mib(s.rssFileKiB), fmt((s.mainHeapUsedBytes ?? NaN) / MIB, 1)]);
  const lines = [
    `**Memory** (${report.settings.changes} changes through a supervisord and a Docker target in ${fmt(report.loadSeconds, 0)} s, then ${report.settings.idleSeconds} s idle):`,
    '',
    ...markdownTable(['after', 'RSS MiB', 'peak (VmHWM) MiB', 'anonymous MiB', 'file-backed MiB', 'main heap used MiB'], 'lrrrrr', rows),
    '',
  ];
  if (report.heapProfile) {
    lines.push(
      ...markdownTable(
        ['thread', 'live heap MiB', 'largest kinds (self size)'],
        'lrl',
        report.heapProfile.snapshots.map((s) => [
          s.thread,
          fmt(s.heap.selfBytes / MIB, 1),
          s.heap.top
            .slice(0, 5)
            .map((g) => `${g.what} ${fmt(g.selfBytes / MIB, 1)}`)
            .join(', '),
        ]),
      ),
      '',
    );
  }
  lines.push(...budgetTable(report.budgets));
  return lines.join('\n');
}

async function main(): Promise<void> {
  const machine = describeMachine();
  assertBuilt();
  if (!SUPERVISORD || !DOCKERD) throw new Error('the memory bench needs supervisord and dockerd (Debian: apt-get install supervisor docker.io)');
  const dataDir = makeTempDir('confhub-memory-');
  const logDir = makeTempDir('confhub-memory-log-');
  const measured = await measure(dataDir, logDir);
  const idle = measured.samples.find((s) => s.after === 'idle');
  const idleBytes = (idle?.rssKiB ?? NaN) * 1024;
  const applied = measured.outcomes.applied ?? 0;
  const budgets: Budget[] = [
    {
      name: `RSS idle after ${CHANGES} synced changes`,
      limit: '≤ 120 MB (114.4 MiB)',
      actual: `${fmt(idleBytes / 1e6, 1)} MB (${fmt(idleBytes / MIB, 1)} MiB)`,
      pass: idleBytes <= BUDGET_BYTES,
    },
    { name: 'every change applied to both targets', limit: `${CHANGES}`, actual: `${applied}`, pass: applied === CHANGES },
  ];
  const report = { machine, ...measured, budgets };
  writeResults(RESULTS_PATH, report, markdown(report), [dataDir, logDir]);
  if (applied !== CHANGES || measured.exitCode !== 0) {
    log(`INVALID RUN: ${applied} of ${CHANGES} changes applied; confhub exited with ${measured.exitCode}`);
    process.exitCode = 1;
  }
}

runBench(main);
