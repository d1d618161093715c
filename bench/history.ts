/**
 * History benchmark (npm run bench, after the propagation one): what committing every revision of
 * config.ini to `<dataDir>/history.git` costs, and how the history API answers once the history
 * is long. Results go to bench/results/history.json, a Markdown summary to stdout, progress to
 * stderr.
 *
 * 1. The worker's commits: createRevisionRecorder over createHistoryWriter, built as
 *    src/sync/worker.ts builds them, in this process on a temp dir; BENCH_COMMITS successive
 *    revisions of a real config.ini (the shipped one with the secrets the first start filled in
 *    and sealed) that differ in one key.
 * 2. The history API with 10,000 commits: a data dir made by the built server's first start, its
 *    history.git replaced by 10,000 commits written with git fast-import (messages from
 *    commitMessage, the newest holding the config.ini the server starts with, so the worker adds
 *    none), then packed with git gc and the server started again and asked one request at a time.
 * 3. Rollback end to end on that server: POST /api/v1/settings/rollback?wait=true alternating
 *    between two commits made by PUTs, then as many PUTs ?wait=true making the same changes as a
 *    baseline; the one file target (format ini, reload none) is rendered and written by every run.
 *    confhub's sync_runs, read after it stops, splits each answer time at the worker's run.
 *
 * Environment: BENCH_COMMITS (scenario 1, default 300), BENCH_REQUESTS (per history request,
 * default 1000), BENCH_ROLLBACKS (rollbacks, and baseline PUTs, default 30). Budgets are reported,
 * never enforced; the exit code is 1 only when the run itself failed.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import BetterSqlite3 from 'better-sqlite3';
import { pino } from 'pino';
import type { ActorRef, RevisionSource } from '../src/core/actor.js';
import { runGit } from '../src/history/git.js';
import {
  commitMessage,
  createHistoryReader,
  createHistoryWriter,
  HISTORY_BRANCH,
  HISTORY_FILE,
  type HistoryReaderDeps,
  type HistoryWriter,
} from '../src/history/history-repo.js';
import { diffKeys, summarize as summarizeChanges } from '../src/history/key-diff.js';
import { applyIniChanges, parseIni, type IniDocument } from '../src/ini/document.js';
import { loadKeyring } from '../src/secrets/master-key.js';
import { openDocument } from '../src/secrets/sealed-document.js';
import type { Keyring } from '../src/secrets/secret-box.js';
import { revisionOf } from '../src/settings/revision.js';
import { CONFIG_SCHEMA } from '../src/settings/schema.js';
import { createRevisionRecorder } from '../src/sync/revision-recorder.js';
import { assertBuilt, startConfhub, type Confhub } from './lib/confhub.js';
import { positiveFromEnv } from './lib/env.js';
import { dataDirFileSystem, describeMachine, type MachineInfo } from './lib/machine.js';
import { log, makeTempDir, runBench, stopServer } from './lib/processes.js';
import { budgetTable, disturbedNote, fmt, markdownTable, RESULTS_DIR, writeResults, type Budget } from './lib/report.js';
import { cpuShares, isDisturbed, sampleCpu, type CpuShares } from './lib/resource-usage.js';
import { countBy, round, summarize, type Summary } from './lib/stats.js';
import { SYNC, writeSystemIni } from './lib/system-ini.js';

// ---------------------------------------------------------------------------------------------
// Settings

const RESULTS_PATH = join(RESULTS_DIR, 'history.json');
const COMMITS = positiveFromEnv('BENCH_COMMITS', 300, 'count');
/** Requests a minute confhub allows here: back-to-back requests reach a few hundred a second. */
const HISTORY_RATE_LIMIT = 30_000;
const REQUESTS = positiveFromEnv('BENCH_REQUESTS', 1000, 'count');
const ROLLBACKS = positiveFromEnv('BENCH_ROLLBACKS', 30, 'count');
const LONG_HISTORY = 10_000;
const WARMUP_REQUESTS = 50;
const PAGE = 50;
/** `before` for the deep page, and the commit shown with its diffs: commits below HEAD. */
const BEFORE_DEPTH = 9_000;
const SHOW_DEPTH = 5_000;
/** createHistoryWriter's default: `git gc --auto` after every 500 commits. */
const WRITER_GC_EVERY = 500;
/** Spacing of the fast-import commits' dates (10,000 hours: about 14 months of history). */
const COMMIT_SPACING_S = 3600;
/** The one key that changes, in scenario 1, the long history and the rollbacks. */
const SECTION = 'nginx_proxy_manager';
const KEY = 'nike_name';
const TARGET = { sections: SECTION, format: 'ini', output: 'services/npm/console.ini', mode: '0644', reload: 'none', health: 'none' } as const;

const BUDGETS = { listP99MaxMs: 50 } as const;

const SILENT = pino({ level: 'silent' });
const API_ACTOR: ActorRef = { type: 'api', id: 'key:0b5e7a11c0de' };
const FILE_ACTOR: ActorRef = { type: 'file', id: 'file' };
const FIRST_BOOT_ACTOR: ActorRef = { type: 'system', id: 'first-boot' };

// ---------------------------------------------------------------------------------------------
// config.ini revisions and the repository

/** `text` with nginx_proxy_manager.nike_name set to `value`, serialized as the settings store does. */
function withNickname(text: string, value: string): string {
  return applyIniChanges(parseIni(text), [{ section: SECTION, key: KEY, value }]);
}

/** What the sync loop hands the recorder: the text, its sha256 and the document with sealed values opened. */
function revisionFor(text: string, keyring: Keyring): { text: string; revision: string; doc: IniDocument } {
  return { text, revision: revisionOf(text), doc: openDocument({ stored: parseIni(text), schema: CONFIG_SCHEMA, keyring }).doc };
}

interface RepositorySize {
  /** `du -sk` of the git dir. */
  diskKiB: number;
  /** From `git count-objects -v`. */
  looseObjects: number;
  looseKiB: number;
  packedObjects: number;
  packs: number;
  packKiB: number;
}

async function repositorySize(git: HistoryReaderDeps): Promise<RepositorySize> {
  const du = execFileSync('du', ['-sk', git.gitDir], { encoding: 'utf8' });
  const counts = new Map<string, number>();
  for (const line of (await runGit(git, ['count-objects', '-v'])).stdout.split('\n')) {
    const [name, value] = line.split(': ');
    if (name && value) counts.set(name, Number(value));
  }
  const count = (name: string): number => counts.get(name) ?? NaN;
  return {
    diskKiB: Number(du.split('\t')[0]),
    looseObjects: count('count'),
    looseKiB: count('size'),
    packedObjects: count('in-pack'),
    packs: count('packs'),
    packKiB: count('size-pack'),
  };
}

async function commitCount(git: HistoryReaderDeps): Promise<number> {
  return Number((await runGit(git, ['rev-list', '--count', HISTORY_BRANCH])).stdout.trim());
}

/**
 * Replaces the repository by LONG_HISTORY commits in one `git fast-import`: the repository is
 * created empty by the writer (with the config the worker keeps in it), every message comes from
 * commitMessage with the key diff the recorder would compute, and the newest commit holds
 * `finalText`. Commit 0 is a first boot, every tenth a hand edit, the rest API writes.
 */
async function writeLongHistory(git: HistoryReaderDeps, finalText: string, keyring: Keyring): Promise<{ head: string; ms: number }> {
  const started = performance.now();
  rmSync(git.gitDir, { recursive: true, force: true });
  await createHistoryWriter({ ...git, logger: SILENT }).open();
  const firstSecond = Math.floor(Date.now() / 1000) - LONG_HISTORY * COMMIT_SPACING_S;
  const data = (text: string): string => `data ${Buffer.byteLength(text)}\n${text}`;
  const stream: string[] = [];
  let previous: IniDocument | undefined;
  for (let i = 0; i < LONG_HISTORY; i++) {
    const text = i === 0 || i === LONG_HISTORY - 1 ? finalText : withNickname(finalText, `n${i}`);
    const { revision, doc } = revisionFor(text, keyring);
    const { changes } = diffKeys(previous, doc, CONFIG_SCHEMA);
    const [source, actor]: [RevisionSource, ActorRef] = i === 0 ? ['first_boot', FIRST_BOOT_ACTOR] : i % 10 === 0 ? ['file', FILE_ACTOR] : ['api', API_ACTOR];
    const second = firstSecond + i * COMMIT_SPACING_S;
    const summary = summarizeChanges(changes, { initial: i === 0 });
    stream.push(
      `commit ${HISTORY_BRANCH}\n`,
      `author ${actor.type}:${actor.id} <${actor.type}@confhub.invalid> ${second} +0000\n`,
      `committer confhub <confhub@confhub.invalid> ${second} +0000\n`,
      data(commitMessage({ text, revision, actor, source, summary, changes, at: second * 1000 })),
      `M 100644 inline ${HISTORY_FILE}\n`,
      data(text),
      '\n',
    );
    previous = doc;
  }
  await runGit(git, ['fast-import', '--quiet'], { stdin: stream.join(''), timeoutMs: 300_000 });
  const head = (await runGit(git, ['rev-parse', '--verify', HISTORY_BRANCH])).stdout.trim();
  const reader = createHistoryReader(git);
  if ((await reader.contentAt(head)) !== finalText) throw new Error("the long history's HEAD does not hold the config.ini the server starts with");
  return { head, ms: performance.now() - started };
}

// ---------------------------------------------------------------------------------------------
// Scenario 1: the worker's commits

/** The writer with every call timed: commit (objects and the branch written in-process, four fsyncs) and the gc check after it. */
function timedWriter(writer: HistoryWriter) {
  const commitMs: number[] = [];
  const gcMs: number[] = [];
  const timed = <T>(into: number[], work: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    return work().finally(() => into.push(performance.now() - started));
  };
  const wrapped: HistoryWriter = {
    open: () => writer.open(),
    commit: (input) => timed(commitMs, () => writer.commit(input)),
    gcIfNeeded: () => timed(gcMs, () => writer.gcIfNeeded()),
    idle: () => writer.idle(),
  };
  const reset = (): void => {
    commitMs.length = 0;
    gcMs.length = 0;
  };
  return { writer: wrapped, commitMs, gcMs, reset };
}

async function measureWorkerCommits(dir: string, configText: string, keyring: Keyring) {
  const configDir = join(dir, 'config');
  mkdirSync(configDir, { recursive: true, mode: 0o700 });
  const git: HistoryReaderDeps = { gitDir: join(dir, 'history.git'), workTree: configDir };
  const timing = timedWriter(createHistoryWriter({ ...git, logger: SILENT }));
  const recorder = createRevisionRecorder({ writer: timing.writer, schema: CONFIG_SCHEMA, keyring, logger: SILENT, onStatus: () => undefined });
  if (!(await recorder.open())) throw new Error(`the recorder could not open its repository: ${recorder.status().lastError?.details}`);
  // The first revision, as at a first start (not measured): every later one has a parent and a key diff.
  await recorder.record(revisionFor(configText, keyring), { actor: FIRST_BOOT_ACTOR, source: 'first_boot' });
  timing.reset();

  log(`worker commits: ${COMMITS} revisions of config.ini (${Buffer.byteLength(configText)} bytes), each changing ${SECTION}.${KEY}`);
  const recordMs: number[] = [];
  const cpuSample = () => sampleCpu({ bench: { pid: 'self', children: true } });
  const cpuBefore = cpuSample();
  for (let i = 0; i < COMMITS; i++) {
    // Read, parsed and opened by the sync loop before it calls record: not measured.
    const revision = revisionFor(withNickname(configText, `bench-${String(i).padStart(6, '0')}`), keyring);
    const started = performance.now();
    const commit = await recorder.record(revision, { actor: API_ACTOR, source: 'api' });
    recordMs.push(performance.now() - started);
    if (commit === null || recorder.status().head !== commit)
      throw new Error(`revision ${i} was not committed: ${JSON.stringify(recorder.status().lastError)}`);
    if ((i + 1) % 100 === 0) log(`worker commits: ${i + 1}/${COMMITS}`);
  }
  const cpu = cpuShares(cpuBefore, cpuSample());
  const commits = await commitCount(git);
  if (commits !== COMMITS + 1) throw new Error(`the repository holds ${commits} commits; expected ${COMMITS + 1}`);
  const gitProcessMs: number[] = [];
  for (let i = 0; i < 100; i++) {
    const started = performance.now();
    await runGit(git, ['version']);
    gitProcessMs.push(performance.now() - started);
  }
  const totalSeconds = recordMs.reduce((a, b) => a + b, 0) / 1000;
  const result = {
    commits: COMMITS,
    configBytes: Buffer.byteLength(configText),
    commitsPerSecond: round(COMMITS / totalSeconds, 1),
    /** recorder.record(): key diff and summary, writer.commit, writer.gcIfNeeded. */
    recordMs: summarize(recordMs),
    /** hash-object, update-index, write-tree, commit-tree, update-ref: one git process each. */
    writerCommitMs: summarize(timing.commitMs),
    /** Returns at once except every WRITER_GC_EVERY commits, when it runs `git gc --auto`. */
    gcIfNeededMs: summarize(timing.gcMs),
    /** The gcIfNeeded calls that ran `git gc --auto`: after every WRITER_GC_EVERY-th commit, the first (not measured) included. */
    gcAutoRuns: timing.gcMs.flatMap((ms, i) => ((i + 2) % WRITER_GC_EVERY === 0 ? [{ afterCommit: i + 2, ms: round(ms, 1) }] : [])),
    /** `git version` through the same runner, 100 times: what starting one git process costs. */
    gitProcessMs: summarize(gitProcessMs),
    cpu,
    repository: { commits, ...(await repositorySize(git)) },
  };
  log(
    `worker commits: ${fmt(result.commitsPerSecond)} commits/s, record p50 ${fmt(result.recordMs.p50, 2)} ms, p99 ${fmt(result.recordMs.p99, 2)} ms, ` +
      `max ${fmt(result.recordMs.max, 2)} ms (writer.commit p50 ${fmt(result.writerCommitMs.p50, 2)} ms)`,
  );
  if (isDisturbed(cpu)) log(`warning: other processes used ${cpu.otherCores} cores during the worker commits; their numbers are disturbed`);
  return result;
}

// ---------------------------------------------------------------------------------------------
// Scenarios 2 and 3: the API

function createApi(base: string, apiKey: string) {
  /** One request, timed from the call until the whole body has arrived. */
  const call = async (method: 'GET' | 'PUT' | 'POST', path: string, json?: unknown) => {
    const headers: Record<string, string> = { 'x-api-key': apiKey, ...(json === undefined ? {} : { 'content-type': 'application/json' }) };
    const started = performance.now();
    const startedWall = Date.now();
    const response = await fetch(`${base}${path}`, { method, headers, ...(json === undefined ? {} : { body: JSON.stringify(json) }) });
    const body = await response.text();
    return { status: response.status, body, ms: performance.now() - started, startedWall, endedWall: Date.now() };
  };
  const ok = async (method: 'GET' | 'PUT' | 'POST', path: string, json?: unknown) => {
    const answer = await call(method, path, json);
    if (answer.status !== 200) throw new Error(`${method} ${path} answered ${answer.status}: ${answer.body.slice(0, 300)}`);
    return answer;
  };
  return { call, ok };
}

type Api = ReturnType<typeof createApi>;

interface RequestMeasurement {
  name: string;
  path: string;
  requests: number;
  latencyMs: Summary;
  bodyBytes: number;
  /** confhub with the git processes it ran, and this process. */
  cpu: CpuShares<'confhub' | 'bench'> | null;
}

/** WARMUP_REQUESTS, then REQUESTS sequential GETs of `path`, each checked by `check` (status 200 first). */
async function measureGets(api: Api, confhub: Confhub, name: string, path: string, check: (body: string) => string | null): Promise<RequestMeasurement> {
  const get = async (): Promise<{ ms: number; bytes: number }> => {
    const answer = await api.ok('GET', path);
    const problem = check(answer.body);
    if (problem) throw new Error(`GET ${path}: ${problem}`);
    return { ms: answer.ms, bytes: Buffer.byteLength(answer.body) };
  };
  log(`${name}: ${WARMUP_REQUESTS} warm-up requests, then ${REQUESTS}`);
  for (let i = 0; i < WARMUP_REQUESTS; i++) await get();
  const cpuSample = () => sampleCpu({ confhub: { pid: confhub.pid, children: true }, bench: 'self' });
  const cpuBefore = cpuSample();
  const times: number[] = [];
  let bodyBytes = 0;
  for (let i = 0; i < REQUESTS; i++) {
    const { ms, bytes } = await get();
    times.push(ms);
    bodyBytes = bytes;
  }
  const measurement = { name, path, requests: REQUESTS, latencyMs: summarize(times), bodyBytes, cpu: cpuShares(cpuBefore, cpuSample()) };
  log(`${name}: p50 ${fmt(measurement.latencyMs.p50, 2)} ms, p99 ${fmt(measurement.latencyMs.p99, 2)} ms, max ${fmt(measurement.latencyMs.max, 2)} ms`);
  if (isDisturbed(measurement.cpu)) log(`warning: other processes used ${measurement.cpu.otherCores} cores during "${name}"; its numbers are disturbed`);
  return measurement;
}

/** The same page read by createHistoryReader in this process: git log and its parsing, without HTTP or SQLite. */
async function measureReaderList(git: HistoryReaderDeps): Promise<Summary> {
  const reader = createHistoryReader(git);
  for (let i = 0; i < WARMUP_REQUESTS; i++) await reader.list({ limit: PAGE });
  const times: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const started = performance.now();
    await reader.list({ limit: PAGE });
    times.push(performance.now() - started);
  }
  return summarize(times);
}

const listCheck = (body: string): string | null => {
  const page = JSON.parse(body) as { commits: unknown[]; next: string | null };
  return page.commits.length === PAGE && page.next !== null ? null : `expected ${PAGE} commits and a next page, got ${page.commits.length} and ${page.next}`;
};

async function measureHistoryApi(api: Api, confhub: Confhub, git: HistoryReaderDeps, head: string) {
  const first = JSON.parse((await api.ok('GET', `/api/v1/settings/history?limit=${PAGE}`)).body) as { commits: { id: string }[] };
  if (first.commits[0]?.id !== head)
    throw new Error(`the server's newest commit is ${first.commits[0]?.id}, not the long history's HEAD ${head}: the worker committed at start`);
  const deep = (await runGit(git, ['rev-parse', '--verify', `${HISTORY_BRANCH}~${BEFORE_DEPTH}`])).stdout.trim();
  const shown = (await runGit(git, ['rev-parse', '--verify', `${HISTORY_BRANCH}~${SHOW_DEPTH}`])).stdout.trim();
  const requests = [
    await measureGets(api, confhub, `GET /history?limit=${PAGE}`, `/api/v1/settings/history?limit=${PAGE}`, listCheck),
    await measureGets(
      api,
      confhub,
      `GET /history?limit=${PAGE}&before=<commit ${BEFORE_DEPTH} deep>`,
      `/api/v1/settings/history?limit=${PAGE}&before=${deep}`,
      listCheck,
    ),
    await measureGets(api, confhub, `GET /history/<commit ${SHOW_DEPTH} deep> (with its diffs)`, `/api/v1/settings/history/${shown}`, (body) => {
      const commit = JSON.parse(body) as { id: string; unified: string; changes: { key: string }[] };
      const ok = commit.id === shown && commit.unified.includes(KEY) && commit.changes.some((c) => c.key === `${SECTION}.${KEY}`);
      return ok ? null : `the commit's diff does not show ${SECTION}.${KEY} changed`;
    }),
  ];
  log(`reader.list({limit: ${PAGE}}) in this process: ${REQUESTS} calls`);
  const readerListMs = await measureReaderList(git);
  log(`reader.list: p50 ${fmt(readerListMs.p50, 2)} ms, p99 ${fmt(readerListMs.p99, 2)} ms`);
  return { requests, readerListMs };
}

interface ChangeSample {
  ms: number;
  startedWall: number;
  endedWall: number;
  revision: string;
  outcome: string;
  /** The file target's own time in the run (render, write), from the answer. */
  targetMs: number | null;
  /** The worker's commit of the revision, from the answer's sync.commit. */
  commit: string;
  rolledBackTo?: string;
}

/**
 * One change of nike_name to `value` with ?wait=true, timed until the whole answer arrived; it must
 * have been committed and applied, and the target file must hold the value.
 */
async function waitedChange(api: Api, outputPath: string, value: string, method: 'PUT' | 'POST', path: string, json?: unknown): Promise<ChangeSample> {
  const answer = await api.ok(method, path, json);
  const body = JSON.parse(answer.body) as {
    rolledBackTo?: string;
    sync: { revision: string; outcome: string; commit?: string | null; targets: { durationMs?: number }[] };
  };
  const commit = body.sync.commit;
  if (!commit || !/^[0-9a-f]{40}$/.test(commit)) throw new Error(`${method} ${path} answered no commit: ${answer.body.slice(0, 300)}`);
  if (!new RegExp(`^${KEY}\\s*=\\s*${value}$`, 'm').test(readFileSync(outputPath, 'utf8')))
    throw new Error(`${method} ${path}: the target file does not hold ${KEY} = ${value}`);
  return {
    ms: answer.ms,
    startedWall: answer.startedWall,
    endedWall: answer.endedWall,
    revision: body.sync.revision,
    outcome: body.sync.outcome,
    targetMs: body.sync.targets[0]?.durationMs ?? null,
    commit,
    ...(body.rolledBackTo ? { rolledBackTo: body.rolledBackTo } : {}),
  };
}

/**
 * ROLLBACKS rollbacks alternating between the commits of two PUTs, then as many PUTs making the
 * same changes (the baseline: the same write, worker run and commit, without the history read).
 */
async function measureChanges(api: Api, confhub: Confhub, outputPath: string, runTag: string) {
  const values = [`${runTag}-a`, `${runTag}-b`] as const;
  const put = (value: string) => waitedChange(api, outputPath, value, 'PUT', `/api/v1/settings/${SECTION}?key=${KEY}&value=${value}&wait=true`);
  const commits = [(await put(values[0])).commit, (await put(values[1])).commit] as const;
  const cpuSample = () => sampleCpu({ confhub: { pid: confhub.pid, children: true }, bench: 'self' });
  const series = async (label: string, change: (i: number) => Promise<ChangeSample>) => {
    log(`${label}: ${ROLLBACKS} changes`);
    const samples: ChangeSample[] = [];
    const cpuBefore = cpuSample();
    for (let i = 0; i < ROLLBACKS; i++) samples.push(await change(i));
    return { samples, cpu: cpuShares(cpuBefore, cpuSample()) };
  };
  // config.ini holds values[1] after the PUTs: the first rollback goes to values[0].
  const rollbacks = await series(`rollback between ${commits[0].slice(0, 12)} and ${commits[1].slice(0, 12)}`, async (i) => {
    const sample = await waitedChange(api, outputPath, values[i % 2]!, 'POST', '/api/v1/settings/rollback?wait=true', { commit: commits[i % 2] });
    if (sample.rolledBackTo !== commits[i % 2]) throw new Error(`rollback ${i} rolled back to ${sample.rolledBackTo}, not ${commits[i % 2]}`);
    return sample;
  });
  // The last rollback left values[(ROLLBACKS - 1) % 2]: the first PUT writes the other one.
  const puts = await series('PUT baseline', (i) => put(values[(ROLLBACKS + i) % 2]!));
  return { rollbacks, puts };
}

type RunRow = { revision: string; started_at: number; finished_at: number };

/** confhub's sync_runs since `from` (epoch ms); read-only, once confhub has stopped. */
function readSyncRuns(dataDir: string, from: number): RunRow[] {
  const db = new BetterSqlite3(join(dataDir, 'confhub.db'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT revision, started_at, finished_at FROM sync_runs WHERE started_at >= ? ORDER BY id').all(from) as RunRow[];
  } finally {
    db.close();
  }
}

/** A series of changes: answer times, and each split at its sync run (the run of its revision that started and ended within the request). */
function changeSeries({ samples, cpu }: { samples: readonly ChangeSample[]; cpu: CpuShares<'confhub' | 'bench'> | null }, rows: readonly RunRow[]) {
  const toRunStart: number[] = [];
  const run: number[] = [];
  const runEndToAnswer: number[] = [];
  for (const sample of samples) {
    const row = rows.find((r) => r.revision === sample.revision && r.started_at >= sample.startedWall && r.finished_at <= sample.endedWall);
    if (!row) continue;
    toRunStart.push(row.started_at - sample.startedWall);
    run.push(row.finished_at - row.started_at);
    runEndToAnswer.push(sample.endedWall - row.finished_at);
  }
  return {
    count: samples.length,
    latencyMs: summarize(samples.map((s) => s.ms)),
    outcomes: countBy(samples, (s) => s.outcome),
    /** The file target's durationMs from the answers. */
    targetMs: summarize(samples.flatMap((s) => (s.targetMs === null ? [] : [s.targetMs]))),
    /** Wall clock, whole milliseconds (sync_runs' resolution). */
    breakdown: {
      joined: toRunStart.length,
      /** Main thread (for a rollback: the history read), store write, the watcher's debounce, the stable read, the git commit. */
      requestToRunStartMs: summarize(toRunStart),
      /** Render and write the target (reload none). */
      runMs: summarize(run),
      runEndToAnswerMs: summarize(runEndToAnswer),
    },
    cpu,
    samplesMs: samples.map((s) => round(s.ms, 2)),
  };
}

// ---------------------------------------------------------------------------------------------
// Run

async function measure(dataDir: string, recorderDir: string) {
  const fileSystem = dataDirFileSystem(dataDir, 'commit times');
  writeSystemIni(dataDir, 'confhub history bench (bench/history.ts)', { npm: TARGET });
  log('first start: the server installs config.ini, fills and seals its secrets, creates master.key');
  await stopServer(await startConfhub(dataDir, '/readyz', 60_000));
  const configPath = join(dataDir, 'config', 'config.ini');
  const configText = readFileSync(configPath, 'utf8');
  const { keyring } = await loadKeyring({ file: join(dataDir, 'master.key'), createFile: false });

  const workerCommits = await measureWorkerCommits(recorderDir, configText, keyring);

  const git: HistoryReaderDeps = { gitDir: join(dataDir, 'history.git'), workTree: join(dataDir, 'config') };
  log(`long history: replacing history.git by ${LONG_HISTORY} commits (git fast-import)`);
  const built = await writeLongHistory(git, configText, keyring);
  const afterFastImport = await repositorySize(git);
  log(`long history: written in ${fmt(built.ms, 0)} ms, ${afterFastImport.diskKiB} KiB on disk; git gc`);
  const gcStarted = performance.now();
  await runGit(git, ['gc', '--quiet'], { timeoutMs: 600_000 });
  const gcMs = performance.now() - gcStarted;
  const afterGc = await repositorySize(git);
  log(`long history: git gc took ${fmt(gcMs, 0)} ms, ${afterGc.diskKiB} KiB on disk`);

  // As users run it (log level, failed-authentication limit, logs into a file); the request limit
  // is raised as far as back-to-back requests need (a few hundred a second at most).
  const logFile = join(makeTempDir('confhub-history-logs-'), 'confhub.log');
  const confhub = await startConfhub(dataDir, '/readyz', 60_000, { asShipped: { logFile, rateLimitPerMinute: HISTORY_RATE_LIMIT } });
  const api = createApi(confhub.base, confhub.apiKey);
  let historyApi: Awaited<ReturnType<typeof measureHistoryApi>>;
  let changes: Awaited<ReturnType<typeof measureChanges>>;
  try {
    historyApi = await measureHistoryApi(api, confhub, git, built.head);
    changes = await measureChanges(api, confhub, join(dataDir, TARGET.output), Date.now().toString(36));
  } finally {
    log(`stopping confhub (pid ${confhub.pid})`);
    await stopServer(confhub);
  }
  const commitsAfter = await commitCount(git);
  const expectedCommits = LONG_HISTORY + 2 + 2 * ROLLBACKS;
  if (commitsAfter !== expectedCommits) throw new Error(`history.git holds ${commitsAfter} commits after the changes; expected ${expectedCommits}`);
  const rows = readSyncRuns(dataDir, changes.rollbacks.samples[0]?.startedWall ?? 0);
  return {
    settings: {
      commits: COMMITS,
      requests: REQUESTS,
      warmupRequests: WARMUP_REQUESTS,
      rollbacks: ROLLBACKS,
      longHistoryCommits: LONG_HISTORY,
      page: PAGE,
      beforeDepth: BEFORE_DEPTH,
      showDepth: SHOW_DEPTH,
      changingKey: `${SECTION}.${KEY}`,
      sync: { debounce_min_ms: SYNC.debounceMinMs, debounce_max_ms: SYNC.debounceMaxMs, poll_interval_ms: SYNC.pollIntervalMs },
      target: TARGET,
      dataDirFileSystem: fileSystem,
      git: execFileSync('git', ['--version'], { encoding: 'utf8' }).trim(),
      confhub: `node dist/cli.js serve as shipped (log level, failed-authentication limit; logs into a file), CONFHUB_RATE_LIMIT=${HISTORY_RATE_LIMIT}`,
    },
    workerCommits,
    longHistory: { commits: LONG_HISTORY, fastImportMs: round(built.ms, 1), gcMs: round(gcMs, 1), afterFastImport, afterGc },
    historyApi,
    rollback: changeSeries(changes.rollbacks, rows),
    putBaseline: changeSeries(changes.puts, rows),
    commitsAfterChanges: commitsAfter,
  };
}

// ---------------------------------------------------------------------------------------------
// Report

type Measured = Awaited<ReturnType<typeof measure>>;

function buildReport(machine: MachineInfo, m: Measured) {
  const list = m.historyApi.requests[0]!;
  const budgets: Budget[] = [
    {
      name: `GET /history?limit=${PAGE} p99 (${LONG_HISTORY.toLocaleString('en-US')} commits)`,
      limit: `≤ ${BUDGETS.listP99MaxMs} ms`,
      actual: `${fmt(list.latencyMs.p99, 2)} ms`,
      pass: list.latencyMs.p99 <= BUDGETS.listP99MaxMs,
    },
  ];
  const disturbed = [
    ...(isDisturbed(m.workerCommits.cpu) ? [`the worker commits (${m.workerCommits.cpu.otherCores} cores)`] : []),
    ...m.historyApi.requests.flatMap((r) => (isDisturbed(r.cpu) ? [`${r.name} (${r.cpu.otherCores} cores)`] : [])),
    ...(isDisturbed(m.rollback.cpu) ? [`the rollbacks (${m.rollback.cpu.otherCores} cores)`] : []),
    ...(isDisturbed(m.putBaseline.cpu) ? [`the PUT baseline (${m.putBaseline.cpu.otherCores} cores)`] : []),
  ];
  return {
    date: new Date().toISOString(),
    machine,
    ...m,
    budgets,
    valid: [m.rollback, m.putBaseline].every((series) => series.outcomes.applied === series.count),
    disturbed,
  };
}

type Report = ReturnType<typeof buildReport>;

const kib = (value: number): string => `${fmt(value / 1024, 1)} MiB`;

function markdown(r: Report): string {
  const w = r.workerCommits;
  const rb = r.rollback.breakdown;
  const pb = r.putBaseline.breakdown;
  const ms = (s: Summary): string[] => [fmt(s.p50, 2), fmt(s.p99, 2), fmt(s.max, 2)];
  const sizeRow = (state: string, commits: number, s: RepositorySize) => [
    state,
    commits.toLocaleString('en-US'),
    kib(s.diskKiB),
    s.looseObjects,
    s.packs,
    kib(s.packKiB),
  ];
  return [
    `### History benchmark (${r.date.slice(0, 10)}, Node ${r.machine.node}, ${r.machine.cpuCount} × ${r.machine.cpuModel})`,
    '',
    `${r.settings.git}, data dirs on ${r.settings.dataDirFileSystem}; config.ini is the shipped one with its first-start secrets sealed (${w.configBytes} bytes), ` +
      `and every revision changes ${r.settings.changingKey}. confhub runs from dist/ as shipped (request logs into a file, failed-authentication limit), the request limit raised to ${fmt(HISTORY_RATE_LIMIT, 0)} a minute.`,
    '',
    `**Worker commits**: createRevisionRecorder over createHistoryWriter, as the sync worker builds them, in the bench process; ${w.commits} revisions back to back ` +
      `(parse and open of each revision not counted): **${fmt(w.commitsPerSecond)} commits/s**.`,
    '',
    ...markdownTable(['Per commit', 'p50 (ms)', 'p99 (ms)', 'max (ms)'], 'lrrr', [
      ['recorder.record (key diff, commit, gc check)', ...ms(w.recordMs)],
      ['writer.commit (blob, tree, commit and branch, each synced; no git process)', ...ms(w.writerCommitMs)],
      ['writer.gcIfNeeded', ...ms(w.gcIfNeededMs)],
      ['one git process doing nothing (`git version`, 100 runs)', ...ms(w.gitProcessMs)],
    ]),
    '',
    `The writer runs \`git gc --auto\` after every ${WRITER_GC_EVERY} commits` +
      (w.gcAutoRuns.length === 0
        ? `: not within these ${w.repository.commits} (set BENCH_COMMITS ≥ ${WRITER_GC_EVERY} to see it in the max).`
        : `; here after commit ${w.gcAutoRuns.map((g) => `${g.afterCommit} (${fmt(g.ms, 1)} ms)`).join(', ')}.`),
    '',
    `**History API with ${r.longHistory.commits.toLocaleString('en-US')} commits** (git fast-import, then git gc), one request at a time after ${r.settings.warmupRequests} warm-up requests:`,
    '',
    ...markdownTable(['Request', 'requests', 'p50 (ms)', 'p99 (ms)', 'max (ms)', 'body (bytes)'], 'lrrrrr', [
      ...r.historyApi.requests.map((q) => [q.name, q.requests, ...ms(q.latencyMs), q.bodyBytes]),
      [`reader.list({limit: ${PAGE}}) in the bench process (git log + parse only)`, r.settings.requests, ...ms(r.historyApi.readerListMs), ''],
    ]),
    '',
    `**Rollback end to end**: POST /api/v1/settings/rollback?wait=true, ${r.rollback.count} times alternating between two commits, then ${r.putBaseline.count} PUTs ` +
      `?wait=true making the same changes (baseline); debounce_min_ms = ${r.settings.sync.debounce_min_ms}, one ini target (reload none). ` +
      `Applied: ${r.rollback.outcomes.applied ?? 0}/${r.rollback.count} rollbacks, ${r.putBaseline.outcomes.applied ?? 0}/${r.putBaseline.count} PUTs.`,
    '',
    ...markdownTable(['?wait=true change', 'rollback p50 (ms)', 'p99', 'max', 'PUT p50 (ms)', 'p99', 'max'], 'lrrrrrr', [
      ['request → answer', ...ms(r.rollback.latencyMs), ...ms(r.putBaseline.latencyMs)],
      ["request → worker's run starts (main thread, write, debounce, read, validate)", ...ms(rb.requestToRunStartMs), ...ms(pb.requestToRunStartMs)],
      ['run (render and write the target, while git commits; ends when both are done)', ...ms(rb.runMs), ...ms(pb.runMs)],
      ['run end → answer', ...ms(rb.runEndToAnswerMs), ...ms(pb.runEndToAnswerMs)],
    ]),
    '',
    '**Repository size**',
    '',
    ...markdownTable(['history.git', 'commits', 'du', 'loose objects', 'packs', 'pack size'], 'lrrrrr', [
      sizeRow('written by the worker (scenario 1)', w.repository.commits, w.repository),
      sizeRow('written by git fast-import', r.longHistory.commits, r.longHistory.afterFastImport),
      sizeRow(`after git gc (${fmt(r.longHistory.gcMs / 1000, 1)} s)`, r.longHistory.commits, r.longHistory.afterGc),
    ]),
    '',
    ...disturbedNote(r.disturbed),
    ...budgetTable(r.budgets),
    '',
    "Times are from this process: a request until its whole body arrived. The change breakdowns join confhub's sync_runs (wall clock, whole milliseconds).",
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  const machine = describeMachine();
  assertBuilt();
  const dataDir = makeTempDir('confhub-history-');
  const recorderDir = makeTempDir('confhub-history-recorder-');
  const report = buildReport(machine, await measure(dataDir, recorderDir));
  writeResults(RESULTS_PATH, report, markdown(report), [dataDir, recorderDir]);
  if (report.disturbed.length > 0) log('warning: other processes used CPU during some measurements; see the "Disturbed run" line');
  if (!report.valid) {
    log(
      `INVALID RUN: not every change was applied (rollbacks ${JSON.stringify(report.rollback.outcomes)}, PUTs ${JSON.stringify(report.putBaseline.outcomes)})`,
    );
    process.exitCode = 1;
  }
}

runBench(main);
