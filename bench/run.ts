/**
 * HTTP benchmark (npm run bench): confhub's GET and PUT against the built server, side by side
 * with an Express ceiling and a node:http floor serving the same answer behind the same key
 * check. Each server runs alone while it is measured (start, warm up, measure, stop), so none
 * competes with another for the CPU; autocannon runs in this process. Results go to
 * bench/results/http.json and a Markdown table to stdout; progress goes to stderr.
 *
 * Environment: BENCH_DURATION (seconds per measurement, default 10), BENCH_WARMUP (seconds,
 * default 2). Budgets are reported, never enforced; the exit code is 1 only when a run is
 * invalid (a non-2xx answer or a client error), because then its numbers mean nothing.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

// ---------------------------------------------------------------------------------------------
// Settings

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const RESULTS_PATH = join(ROOT, 'bench', 'results', 'http.json');
const HOST = '127.0.0.1';

function secondsFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    process.stderr.write(`bench: ${name} must be a positive number of seconds, got "${raw}"\n`);
    process.exit(2);
  }
  return value;
}

const DURATION_S = secondsFromEnv('BENCH_DURATION', 10);
const WARMUP_S = secondsFromEnv('BENCH_WARMUP', 2);
const GET_CONNECTIONS = 10;
const PUT_CONNECTIONS = 10;
const PIPELINING = 1;
const GET_PATH = '/api/v1/settings/gitea';
const PUT_SECTION = 'nginx_proxy_manager';
const PUT_KEY = 'nike_name';

const BUDGETS = {
  getVsCeilingMin: 0.75,
  getP99MaxMs: 20,
  putMinRps: 300,
  putP99MaxMs: 50,
} as const;

// ---------------------------------------------------------------------------------------------
// Child processes: tracked so that every exit path kills them and removes the temp data dir.

const children = new Set<ChildProcess>();
let dataDir: string | undefined;

function cleanupSync(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  children.clear();
  if (dataDir !== undefined) {
    rmSync(dataDir, { recursive: true, force: true });
    dataDir = undefined;
  }
}

process.on('exit', cleanupSync);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping servers and removing the temp data dir\n`);
    cleanupSync();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

function log(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

interface Server {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  /** Last lines the child wrote, for error messages. */
  output(): string;
}

class ChildStartError extends Error {}

/**
 * Spawns a server and resolves once `ready` says it answers. Rejects with the child's output if
 * it exits first or is not ready in time.
 */
async function startServer(
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: (child: ChildProcess, stdoutLines: AsyncIterable<string>) => Promise<number>,
  timeoutMs = 20_000,
): Promise<Server> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const tail: string[] = [];
  const remember = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') tail.push(line);
    if (tail.length > 40) tail.splice(0, tail.length - 40);
  };
  child.stderr!.on('data', remember);
  const lines = stdoutLines(child, remember);
  const output = (): string => tail.join('\n') || '(no output)';

  const exited = new Promise<never>((_, reject) => {
    child.once('error', (error) => reject(new ChildStartError(`${name}: could not start: ${error.message}`)));
    child.once('exit', (code, signal) =>
      reject(new ChildStartError(`${name} exited before it was ready (code ${code}, signal ${signal}). Its output:\n${output()}`)),
    );
  });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ChildStartError(`${name} was not ready after ${timeoutMs} ms. Its output:\n${output()}`)), timeoutMs);
  });
  try {
    const port = await Promise.race([ready(child, lines), exited, timedOut]);
    return { name, child, pid: child.pid!, port, output };
  } catch (error) {
    await stopServer({ name, child, pid: child.pid ?? -1, port: 0, output }).catch(() => undefined);
    throw error;
  } finally {
    clearTimeout(timer);
    exited.catch(() => undefined);
  }
}

/** stdout split into lines, also fed to the output tail; the pipe is always drained. */
function stdoutLines(child: ChildProcess, remember: (chunk: Buffer) => void): AsyncIterable<string> {
  const waiting: ((line: string | null) => void)[] = [];
  const queued: string[] = [];
  let partial = '';
  let ended = false;
  child.stdout!.on('data', (chunk: Buffer) => {
    remember(chunk);
    partial += chunk.toString('utf8');
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      const next = waiting.shift();
      if (next) next(line);
      else if (queued.length < 100) queued.push(line);
    }
  });
  child.stdout!.on('end', () => {
    ended = true;
    for (const next of waiting.splice(0)) next(null);
  });
  return {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const line = queued.shift() ?? (ended ? null : await new Promise<string | null>((resolve) => waiting.push(resolve)));
        if (line === null) return;
        yield line;
      }
    },
  };
}

/** SIGTERM by pid, then SIGKILL if it has not exited after 5 s. */
async function stopServer(server: Server): Promise<void> {
  const { child, pid } = server;
  if (child.exitCode !== null || child.signalCode !== null || pid < 0) {
    children.delete(child);
    return;
  }
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // already gone
  }
  const killed = await Promise.race([gone.then(() => false), sleep(5_000).then(() => true)]);
  if (killed) {
    log(`${server.name} (pid ${pid}) ignored SIGTERM for 5 s; sending SIGKILL`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await gone;
  }
  children.delete(child);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, HOST, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => (port > 0 ? resolve(port) : reject(new Error('could not find a free port'))));
    });
  });
}

/** A readiness check for servers that print "READY <port>". */
async function readyLine(_child: ChildProcess, lines: AsyncIterable<string>): Promise<number> {
  for await (const line of lines) {
    const match = /^READY (\d+)$/.exec(line.trim());
    if (match) return Number(match[1]);
  }
  throw new ChildStartError('stdout closed before the READY line');
}

/** confhub's environment: the inherited one without any CONFHUB_* variable, plus ours. */
function confhubEnv(port: number, dir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('CONFHUB_')) env[name] = value;
  return {
    ...env,
    CONFHUB_DATA_DIR: dir,
    CONFHUB_PORT: String(port),
    CONFHUB_HOST: HOST,
    CONFHUB_RATE_LIMIT: '0',
    CONFHUB_AUTH_FAILURE_LIMIT: '0',
    CONFHUB_LOG_LEVEL: 'warn',
  };
}

function execNode(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd: ROOT, env, timeout: 15_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`node ${args.join(' ')} failed: ${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** VmRSS and VmHWM of a process, in KiB (Linux). */
function memoryOf(pid: number): { rssKiB: number | null; peakRssKiB: number | null } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string): number | null => {
      const match = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
      return match ? Number(match[1]) : null;
    };
    return { rssKiB: field('VmRSS'), peakRssKiB: field('VmHWM') };
  } catch {
    return { rssKiB: null, peakRssKiB: null };
  }
}

/** The file system type of a directory, as far as it matters here (fsync on tmpfs is free). */
function fileSystemOf(dir: string): string {
  const known: Record<number, string> = {
    0xef53: 'ext2/3/4',
    0x01021994: 'tmpfs',
    0x58465342: 'xfs',
    0x9123683e: 'btrfs',
    0x794c7630: 'overlayfs',
    0x2fc12fc1: 'zfs',
  };
  try {
    const { type } = statfsSync(dir);
    return known[type] ?? `0x${type.toString(16)}`;
  } catch {
    return 'unknown';
  }
}

/** CPU time counters in clock ticks (USER_HZ) from /proc, to see who used the cores during a run. */
interface CpuCounters {
  readonly machineBusy: number;
  readonly machineTotal: number;
  readonly bench: number;
  readonly server: number;
}

function processTicks(pid: number | 'self'): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after "(comm)": state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function cpuCounters(serverPid: number): CpuCounters | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const values = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = values;
    const busy = user + nice + system + irq + softirq + steal;
    return { machineBusy: busy, machineTotal: busy + idle + iowait, bench: processTicks('self'), server: processTicks(serverPid) };
  } catch {
    return null;
  }
}

/** Average cores used over the interval by the server, by this process, and by everything else. */
function cpuShares(before: CpuCounters | null, after: CpuCounters | null, cores: number): CpuShares | null {
  if (!before || !after) return null;
  const total = after.machineTotal - before.machineTotal;
  if (total <= 0) return null;
  const perCore = total / cores;
  const server = (after.server - before.server) / perCore;
  const bench = (after.bench - before.bench) / perCore;
  const busy = (after.machineBusy - before.machineBusy) / perCore;
  const round = (v: number): number => Math.round(v * 100) / 100;
  return { serverCores: round(server), benchCores: round(bench), otherCores: round(Math.max(0, busy - server - bench)) };
}

interface CpuShares {
  serverCores: number;
  benchCores: number;
  /** Cores used by other processes on the machine; more than ~0.2 means the run was disturbed. */
  otherCores: number;
}

const CORES = cpus().length;
const DISTURBED_OTHER_CORES = 0.2;

// ---------------------------------------------------------------------------------------------
// Measuring

interface Measurement {
  readonly scenario: string;
  readonly server: string;
  readonly method: string;
  readonly path: string;
  readonly connections: number;
  readonly pipelining: number;
  readonly durationSeconds: number;
  /** Mean of autocannon's per-second samples. */
  readonly requestsPerSecond: number;
  readonly requestsPerSecondStddev: number;
  readonly totalResponses: number;
  readonly responses2xx: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly statusCodes: Record<string, number>;
  /** Latency of the 2xx answers in ms, exact (from every answer's own time, sorted). */
  readonly latencyMs: Latency;
  /** autocannon's own latency histogram (whole-millisecond buckets, 2xx only), for reference. */
  readonly autocannonLatencyMs: Latency;
  /** 2xx answers during the warm-up, which is not otherwise reported. */
  readonly warmup2xx: number;
  /** Average cores used during the measurement (from /proc); otherCores shows outside interference. */
  readonly cpu: CpuShares | null;
  readonly throughputBytesPerSecond: number;
  readonly valid: boolean;
}

interface Latency {
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Response times of 2xx answers, kept whole so percentiles are exact rather than bucketed. */
class LatencySamples {
  private values = new Float64Array(1 << 16);
  private count = 0;

  add(ms: number): void {
    if (this.count === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2);
      bigger.set(this.values);
      this.values = bigger;
    }
    this.values[this.count++] = ms;
  }

  summary(): Latency {
    const sorted = this.values.slice(0, this.count).sort();
    const n = sorted.length;
    if (n === 0) return { mean: NaN, p50: NaN, p90: NaN, p99: NaN, max: NaN };
    // Nearest rank.
    const at = (p: number): number => sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]!;
    let sum = 0;
    for (const v of sorted) sum += v;
    const round = (v: number): number => Math.round(v * 1000) / 1000;
    return { mean: round(sum / n), p50: round(at(50)), p90: round(at(90)), p99: round(at(99)), max: round(sorted[n - 1]!) };
  }
}

function runAutocannon(options: autocannon.Options, samples?: LatencySamples): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(options, (error, result) => (error ? reject(error) : resolve(result)));
    if (samples) {
      instance.on('response', (_client, statusCode, _bytes, responseTime) => {
        if (statusCode >= 200 && statusCode < 300) samples.add(responseTime);
      });
    }
  });
}

interface LoadSpec {
  readonly scenario: string;
  readonly server: string;
  readonly url: string;
  readonly serverPid: number;
  readonly method: 'GET' | 'PUT';
  readonly path: string;
  readonly connections: number;
  readonly headers: Record<string, string>;
  /** A request per call, for requests that must differ (PUT values). */
  readonly setupRequest?: autocannon.Request['setupRequest'];
}

async function load(spec: LoadSpec, durationSeconds: number, samples?: LatencySamples): Promise<autocannon.Result> {
  const request: autocannon.Request = { method: spec.method, path: spec.path, headers: spec.headers };
  if (spec.setupRequest) request.setupRequest = spec.setupRequest;
  return runAutocannon({
    url: spec.url,
    connections: spec.connections,
    pipelining: PIPELINING,
    duration: durationSeconds,
    timeout: 10,
    requests: [request],
  }, samples);
}

async function warmUpAndMeasure(spec: LoadSpec): Promise<Measurement> {
  log(`${spec.scenario}: warm-up ${WARMUP_S} s`);
  const warm = await load(spec, WARMUP_S);
  if (warm.non2xx > 0 || warm.errors > 0) log(`${spec.scenario}: warm-up saw ${warm.non2xx} non-2xx and ${warm.errors} errors`);
  log(`${spec.scenario}: measuring ${DURATION_S} s (${spec.connections} connections, pipelining ${PIPELINING})`);
  const samples = new LatencySamples();
  const cpuBefore = cpuCounters(spec.serverPid);
  const r = await load(spec, DURATION_S, samples);
  const cpu = cpuShares(cpuBefore, cpuCounters(spec.serverPid), CORES);
  const statusCodes: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(r.statusCodeStats)) statusCodes[code] = count;
  const measurement: Measurement = {
    scenario: spec.scenario,
    server: spec.server,
    method: spec.method,
    path: spec.path,
    connections: spec.connections,
    pipelining: PIPELINING,
    durationSeconds: DURATION_S,
    requestsPerSecond: r.requests.mean,
    requestsPerSecondStddev: r.requests.stddev,
    totalResponses: r.requests.total,
    responses2xx: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    statusCodes,
    latencyMs: samples.summary(),
    autocannonLatencyMs: { mean: r.latency.mean, p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max },
    warmup2xx: warm['2xx'],
    cpu,
    throughputBytesPerSecond: r.throughput.mean,
    valid: r.non2xx === 0 && r.errors === 0 && r['2xx'] > 0,
  };
  log(
    `${spec.scenario}: ${fmt(measurement.requestsPerSecond, 0)} req/s, p50 ${fmt(measurement.latencyMs.p50, 2)} ms, p99 ${fmt(measurement.latencyMs.p99, 2)} ms, ` +
      `non-2xx ${measurement.non2xx}, errors ${measurement.errors}${measurement.valid ? '' : '  <-- INVALID RUN'}` +
      (cpu ? `; cores used: server ${cpu.serverCores}, autocannon ${cpu.benchCores}, other processes ${cpu.otherCores}` : ''),
  );
  if (cpu && cpu.otherCores > DISTURBED_OTHER_CORES) {
    log(`warning: other processes used ${cpu.otherCores} cores during "${spec.scenario}"; its numbers are disturbed`);
  }
  return measurement;
}

/** One request with fetch, for setup and checks (not measured). */
async function fetchText(url: string, init: RequestInit = {}): Promise<{ status: number; text: string; contentType: string | null }> {
  const response = await fetch(url, init);
  return { status: response.status, text: await response.text(), contentType: response.headers.get('content-type') };
}

/** The reference server must answer exactly confhub's body with the key, and 401 without it. */
async function checkReferenceServer(server: Server, apiKey: string, body: string): Promise<void> {
  const url = `http://${HOST}:${server.port}${GET_PATH}`;
  const withKey = await fetchText(url, { headers: { 'x-api-key': apiKey } });
  if (withKey.status !== 200 || withKey.text !== body) {
    throw new Error(`${server.name} answered ${withKey.status} with a different body than confhub:\n${withKey.text.slice(0, 300)}`);
  }
  const wrongKey = await fetchText(url, { headers: { 'x-api-key': `${apiKey}x` } });
  const noKey = await fetchText(url);
  if (wrongKey.status !== 401 || noKey.status !== 401) {
    throw new Error(`${server.name} did not refuse a wrong or missing key (answered ${wrongKey.status} / ${noKey.status})`);
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function fmt(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return 'n/a';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function markdown(report: Report): string {
  const rows = report.scenarios.map(
    (m) =>
      `| ${m.scenario} | ${fmt(m.requestsPerSecond, 0)} | ${fmt(m.latencyMs.p50, 2)} | ${fmt(m.latencyMs.p99, 2)} | ${m.non2xx} | ${m.errors} |`,
  );
  const budgetRows = report.budgets.map((b) => `| ${b.name} | ${b.limit} | ${b.actual} | ${b.pass ? 'pass' : '**FAIL**'} |`);
  const cpu = `${report.machine.cpuCount} × ${report.machine.cpuModel}`;
  const disturbed = report.scenarios.filter((m) => m.cpu && m.cpu.otherCores > DISTURBED_OTHER_CORES);
  const disturbance =
    disturbed.length > 0
      ? [
          `**Disturbed run:** other processes used CPU during ${disturbed.map((m) => `${m.scenario} (${m.cpu!.otherCores} cores)`).join(', ')}; run again on a quiet machine before quoting these numbers.`,
          '',
        ]
      : [];
  return [
    `### HTTP benchmark (${report.date.slice(0, 10)}, Node ${report.machine.node}, ${cpu})`,
    '',
    `autocannon in the bench process, each server alone while measured, ${report.settings.warmupSeconds} s warm-up then ${report.settings.durationSeconds} s; ` +
      `GETs: ${report.settings.getConnections} connections, pipelining ${report.settings.pipelining}; PUT: ${report.settings.putConnections} connections. ` +
      `confhub runs from dist/ with request logs off (CONFHUB_LOG_LEVEL=warn) and rate limits off; ` +
      `every PUT writes a new value (temp file, fsync, rename, fsync dir; data dir on ${report.confhub.dataDirFileSystem}).`,
    '',
    '| Scenario | req/s (mean) | p50 (ms) | p99 (ms) | non-2xx | errors |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    `confhub GET / Express ceiling: **${fmt(report.ratios.confhubGetVsExpress, 2)}** · Express / node:http: **${fmt(report.ratios.expressVsNodeHttp, 2)}** · ` +
      `confhub RSS after the GET run: ${fmt((report.confhub.rssAfterGetKiB ?? NaN) / 1024, 1)} MiB ` +
      `(${fmt((report.confhub.rssAtStartKiB ?? NaN) / 1024, 1)} MiB before any load)`,
    '',
    ...disturbance,
    '| Budget | Limit | Measured | Result |',
    '|---|---|---|---|',
    ...budgetRows,
    '',
    'Latencies are exact percentiles of every 2xx answer\'s time as seen by autocannon (autocannon\'s own whole-millisecond histogram is in the JSON). ' +
      'Absolute numbers depend on the machine; compare the ratios.',
  ].join('\n');
}

interface Budget {
  name: string;
  limit: string;
  actual: string;
  pass: boolean;
}

interface Report {
  date: string;
  machine: { node: string; platform: string; arch: string; cpuModel: string; cpuCount: number; loadAverageAtStart: number[] };
  settings: { durationSeconds: number; warmupSeconds: number; getConnections: number; putConnections: number; pipelining: number; host: string };
  confhub: {
    requestLogs: 'off (CONFHUB_LOG_LEVEL=warn)';
    rateLimits: 'off';
    dataDirFileSystem: string;
    /** After start-up and one GET, before any load. */
    rssAtStartKiB: number | null;
    rssAfterGetKiB: number | null;
    peakRssAfterGetKiB: number | null;
    rssAfterPutKiB: number | null;
    putWritesAudited: number | null;
    putAuditCheck: string;
  };
  scenarios: Measurement[];
  ratios: { confhubGetVsExpress: number | null; expressVsNodeHttp: number | null };
  budgets: Budget[];
  valid: boolean;
  /** Some measurement ran while other processes used more than DISTURBED_OTHER_CORES cores. */
  disturbed: boolean;
}

// ---------------------------------------------------------------------------------------------
// Main

function lastPut(scenarios: Measurement[]): Measurement {
  const last = scenarios[scenarios.length - 1];
  if (!last || last.method !== 'PUT') throw new Error('the PUT measurement is missing');
  return last;
}

async function main(): Promise<void> {
  // Other work on the machine skews every number; say so rather than guess.
  const loadAverageAtStart = loadavg().map((v) => Math.round(v * 100) / 100);
  if ((loadAverageAtStart[0] ?? 0) > 0.5) log(`note: 1-minute load average is ${loadAverageAtStart[0]} before starting; other work on this machine will skew the numbers`);
  if (!existsSync(CLI)) throw new Error(`${relative(ROOT, CLI)} is missing; run "npm run build" first (npm run bench does)`);
  dataDir = mkdtempSync(join(tmpdir(), 'confhub-bench-'));
  const dataDirFileSystem = fileSystemOf(dataDir);
  if (dataDirFileSystem === 'tmpfs') log(`warning: ${dataDir} is on tmpfs, where fsync costs nothing; PUT numbers will be optimistic`);

  const scenarios: Measurement[] = [];

  // 1 + 2: confhub GET, then PUT, against the built server.
  const port = await freePort();
  const env = confhubEnv(port, dataDir);
  const base = `http://${HOST}:${port}`;
  log(`starting confhub (node dist/cli.js serve) on ${base}, data dir ${dataDir}`);
  const confhub = await startServer('confhub', [CLI, 'serve'], env, async (child) => {
    for (;;) {
      if (child.exitCode !== null) throw new ChildStartError('confhub exited');
      try {
        const health = await fetchText(`${base}/healthz`);
        if (health.status === 200) return port;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
  });

  let rssAtStart: ReturnType<typeof memoryOf>;
  let rssAfterGet: ReturnType<typeof memoryOf>;
  let rssAfterPut: ReturnType<typeof memoryOf>;
  let putWritesAudited: number | null = null;
  let putAuditCheck = 'not run';
  let apiKey: string;
  let getBody: string;
  try {
    apiKey = (await execNode([CLI, 'apikey', 'show'], env)).trim();
    if (!apiKey) throw new Error('"confhub apikey show" printed nothing');
    const first = await fetchText(`${base}${GET_PATH}`, { headers: { 'x-api-key': apiKey } });
    if (first.status !== 200) throw new Error(`confhub GET ${GET_PATH} answered ${first.status}: ${first.text.slice(0, 300)}`);
    getBody = first.text;
    rssAtStart = memoryOf(confhub.pid);
    log(`confhub GET ${GET_PATH}: ${Buffer.byteLength(getBody)} bytes of ${first.contentType}`);

    scenarios.push(
      await warmUpAndMeasure({
        scenario: 'confhub GET /api/v1/settings/gitea',
        server: 'confhub',
        url: base,
        serverPid: confhub.pid,
        method: 'GET',
        path: GET_PATH,
        connections: GET_CONNECTIONS,
        headers: { 'x-api-key': apiKey },
      }),
    );
    rssAfterGet = memoryOf(confhub.pid);

    const auditHead = async (): Promise<number> => {
      const audit = await fetchText(`${base}/api/v1/audit?limit=1`, { headers: { 'x-api-key': apiKey } });
      if (audit.status !== 200) throw new Error(`confhub GET /api/v1/audit answered ${audit.status}`);
      return (JSON.parse(audit.text) as { entries: { id: number }[] }).entries[0]?.id ?? 0;
    };
    const auditBefore = await auditHead();
    // Every request carries a new value (letters and digits), so every one really writes.
    let counter = 0; // setupRequest calls (autocannon also builds one request per connection up front)
    const runTag = Date.now().toString(36);
    const putPath = (value: string): string => `/api/v1/settings/${PUT_SECTION}?key=${PUT_KEY}&value=${value}`;
    scenarios.push(
      await warmUpAndMeasure({
        scenario: `confhub PUT ${PUT_SECTION}.${PUT_KEY} (fsync)`,
        server: 'confhub',
        url: base,
        serverPid: confhub.pid,
        method: 'PUT',
        path: putPath('x'),
        connections: PUT_CONNECTIONS,
        headers: { 'x-api-key': apiKey },
        setupRequest: (request) => {
          counter += 1;
          return { ...request, path: putPath(`b${runTag}n${counter}`) };
        },
      }),
    );
    rssAfterPut = memoryOf(confhub.pid);

    // Every 2xx PUT must have been applied (audited as "applied", not "unchanged").
    const auditAfter = await auditHead();
    putWritesAudited = auditAfter - auditBefore;
    const recent = await fetchText(`${base}/api/v1/audit?section=${PUT_SECTION}&limit=1000`, { headers: { 'x-api-key': apiKey } });
    const entries = (JSON.parse(recent.text) as { entries: { id: number; result: string; key: string | null }[] }).entries.filter(
      (e) => e.id > auditBefore,
    );
    const notApplied = entries.filter((e) => e.result !== 'applied' || e.key !== PUT_KEY).length;
    const putMeasurement = lastPut(scenarios);
    const counted2xx = putMeasurement.warmup2xx + putMeasurement.responses2xx;
    putAuditCheck =
      `${putWritesAudited} audit entries (writes) for ${counted2xx} 2xx PUT answers counted by autocannon in warm-up + measurement ` +
      `(requests still in flight when a run stops are written but not counted); of the newest ${entries.length}, ${notApplied} not "applied"`;
    log(`PUT check: ${putAuditCheck}`);
    if (notApplied > 0 || putWritesAudited < counted2xx) throw new Error(`some PUTs did not write: ${putAuditCheck}`);
  } finally {
    log(`stopping confhub (pid ${confhub.pid})`);
    await stopServer(confhub);
  }

  // 3 + 4: the reference servers, each alone, same body and key check.
  const referenceEnv: NodeJS.ProcessEnv = { ...process.env, BENCH_API_KEY: apiKey, BENCH_BODY: getBody, BENCH_PORT: '0', BENCH_PATH: GET_PATH };
  for (const [name, file] of [
    ['Express 5 ceiling', 'bench/ceiling-express.ts'],
    ['node:http floor', 'bench/floor-node-http.ts'],
  ] as const) {
    log(`starting ${name} (node --import tsx ${file})`);
    const server = await startServer(name, ['--import', 'tsx', join(ROOT, file)], referenceEnv, readyLine);
    try {
      await checkReferenceServer(server, apiKey, getBody);
      scenarios.push(
        await warmUpAndMeasure({
          scenario: `${name} GET (same body + key check)`,
          server: name,
          url: `http://${HOST}:${server.port}`,
          serverPid: server.pid,
          method: 'GET',
          path: GET_PATH,
          connections: GET_CONNECTIONS,
          headers: { 'x-api-key': apiKey },
        }),
      );
    } finally {
      log(`stopping ${name} (pid ${server.pid})`);
      await stopServer(server);
    }
  }

  // Ratios and budgets.
  const [get, put, express, floor] = scenarios;
  if (!get || !put || !express || !floor) throw new Error('a scenario is missing');
  const ratio = (a: number, b: number): number | null => (b > 0 ? a / b : null);
  const confhubGetVsExpress = ratio(get.requestsPerSecond, express.requestsPerSecond);
  const expressVsNodeHttp = ratio(express.requestsPerSecond, floor.requestsPerSecond);
  const budgets: Budget[] = [
    {
      name: 'confhub GET req/s ≥ 0.75 × Express ceiling',
      limit: `≥ ${fmt(BUDGETS.getVsCeilingMin * express.requestsPerSecond, 0)} req/s (ratio ≥ ${BUDGETS.getVsCeilingMin})`,
      actual: `${fmt(get.requestsPerSecond, 0)} req/s (ratio ${fmt(confhubGetVsExpress, 2)})`,
      pass: confhubGetVsExpress !== null && confhubGetVsExpress >= BUDGETS.getVsCeilingMin,
    },
    { name: 'confhub GET p99', limit: `≤ ${BUDGETS.getP99MaxMs} ms`, actual: `${fmt(get.latencyMs.p99, 2)} ms`, pass: get.latencyMs.p99 <= BUDGETS.getP99MaxMs },
    { name: 'confhub PUT req/s', limit: `≥ ${BUDGETS.putMinRps} req/s`, actual: `${fmt(put.requestsPerSecond, 0)} req/s`, pass: put.requestsPerSecond >= BUDGETS.putMinRps },
    { name: 'confhub PUT p99', limit: `≤ ${BUDGETS.putP99MaxMs} ms`, actual: `${fmt(put.latencyMs.p99, 2)} ms`, pass: put.latencyMs.p99 <= BUDGETS.putP99MaxMs },
  ];

  const cpuList = cpus();
  const report: Report = {
    date: new Date().toISOString(),
    machine: {
      node: process.version,
      platform: process.platform,
      arch: process.arch,
      cpuModel: cpuList[0]?.model.trim() ?? 'unknown',
      cpuCount: cpuList.length,
      loadAverageAtStart,
    },
    settings: {
      durationSeconds: DURATION_S,
      warmupSeconds: WARMUP_S,
      getConnections: GET_CONNECTIONS,
      putConnections: PUT_CONNECTIONS,
      pipelining: PIPELINING,
      host: HOST,
    },
    confhub: {
      requestLogs: 'off (CONFHUB_LOG_LEVEL=warn)',
      rateLimits: 'off',
      dataDirFileSystem,
      rssAtStartKiB: rssAtStart.rssKiB,
      rssAfterGetKiB: rssAfterGet.rssKiB,
      peakRssAfterGetKiB: rssAfterGet.peakRssKiB,
      rssAfterPutKiB: rssAfterPut.rssKiB,
      putWritesAudited,
      putAuditCheck,
    },
    scenarios,
    ratios: { confhubGetVsExpress, expressVsNodeHttp },
    budgets,
    valid: scenarios.every((m) => m.valid),
    disturbed: scenarios.some((m) => m.cpu !== null && m.cpu.otherCores > DISTURBED_OTHER_CORES),
  };

  mkdirSync(dirname(RESULTS_PATH), { recursive: true });
  writeFileSync(RESULTS_PATH, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`\n${markdown(report)}\n\n`);
  log(`results written to ${relative(ROOT, RESULTS_PATH)}`);
  if (!report.valid) {
    const bad = scenarios.filter((m) => !m.valid).map((m) => `${m.scenario} (non-2xx ${m.non2xx}, errors ${m.errors}, status ${JSON.stringify(m.statusCodes)})`);
    log(`INVALID RUN: ${bad.join('; ')}`);
    process.exitCode = 1;
  }
}

main()
  .catch((error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  })
  .finally(cleanupSync);
