/**
 * Propagation benchmark (npm run bench, after the HTTP one): how long a config.ini change takes to
 * reach the services, against the built server and a private supervisord (test/support/engines.ts).
 * Results go to bench/results/propagation.json, a Markdown summary to stdout, progress to stderr.
 *
 * One [bench] section feeds four targets. Two read keys of their own, so that a file change does
 * not also restart a program: `file` renders `value = {{ bench.value }}` (reload none); `prog`
 * renders `restart = {{ bench.restart }}` into the file the supervisord program `prog` reads at
 * start (supervisor:restart:prog, health auto, startsecs = 1). The other two both read
 * bench.shared, so every change of it is a file for `shared` (reload none) and a restart of the
 * program `slow` (supervisor:restart:slow, health auto, startsecs = 2: more than 3 s per restart).
 *
 * Scenarios 1-3 (API and hand changes of bench.value, API changes of bench.restart) are sequential,
 * each change waiting until confhub's run of the previous one has finished, so no run overlaps the
 * next change. Scenarios 4-5 ("slow sibling", API and hand changes of bench.shared) never wait
 * for `slow`: the next change goes out a fixed BENCH_SLOW_GAP_MS after `shared`'s file holds the
 * previous one, so the program's lane is restarting it all the time: they measure that a slow
 * service does not delay another target's file. The gap stands in for the wait of scenarios 1-2,
 * which also lets the previous change's history commit (git processes, ~20 ms) finish, so that
 * cost is not billed to the next change; it is far shorter than one restart of `slow`. After
 * their last change the bench waits (unmeasured) until `slow` has caught up. Scenario 6 (no-op
 * PUTs) and 7 (idle) follow. confhub's sync_runs table, read after it stops, lets
 * propagation-report.ts split each latency into "until the run started" and "the run itself".
 *
 * Environment: BENCH_CHANGES (API and hand changes, default 200), BENCH_PID_CHANGES (default 50),
 * BENCH_SLOW_CHANGES (each slow-sibling scenario, default 100), BENCH_SLOW_GAP_MS (default 200),
 * BENCH_NOOP_CHANGES (default 20), BENCH_IDLE (seconds, default 30), BENCH_PID_POLL_MS (default 10).
 * Budgets are reported, never enforced; the exit code is 1 only when the run itself failed.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, watch, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import BetterSqlite3 from 'better-sqlite3';
import { pino } from 'pino';
import { createSupervisorDriver, type SupervisorDriver } from '../src/reload/supervisor.js';
import { SUPERVISORD, startSupervisord } from '../test/support/engines.js';
import { assertBuilt, startConfhub } from './lib/confhub.js';
import { positiveFromEnv } from './lib/env.js';
import { dataDirFileSystem, describeMachine } from './lib/machine.js';
import { ROOT } from './lib/paths.js';
import { log, makeTempDir, onExit, runBench, signalPid, sleep, stopServer } from './lib/processes.js';
import { fmtMiB, RESULTS_DIR, writeResults } from './lib/report.js';
import {
  clockTicksPerSecond,
  cpuShares,
  processStatus,
  processTicks,
  sampleCpu,
  threadCpuNs,
  type CpuSample,
  type ProcessStatus,
} from './lib/resource-usage.js';
import { round } from './lib/stats.js';
import { SYNC, writeSystemIni } from './lib/system-ini.js';
import { buildReport, markdown } from './propagation-report.js';

const RESULTS_PATH = join(RESULTS_DIR, 'propagation.json');
const CHANGES = positiveFromEnv('BENCH_CHANGES', 200, 'count');
const PID_CHANGES = positiveFromEnv('BENCH_PID_CHANGES', 50, 'count');
const SLOW_CHANGES = positiveFromEnv('BENCH_SLOW_CHANGES', 100, 'count');
/** Between a change's t1 and the next change in scenarios 4-5 (see the header). */
const SLOW_GAP_MS = positiveFromEnv('BENCH_SLOW_GAP_MS', 200, 'count');
const NOOP_CHANGES = positiveFromEnv('BENCH_NOOP_CHANGES', 20, 'count');
const IDLE_S = positiveFromEnv('BENCH_IDLE', 30, 'count');
/** The idle window's first seconds, in which each thread runs its one collection after the load. */
const IDLE_SETTLE_S = Math.min(10, Math.floor(IDLE_S / 2));
const PID_POLL_MS = positiveFromEnv('BENCH_PID_POLL_MS', 10, 'count');
const PROGRAM = 'prog';
const STARTSECS = 1;
/** The slow sibling: its restart (stop, startsecs, then health auto's 1 s of a stable pid) takes more than 3 s. */
const SLOW_PROGRAM = 'slow';
const SLOW_STARTSECS = 2;
/** Backstop for the output directory's fs.watch events. */
const FILE_POLL_MS = 2;
/** How often /api/v1/sync/status is asked while waiting for a run to finish (not measured). */
const STATUS_POLL_MS = 5;
const FILE_TIMEOUT_MS = 10_000;
const PID_TIMEOUT_MS = 30_000;
const RUN_TIMEOUT_MS = 60_000;
/** Longer than debounce_max_ms and the content poll, so a late run after the no-op PUTs would show. */
const NOOP_SETTLE_MS = Math.max(SYNC.debounceMaxMs, SYNC.pollIntervalMs) + 1000;

/** Same clock as Date.now(), which sync_runs uses, with sub-millisecond resolution. */
const wallNow = (): number => performance.timeOrigin + performance.now();
const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');
const sinceT0 = (at: number | undefined, t0: number): number | null => (at === undefined ? null : round(at - t0, 3));

// ---------------------------------------------------------------------------------------------
// Detectors

export type FileDetector = 'fs.watch' | 'poll';

/**
 * wait() resolves when the file holds `needle`, checked on every fs.watch event of its directory
 * (the writer renames a temp file over it) and every FILE_POLL_MS. The time is taken before the
 * read that found the bytes: its open already saw the renamed file.
 */
function fileWaiter(path: string) {
  let check: ((by: FileDetector) => void) | undefined;
  let stop = (): void => undefined;
  const watcher = watch(dirname(path), () => check?.('fs.watch'));
  const wait = (needle: Buffer): Promise<{ at: number; by: FileDetector }> =>
    new Promise((resolve, reject) => {
      const poll = setInterval(() => check?.('poll'), FILE_POLL_MS);
      const timer = setTimeout(() => {
        stop();
        reject(new Error(`${basename(path)} did not hold "${needle.toString('utf8').trim()}" within ${FILE_TIMEOUT_MS} ms`));
      }, FILE_TIMEOUT_MS);
      stop = () => {
        check = undefined;
        clearInterval(poll);
        clearTimeout(timer);
      };
      check = (by) => {
        const at = performance.now();
        let bytes: Buffer;
        try {
          bytes = readFileSync(path);
        } catch {
          return;
        }
        if (!bytes.includes(needle)) return;
        stop();
        resolve({ at, by });
      };
      check('poll');
    });
  const close = (): void => {
    stop();
    watcher.close();
  };
  return { wait, close };
}

/** When this process saw the first fs.watch event of config.ini after arm(). */
function configEventWatcher(path: string) {
  let seenAt: number | undefined | null = null; // null: not armed
  const watcher = watch(dirname(path), (_event, file) => {
    if (seenAt === undefined && file === basename(path)) seenAt = performance.now();
  });
  const take = (): number | undefined => {
    const at = seenAt ?? undefined;
    seenAt = null;
    return at;
  };
  const arm = (): void => {
    seenAt = undefined;
  };
  return { arm, take, close: () => watcher.close() };
}

// ---------------------------------------------------------------------------------------------
// confhub API

/** t0 and its wall-clock time (to join with sync_runs), and the revision the change made. */
type Change = { t0: number; t0Wall: number; revision: string };

function revisionFromEtag(etag: string | null): string {
  const match = /^"([0-9a-f]{64})"$/.exec(etag ?? '');
  if (!match) throw new Error(`unexpected ETag ${etag}`);
  return match[1]!;
}

function createApi(base: string, apiKey: string) {
  const headers = { 'x-api-key': apiKey };
  const get = async (path: string): Promise<{ status: number; body: string }> => {
    const response = await fetch(`${base}${path}`, { headers });
    return { status: response.status, body: await response.text() };
  };
  const put = async (key: string, value: string) => {
    const response = await fetch(`${base}/api/v1/settings/bench?key=${encodeURIComponent(key)}&value=${encodeURIComponent(value)}`, { method: 'PUT', headers });
    // t0: the answer's head has arrived (the body is a few bytes and follows in the same packet).
    const t0 = performance.now();
    const t0Wall = wallNow();
    return { status: response.status, etag: response.headers.get('etag'), body: await response.text(), t0, t0Wall };
  };
  const change = async (key: string, value: string): Promise<Change> => {
    const answer = await put(key, value);
    if (answer.status !== 200) throw new Error(`PUT bench.${key} answered ${answer.status}: ${answer.body.slice(0, 300)}`);
    return { t0: answer.t0, t0Wall: answer.t0Wall, revision: revisionFromEtag(answer.etag) };
  };
  /**
   * Waits until confhub's last finished run (every lane done with its revision) is this revision,
   * or any run for `'first'` (not measured); returns its outcome.
   */
  const runDone = async (revision: string | 'first'): Promise<string> => {
    const deadline = Date.now() + RUN_TIMEOUT_MS;
    for (;;) {
      const status = await get('/api/v1/sync/status');
      if (status.status !== 200) throw new Error(`GET /api/v1/sync/status answered ${status.status}: ${status.body.slice(0, 300)}`);
      const lastRun = (JSON.parse(status.body) as { lastRun: { revision: string; outcome: string } | null }).lastRun;
      if (lastRun && (revision === 'first' || lastRun.revision === revision)) return lastRun.outcome;
      if (Date.now() > deadline)
        throw new Error(`confhub did not finish a run of revision ${revision.slice(0, 12)} within ${RUN_TIMEOUT_MS} ms (last run: ${JSON.stringify(lastRun)})`);
      await sleep(STATUS_POLL_MS);
    }
  };
  return { get, put, change, runDone };
}

// ---------------------------------------------------------------------------------------------
// Scenarios

interface Context {
  api: ReturnType<typeof createApi>;
  supervisor: SupervisorDriver;
  confhubPid: number;
  cpu(): CpuSample<'confhub' | 'bench' | 'supervisord'> | null;
  output: ReturnType<typeof fileWaiter>;
  /** The output of `shared`, the reload-none target beside the slow sibling. */
  sharedOutput: ReturnType<typeof fileWaiter>;
  configEvents: ReturnType<typeof configEventWatcher>;
  paths: ReturnType<typeof benchPaths>;
  runTag: string;
  /** confhub's memory at ready, every so many changes, and after the idle window. */
  rssTrace: ({ after: string } & ProcessStatus)[];
}

export interface Sample {
  latencyMs: number;
  t0Wall: number;
  t1Wall: number;
  revision: string;
  /** null: not waited for (slow-sibling scenarios); the report takes it from sync_runs. */
  outcome: string | null;
  /** When this process saw config.ini's fs.watch event, relative to t0 (negative: before). */
  configEventMs: number | null;
}

async function runChanges<S extends Sample>(label: string, count: number, traceEvery: number, ctx: Context, change: (i: number) => Promise<S>) {
  const samples: S[] = [];
  const before = ctx.cpu();
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    samples.push(await change(i));
    if ((i + 1) % traceEvery === 0) {
      ctx.rssTrace.push({ after: `${label} ${i + 1}`, ...processStatus(ctx.confhubPid) });
      log(`${label}: ${i + 1}/${count}`);
    }
  }
  return { samples, cpu: cpuShares(before, ctx.cpu()), durationSeconds: (performance.now() - started) / 1000 };
}

export type ScenarioRun<S extends Sample> = Awaited<ReturnType<typeof runChanges<S>>>;

/** One change, t0 as `change` reports it, t1 when `output` holds `line`; the outcome is not waited for. */
async function changeToFile(ctx: Context, output: ReturnType<typeof fileWaiter>, line: string, change: () => Promise<Change>) {
  const waiting = output.wait(Buffer.from(line));
  waiting.catch(() => undefined);
  ctx.configEvents.arm();
  const { t0, t0Wall, revision } = await change();
  const hit = await waiting;
  return {
    latencyMs: round(hit.at - t0, 3),
    t0Wall: round(t0Wall, 3),
    t1Wall: round(t0Wall + (hit.at - t0), 3),
    revision,
    configEventMs: sinceT0(ctx.configEvents.take(), t0),
    detectedBy: hit.by,
  };
}

/** bench.value changed `count` times by `change`; t1 = the file target's output holds the value. */
function fileScenario(label: 'api' | 'hand', count: number, ctx: Context, change: (value: string, i: number) => Promise<Change>) {
  log(`${label}: ${count} changes`);
  return runChanges(label, count, 50, ctx, async (i) => {
    const value = `${ctx.runTag}${label.charAt(0)}${String(i).padStart(6, '0')}`;
    const sample = await changeToFile(ctx, ctx.output, `value = ${value}\n`, () => change(value, i));
    return { ...sample, outcome: await ctx.api.runDone(sample.revision) };
  });
}

/** config.ini replaced as an editor does: temp file in the same directory, fsync, rename. */
async function handWrite(configPath: string, key: 'value' | 'shared', value: string, i: number): Promise<Change> {
  const text = readFileSync(configPath, 'utf8');
  const line = new RegExp(`^${key} = .*$`, 'gm');
  const count = text.match(line)?.length ?? 0;
  if (count !== 1) throw new Error(`config.ini has ${count} "${key} = " lines; expected exactly the one in [bench]`);
  const next = text.replace(line, `${key} = ${value}`);
  const temp = join(dirname(configPath), `.config.ini.bench-${i}.tmp`);
  const fd = openSync(temp, 'w', 0o600);
  try {
    writeSync(fd, next);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, configPath);
  return { t0: performance.now(), t0Wall: wallNow(), revision: sha256(next) };
}

/** bench.restart changed `count` times; t1 = supervisord answers a new pid in state RUNNING. */
function pidScenario(count: number, ctx: Context) {
  log(`pid: ${count} changes (each restarts ${PROGRAM}; startsecs = ${STARTSECS})`);
  return runChanges('pid', count, 10, ctx, async (i) => {
    const old = await ctx.supervisor.processInfo(PROGRAM);
    if (old.state !== 'RUNNING' || old.pid <= 0) throw new Error(`${PROGRAM} is ${old.state} before change ${i}`);
    const value = `${ctx.runTag}p${String(i).padStart(6, '0')}`;
    ctx.configEvents.arm();
    const { t0, t0Wall, revision } = await ctx.api.change('restart', value);
    let oldGone: number | undefined;
    let newPid: number | undefined;
    let t1: number | undefined;
    let polls = 0;
    while (t1 === undefined) {
      const asked = performance.now();
      const info = await ctx.supervisor.processInfo(PROGRAM, { timeoutMs: 2000 });
      const answered = performance.now();
      polls++;
      const isNew = info.pid > 0 && info.pid !== old.pid;
      if (oldGone === undefined && (info.pid !== old.pid || info.state !== 'RUNNING')) oldGone = answered;
      if (newPid === undefined && isNew) newPid = answered;
      if (isNew && info.state === 'RUNNING') t1 = answered;
      else if (answered - t0 > PID_TIMEOUT_MS)
        throw new Error(`${PROGRAM} had no new RUNNING pid ${PID_TIMEOUT_MS} ms after the PUT (last: ${info.state} pid ${info.pid})`);
      else await sleep(PID_POLL_MS - (performance.now() - asked));
    }
    const configEventMs = sinceT0(ctx.configEvents.take(), t0);
    let seen = '';
    try {
      seen = readFileSync(ctx.paths.seen, 'utf8');
    } catch {
      // not seen
    }
    const outcome = await ctx.api.runDone(revision);
    return {
      latencyMs: round(t1 - t0, 3),
      t0Wall: round(t0Wall, 3),
      t1Wall: round(t0Wall + (t1 - t0), 3),
      revision,
      outcome,
      configEventMs,
      /** First getProcessInfo answer without the old pid RUNNING, and the first with the new pid, since t0. */
      oldGoneMs: sinceT0(oldGone, t0),
      newPidMs: sinceT0(newPid, t0),
      /** The new process read the new file. */
      sawNewFile: seen === `restart = ${value}\n`,
      polls,
    };
  });
}

/** What the slow program appends at each start: its pid and the wall-clock time in ns. */
function readStarts(path: string): { pid: number; wall: number }[] {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [pid, ns] = line.trim().split(/\s+/);
      return { pid: Number(pid), wall: Number(ns) / 1e6 };
    });
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

/**
 * bench.shared changed `count` times by `change`; t1 = `shared`'s output holds the value. Each
 * change also restarts SLOW_PROGRAM, which is not waited for: the next change goes out
 * SLOW_GAP_MS after the file holds this one, so the slow lane is busy for the whole scenario and
 * gets only the newest revision each time it is free. Afterwards, unmeasured, the sibling must
 * catch up.
 */
async function slowSiblingScenario(label: 'api-slow' | 'hand-slow', count: number, ctx: Context, change: (value: string, i: number) => Promise<Change>) {
  log(`${label}: ${count} changes of bench.shared, each also restarting ${SLOW_PROGRAM} (startsecs = ${SLOW_STARTSECS}), not waited for`);
  const startsBefore = readStarts(ctx.paths.slowStarts).length;
  const pidBefore = (await ctx.supervisor.processInfo(SLOW_PROGRAM)).pid;
  let last: { revision: string; value: string } | undefined;
  const run = await runChanges(label, count, 50, ctx, async (i) => {
    if (i > 0) await sleep(SLOW_GAP_MS);
    const value = `${ctx.runTag}${label === 'api-slow' ? 's' : 'e'}${String(i).padStart(6, '0')}`;
    const sample = await changeToFile(ctx, ctx.sharedOutput, `shared = ${value}\n`, () => change(value, i));
    last = { revision: sample.revision, value };
    return { ...sample, outcome: null };
  });
  const lastChangeWall = wallNow();
  const tailStarted = performance.now();
  const lastOutcome = await ctx.api.runDone(last!.revision);
  const tailMs = round(performance.now() - tailStarted, 0);
  const after = await ctx.supervisor.processInfo(SLOW_PROGRAM);
  const starts = readStarts(ctx.paths.slowStarts).slice(startsBefore);
  const during = starts.filter((s) => s.wall <= lastChangeWall);
  const firstT0 = run.samples[0]?.t0Wall ?? lastChangeWall;
  // A change sent while a new process of the sibling sat in its startsecs window: its lane was mid-restart.
  const startingWindowMs = SLOW_STARTSECS * 1000;
  const changesWhileStarting = run.samples.filter((sample) => during.some((s) => sample.t0Wall >= s.wall && sample.t0Wall < s.wall + startingWindowMs)).length;
  return {
    ...run,
    sibling: {
      /** Starts of the sibling's program (the program logs each) between the first and the last change. */
      startsDuringChanges: during.filter((s) => s.wall >= firstT0).length,
      /** Including the ones after the last change, until confhub's run of it finished. */
      startsUntilCaughtUp: starts.length,
      changesWhileStarting,
      pidBefore,
      pidAfter: after.pid,
      stateAfter: after.state,
      /** After the tail: the program's last start read the last change (latest wins, nothing lost). */
      caughtUp: after.state === 'RUNNING' && readOr(ctx.paths.slowSeen, '') === `shared = ${last!.value}\n`,
      lastRevisionOutcome: lastOutcome,
      /** Last change → confhub's run of it finished on every lane (not measured as a latency). */
      tailMs,
    },
  };
}

/** inode, mtime, ctime and size: a write or a rename changes at least one. */
function fileStamp(path: string): string | null {
  try {
    const s = statSync(path);
    return `${s.ino}/${s.mtimeMs}/${s.ctimeMs}/${s.size}`;
  } catch {
    return null;
  }
}

/** PUTs of the values already stored: no write, no reload and no run that changes something. */
async function noopScenario(count: number, ctx: Context) {
  log(`no-op: ${count} PUTs of the values already stored (alternating bench.value and bench.restart), then ${NOOP_SETTLE_MS} ms of quiet`);
  const current = await ctx.api.get('/api/v1/settings/bench');
  if (current.status !== 200) throw new Error(`GET /api/v1/settings/bench answered ${current.status}`);
  const stored = JSON.parse(current.body) as Record<string, unknown>;
  const values = { value: String(stored.value), restart: String(stored.restart) };
  const files = [ctx.paths.fileOutput, ctx.paths.progOutput, ctx.paths.config];
  const stamps = files.map(fileStamp);
  const pidBefore = (await ctx.supervisor.processInfo(PROGRAM)).pid;
  const revisionBefore = sha256(readFileSync(ctx.paths.config, 'utf8'));
  const before = ctx.cpu();
  const windowStartWall = Date.now();
  const statuses: Record<string, number> = {};
  const revisions = new Set<string>();
  for (let i = 0; i < count; i++) {
    const key = i % 2 === 0 ? 'value' : 'restart';
    const put = await ctx.api.put(key, values[key]);
    statuses[put.status] = (statuses[put.status] ?? 0) + 1;
    if (put.etag) revisions.add(revisionFromEtag(put.etag));
  }
  await sleep(NOOP_SETTLE_MS);
  const windowEndWall = Date.now();
  const cpu = cpuShares(before, ctx.cpu());
  const unchanged = (i: number): boolean => stamps[i] !== null && stamps[i] === fileStamp(files[i]!);
  return {
    puts: count,
    statuses,
    /** 1 when nothing changed. */
    distinctRevisions: revisions.size,
    revisionChanged: [...revisions].some((r) => r !== revisionBefore),
    windowStartWall,
    windowEndWall,
    settleMs: NOOP_SETTLE_MS,
    fileOutputUnchanged: unchanged(0),
    progOutputUnchanged: unchanged(1),
    configIniUnchanged: unchanged(2),
    pidBefore,
    pidAfter: (await ctx.supervisor.processInfo(PROGRAM)).pid,
    cpu,
  };
}

/**
 * confhub's CPU and memory over a window in which nothing asks it anything, second by second and
 * by thread (the main thread's id is the pid; the others are the sync worker and V8's and libuv's
 * helpers), so a cost belongs to a moment and a thread. The first IDLE_SETTLE_S seconds hold the
 * one full collection each thread runs once the load is over (src/idle-gc.ts); the rest is what
 * confhub costs while nothing happens.
 */
async function idleScenario(ctx: Context, rssAtReadyKiB: number | null) {
  log(`idle: ${IDLE_S} s with nothing to do (this process only sleeps)`);
  const hz = clockTicksPerSecond();
  await sleep(500);
  const before = ctx.cpu();
  const t0 = performance.now();
  const ticks0 = processTicks(ctx.confhubPid);
  const perSecond: { second: number; cpuMs: number; byThread: Record<string, number> }[] = [];
  let previous = threadCpuNs(ctx.confhubPid);
  for (let second = 1; second <= IDLE_S; second++) {
    await sleep(t0 + second * 1000 - performance.now());
    const current = threadCpuNs(ctx.confhubPid);
    const byThread: Record<string, number> = {};
    let cpuMs = 0;
    for (const [tid, ns] of current) {
      const ms = (ns - (previous.get(tid) ?? 0)) / 1e6;
      cpuMs += ms;
      if (ms >= 0.05) byThread[tid === ctx.confhubPid ? 'main' : String(tid)] = round(ms, 2);
    }
    perSecond.push({ second, cpuMs: round(cpuMs, 2), byThread });
    previous = current;
  }
  const ticks = processTicks(ctx.confhubPid) - ticks0;
  const elapsedS = (performance.now() - t0) / 1000;
  const machine = cpuShares(before, ctx.cpu());
  const status = processStatus(ctx.confhubPid);
  ctx.rssTrace.push({ after: 'idle', ...status });
  const share = (seconds: typeof perSecond) => (seconds.length === 0 ? null : round(seconds.reduce((a, s) => a + s.cpuMs, 0) / (seconds.length * 10), 3));
  const settlePercent = share(perSecond.slice(0, IDLE_SETTLE_S));
  const steadyPercent = share(perSecond.slice(IDLE_SETTLE_S));
  const cpuPercent = share(perSecond);
  log(`idle: ${cpuPercent} % of a core over ${IDLE_S} s (first ${IDLE_SETTLE_S} s: ${settlePercent} %, after: ${steadyPercent} %)`);
  return {
    seconds: round(elapsedS, 2),
    rssAtReadyKiB,
    cpuPercent,
    settleSeconds: IDLE_SETTLE_S,
    settlePercent,
    steadyPercent,
    perSecond,
    cpuTicks: ticks,
    clockTicksPerSecond: hz,
    ...status,
    machine,
  };
}

// ---------------------------------------------------------------------------------------------
// Setup and run

function benchPaths(dataDir: string) {
  return {
    config: join(dataDir, 'config', 'config.ini'),
    fileOutput: join(dataDir, 'services/bench/file.conf'),
    progOutput: join(dataDir, 'services/prog/prog.conf'),
    /** What the program read at its last start. */
    seen: join(dataDir, 'services/prog/seen'),
    sharedOutput: join(dataDir, 'services/shared/shared.conf'),
    slowOutput: join(dataDir, 'services/slow/slow.conf'),
    slowSeen: join(dataDir, 'services/slow/seen'),
    /** One line per start of the slow program: its pid and the time. */
    slowStarts: join(dataDir, 'services/slow/starts'),
  };
}

/** system.ini with the four targets, their templates, and the shipped config.ini plus [bench]. */
function writeSyncConfig(dataDir: string, supervisorUrl: string): Record<string, Record<string, string>> {
  const configDir = join(dataDir, 'config');
  const targets: Record<string, Record<string, string>> = {
    file: {
      sections: 'bench',
      format: 'template',
      template: 'bench-file.tmpl',
      output: 'services/bench/file.conf',
      mode: '0644',
      reload: 'none',
      health: 'none',
    },
    prog: {
      sections: 'bench',
      format: 'template',
      template: 'bench-prog.tmpl',
      output: 'services/prog/prog.conf',
      mode: '0644',
      reload: `supervisor:restart:${PROGRAM}`,
      health: 'auto',
      timeout: '30',
    },
    shared: {
      sections: 'bench',
      format: 'template',
      template: 'bench-shared.tmpl',
      output: 'services/shared/shared.conf',
      mode: '0644',
      reload: 'none',
      health: 'none',
    },
    slow: {
      sections: 'bench',
      format: 'template',
      template: 'bench-shared.tmpl',
      output: 'services/slow/slow.conf',
      mode: '0644',
      reload: `supervisor:restart:${SLOW_PROGRAM}`,
      health: 'auto',
      timeout: '30',
    },
  };
  writeSystemIni(dataDir, 'confhub propagation bench (bench/propagation.ts)', targets, { supervisor_url: supervisorUrl, on_failure: 'rollback' });
  writeFileSync(join(configDir, 'bench-file.tmpl'), 'value = {{ bench.value }}\n');
  writeFileSync(join(configDir, 'bench-prog.tmpl'), 'restart = {{ bench.restart }}\n');
  writeFileSync(join(configDir, 'bench-shared.tmpl'), 'shared = {{ bench.shared }}\n');
  const shipped = readFileSync(join(ROOT, 'config', 'config.ini'), 'utf8');
  writeFileSync(join(configDir, 'config.ini'), `${shipped.replace(/\n*$/, '\n')}\n[bench]\nvalue = start\nrestart = start\nshared = start\n`, { mode: 0o600 });
  return targets;
}

export interface RunRow {
  revision: string;
  source: string;
  outcome: string;
  started_at: number;
  finished_at: number;
  targets: string;
}

/** supervisord and confhub started, the scenarios run, both stopped, then their database read. */
async function measure(dataDir: string) {
  const paths = benchPaths(dataDir);
  for (const path of [paths.config, paths.fileOutput, paths.progOutput, paths.sharedOutput, paths.slowOutput]) mkdirSync(dirname(path), { recursive: true });
  const fileSystem = dataDirFileSystem(dataDir, 'file latencies');
  const programCommand = `/bin/sh -c 'cat ${paths.progOutput} > ${paths.seen}; exec sleep 100000'`;
  // supervisord expands %(name)s in a command: %% is a literal % (date's %s%N, ns since the epoch).
  const slowCommand = `/bin/sh -c 'echo $$ $(date +%%s%%N) >> ${paths.slowStarts}; cat ${paths.slowOutput} > ${paths.slowSeen}; exec sleep 100000'`;
  log(`starting a private supervisord with programs ${PROGRAM} (startsecs = ${STARTSECS}) and ${SLOW_PROGRAM} (startsecs = ${SLOW_STARTSECS})`);
  const supervisord = await startSupervisord([
    { name: PROGRAM, command: programCommand, options: { startsecs: STARTSECS } },
    { name: SLOW_PROGRAM, command: slowCommand, options: { startsecs: SLOW_STARTSECS } },
  ]);
  // supervisord stops its program itself on SIGTERM.
  const forgetSupervisord = onExit(() => {
    signalPid(supervisord.pid, 'SIGTERM');
    rmSync(supervisord.dir, { recursive: true, force: true });
  });
  const supervisor = createSupervisorDriver({ url: supervisord.url, logger: pino({ level: 'silent' }) });
  const targets = writeSyncConfig(dataDir, supervisord.url);

  // /readyz answers once the first render is on disk; the restarts it causes are waited for below.
  // As users run it: shipped log level (its JSON lines into a file) and failed-authentication
  // limit. The request limit is raised as far as the bench's own status poll needs (every
  // STATUS_POLL_MS while a run is awaited: up to 12,000 requests a minute).
  const logFile = join(makeTempDir('confhub-propagation-logs-'), 'confhub.log');
  const rateLimitPerMinute = 2 * Math.ceil(60_000 / STATUS_POLL_MS);
  const confhub = await startConfhub(dataDir, '/readyz', 60_000, { asShipped: { logFile, rateLimitPerMinute } });
  const readyWall = wallNow();
  const ctx: Context = {
    api: createApi(confhub.base, confhub.apiKey),
    supervisor,
    confhubPid: confhub.pid,
    cpu: () => sampleCpu({ confhub: confhub.pid, bench: 'self', supervisord: supervisord.pid }),
    output: fileWaiter(paths.fileOutput),
    sharedOutput: fileWaiter(paths.sharedOutput),
    configEvents: configEventWatcher(paths.config),
    paths,
    runTag: Date.now().toString(36),
    rssTrace: [],
  };
  let runs: {
    api: Awaited<ReturnType<typeof fileScenario>>;
    hand: Awaited<ReturnType<typeof fileScenario>>;
    pid: Awaited<ReturnType<typeof pidScenario>>;
    apiSlow: Awaited<ReturnType<typeof slowSiblingScenario>>;
    handSlow: Awaited<ReturnType<typeof slowSiblingScenario>>;
    noop: Awaited<ReturnType<typeof noopScenario>>;
    idle: Awaited<ReturnType<typeof idleScenario>>;
  };
  try {
    if (readFileSync(paths.fileOutput, 'utf8') !== 'value = start\n') throw new Error('the first reconcile did not write the file target');
    if (readFileSync(paths.sharedOutput, 'utf8') !== 'shared = start\n') throw new Error('the first reconcile did not write the shared target');
    log(`confhub ready; waiting until its first run has restarted ${PROGRAM} and ${SLOW_PROGRAM}`);
    const firstOutcome = await ctx.api.runDone('first');
    if (firstOutcome !== 'applied') throw new Error(`confhub's first run ended ${firstOutcome}`);
    const first = await supervisor.processInfo(PROGRAM);
    if (first.state !== 'RUNNING') throw new Error(`${PROGRAM} is ${first.state} after confhub's start`);
    const firstSlow = await supervisor.processInfo(SLOW_PROGRAM);
    if (firstSlow.state !== 'RUNNING') throw new Error(`${SLOW_PROGRAM} is ${firstSlow.state} after confhub's start`);
    const atReady = processStatus(confhub.pid);
    ctx.rssTrace.push({ after: 'ready', ...atReady });
    log(
      `confhub ready (pid ${confhub.pid}, RSS ${fmtMiB(atReady.rssKiB)} MiB); ${PROGRAM} RUNNING as pid ${first.pid}, ${SLOW_PROGRAM} as pid ${firstSlow.pid}`,
    );

    const api = await fileScenario('api', CHANGES, ctx, (value) => ctx.api.change('value', value));
    const hand = await fileScenario('hand', CHANGES, ctx, (value, i) => handWrite(paths.config, 'value', value, i));
    const pid = await pidScenario(PID_CHANGES, ctx);
    const apiSlow = await slowSiblingScenario('api-slow', SLOW_CHANGES, ctx, (value) => ctx.api.change('shared', value));
    const handSlow = await slowSiblingScenario('hand-slow', SLOW_CHANGES, ctx, (value, i) => handWrite(paths.config, 'shared', value, i));
    const noop = await noopScenario(NOOP_CHANGES, ctx);
    // Nothing of this process may watch or poll during the idle window.
    ctx.output.close();
    ctx.sharedOutput.close();
    ctx.configEvents.close();
    const idle = await idleScenario(ctx, atReady.rssKiB);
    runs = { api, hand, pid, apiSlow, handSlow, noop, idle };
  } finally {
    ctx.output.close();
    ctx.sharedOutput.close();
    ctx.configEvents.close();
    log(`stopping confhub (pid ${confhub.pid})`);
    await stopServer(confhub);
    log(`stopping supervisord (pid ${supervisord.pid})`);
    await supervisord.stop();
    forgetSupervisord();
  }

  const { rows, auditRows } = readDatabase(dataDir, runs.noop.windowStartWall, runs.noop.windowEndWall);
  const settings = {
    sync: {
      debounce_min_ms: SYNC.debounceMinMs,
      debounce_max_ms: SYNC.debounceMaxMs,
      poll_interval_ms: SYNC.pollIntervalMs,
      docker_socket: '<data>/no-docker-here.sock (does not exist; no Docker target)',
      supervisor_url: 'unix://<private supervisord>/supervisor.sock',
    },
    targets,
    supervisorProgram: { name: PROGRAM, command: programCommand.split(dataDir).join('<data>'), startsecs: STARTSECS, supervisordVersion: supervisordVersion() },
    slowSiblingProgram: { name: SLOW_PROGRAM, target: 'slow', beside: 'shared', command: slowCommand.split(dataDir).join('<data>'), startsecs: SLOW_STARTSECS },
    changes: {
      apiToFile: runs.api.samples.length,
      handToFile: runs.hand.samples.length,
      apiToPid: runs.pid.samples.length,
      apiToFileSlowSibling: runs.apiSlow.samples.length,
      handToFileSlowSibling: runs.handSlow.samples.length,
      noop: runs.noop.puts,
      note: 'BENCH_CHANGES sets scenarios 1 and 2, BENCH_PID_CHANGES scenario 3 (fewer: each restart takes > 2 s), BENCH_SLOW_CHANGES scenarios 4 and 5 (each), BENCH_NOOP_CHANGES scenario 6',
      slowSiblingGapMs: SLOW_GAP_MS,
    },
    detectors: { filePollMs: FILE_POLL_MS, fileWatch: 'fs.watch on the output directory', pidPollMs: PID_POLL_MS, statusPollMs: STATUS_POLL_MS },
    idleSeconds: IDLE_S,
    dataDirFileSystem: fileSystem,
    confhub: `node dist/cli.js serve as shipped (log level, failed-authentication limit; logs appended to a file), CONFHUB_RATE_LIMIT=${2 * Math.ceil(60_000 / STATUS_POLL_MS)} for the status poll`,
  };
  return { settings, ...runs, readyWall, rssTrace: ctx.rssTrace, rows, auditRows };
}

/** sync_runs, and the audit entries of the no-op window; read-only, once confhub has stopped. */
function readDatabase(dataDir: string, from: number, to: number) {
  const db = new BetterSqlite3(join(dataDir, 'confhub.db'), { readonly: true, fileMustExist: true });
  try {
    return {
      rows: db.prepare('SELECT revision, source, outcome, started_at, finished_at, targets FROM sync_runs ORDER BY id').all() as RunRow[],
      auditRows: db.prepare('SELECT result, action, COUNT(*) AS n FROM audit_log WHERE at BETWEEN ? AND ? GROUP BY result, action').all(from, to) as {
        result: string;
        action: string;
        n: number;
      }[],
    };
  } finally {
    db.close();
  }
}

export type Measured = Awaited<ReturnType<typeof measure>>;

function supervisordVersion(): string {
  try {
    return execFileSync(SUPERVISORD!, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const machine = describeMachine();
  assertBuilt();
  if (!SUPERVISORD) throw new Error('supervisord is not installed (Debian: apt-get install supervisor); the propagation bench needs it');
  const dataDir = makeTempDir('confhub-propagation-');
  const report = buildReport(machine, await measure(dataDir));
  writeResults(RESULTS_PATH, report, markdown(report), [dataDir]);
  if (report.disturbed) log('warning: other processes used CPU during some scenarios; see the "Disturbed run" line');
  if (!report.valid) {
    log('INVALID RUN: some change was not applied, a new process did not read its new file, or a no-op PUT was not answered 200');
    process.exitCode = 1;
  }
}

runBench(main);
