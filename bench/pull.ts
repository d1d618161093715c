/**
 * Pull integration benchmark (npm run bench): what a service that pulls its files costs, against
 * the built server as shipped and a private dockerd (test/support/engines.ts). Results go to
 * bench/results/pull.json, a Markdown summary to stdout, progress to stderr.
 *
 * One target `web` of four files (ini, and three `part_of = web` targets: json, template, env),
 * read with a token of the target (`Authorization: Bearer cht_…`).
 *
 * 1. `GET /api/v1/targets/web/bundle` with bench/run.ts's GET load (autocannon in this process, 16
 *    connections, exact latencies). Side by side, all three up: confhub; the Express ceiling, a
 *    bare Express 5 app serving the same tar with confhub's headers for it behind a Bearer check
 *    (bench/ceiling-express-bundle.ts); and the node:http floor doing the same
 *    (bench/floor-node-http-bundle.ts). After a warm-up of each, rounds of bursts that strictly
 *    cycle through the three with the same rest before each, so all meet the same machine (see
 *    bench/run.ts on why). confhub runs as shipped (log level, failed-authentication limit, logs
 *    into a file) with CONFHUB_RATE_LIMIT raised as bench/run.ts raises it.
 * 2. Container start → the service's command runs with the files installed, confhub already
 *    ready: a busybox container on `--network host` whose entrypoint is init/confhub-init.sh and
 *    whose command is `touch /out/<run>` on a bind-mounted directory; the time runs from the
 *    Docker API's start call to the moment this process sees the file appear (inotify through
 *    fs.watch, which fires as touch creates it, a few µs after the exec). The floor: the same
 *    container, same mounts and environment, with `touch` as its command directly. The two
 *    alternate, run by run; each container is created before and removed after its timed start.
 *    After every run with the script its destination is checked (untimed) to hold the worker's
 *    files, byte for byte and mode for mode, and the installed revision. confhub restarts for this
 *    part fully as shipped (the request limit too: the starts send three requests each).
 *
 * Environment: BENCH_PULL_ROUNDS (rounds of bundle bursts, default 6), BENCH_PULL_STARTS
 * (container starts of each kind, default 50). The exit code is 1 only when a run is invalid (a
 * non-2xx answer, a failed container, files that differ from the worker's).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, statSync, watch, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Docker from 'dockerode';
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../test/support/engines.js';
import { assertBuilt, HOST, startConfhub, type Confhub } from './lib/confhub.js';
import { startBenchDockerd } from './lib/dockerd.js';
import { positiveFromEnv } from './lib/env.js';
import { GET_CONNECTIONS, LatencySamples, PIPELINING, readyLine, runAutocannon, type Latency } from './lib/http-load.js';
import { describeMachine, type MachineInfo } from './lib/machine.js';
import { ROOT } from './lib/paths.js';
import { log, makeTempDir, runBench, sleep, startServer, stopServer, type Server } from './lib/processes.js';
import { disturbedNote, fmt, markdownTable, RESULTS_DIR, writeResults } from './lib/report.js';
import { clockTicksPerSecond, cpuShares, isDisturbed, processTicks, sampleCpu, type CpuShares } from './lib/resource-usage.js';
import { round, summarize } from './lib/stats.js';
import { writeSystemIni } from './lib/system-ini.js';

// ---------------------------------------------------------------------------------------------
// Settings

const RESULTS_PATH = join(RESULTS_DIR, 'pull.json');
const ROUNDS = positiveFromEnv('BENCH_PULL_ROUNDS', 6, 'count');
const WARMUP_S = 2;
const BURST_S = 5;
const REST_MS = 1000;
const STARTS = positiveFromEnv('BENCH_PULL_STARTS', 50, 'count');
/** Starts of each kind before the measured ones (image and page caches, dockerd's first calls). */
const START_WARMUP = 3;
/** How long after the container exited its marker may still be on its way through the event loop. */
const MARKER_GRACE_MS = 2000;
/** As bench/run.ts: the shipped 1,200 a minute per address is a protection a load test passes in a second. */
const RATE_LIMIT_PER_MINUTE = 1_000_000;
const TARGET = 'web';
const BUNDLE_PATH = `/api/v1/targets/${TARGET}/bundle`;
const SCRIPT = join(ROOT, 'init', 'confhub-init.sh');
/** Where each file of the bundle is under the data dir, by its path in the bundle. */
const OUTPUTS = {
  'app.ini': 'services/web/app.ini',
  'conf/app.json': 'services/web/conf/app.json',
  'site.conf': 'services/web/site.conf',
  '.env': 'services/web/.env',
};
const SITE_TEMPLATE = [
  'server {',
  '    listen {{ cockpit.port }};',
  '    location /git/ { proxy_pass {{ gitea.base_url }}; }',
  '    location /proxy/ { proxy_pass {{ nginx_proxy_manager.base_url }}; }',
  '}',
  '',
].join('\n');
/** Headers of confhub's bundle answer the reference servers send too (Content-Length they set themselves). */
const BUNDLE_HEADERS = ['content-type', 'content-disposition', 'cache-control', 'etag'] as const;

function writeBenchSystemIni(dataDir: string): void {
  const common = { reload: 'none', health: 'none' };
  writeSystemIni(dataDir, 'pull bench: one target of four files', {
    web: { sections: 'cockpit, gitea', format: 'ini', output: OUTPUTS['app.ini'], mode: '0640', ...common },
    'web-json': { sections: 'cockpit, domain', format: 'json', output: OUTPUTS['conf/app.json'], part_of: TARGET, ...common },
    'web-site': {
      sections: 'cockpit, gitea, nginx_proxy_manager',
      format: 'template',
      template: 'site.conf.tmpl',
      output: OUTPUTS['site.conf'],
      mode: '0644',
      part_of: TARGET,
      ...common,
    },
    'web-env': { env: 'global', format: 'env', output: OUTPUTS['.env'], part_of: TARGET, ...common },
  });
  writeFileSync(join(dataDir, 'config', 'site.conf.tmpl'), SITE_TEMPLATE);
}

// ---------------------------------------------------------------------------------------------
// confhub

function api(confhub: Confhub, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${confhub.base}${path}`, { ...init, headers: { 'x-api-key': confhub.apiKey, 'content-type': 'application/json' } });
}

/** Every target applied its revision: the bundle exists only then. */
async function waitInSync(confhub: Confhub): Promise<void> {
  const deadline = performance.now() + 30_000;
  for (;;) {
    const status = (await (await api(confhub, '/api/v1/sync/status')).json()) as { targets: { target: string; state: string }[] };
    if (status.targets.length === 4 && status.targets.every((t) => t.state === 'in_sync')) return;
    if (performance.now() > deadline) throw new Error(`the targets are not in sync after 30 s: ${JSON.stringify(status.targets)}`);
    await sleep(100);
  }
}

async function startAsShipped(dataDir: string, rateLimitPerMinute?: number): Promise<Confhub> {
  const logFile = join(dataDir, 'confhub.log');
  const confhub = await startConfhub(dataDir, '/readyz', 60_000, {
    asShipped: rateLimitPerMinute === undefined ? { logFile } : { logFile, rateLimitPerMinute },
  });
  try {
    await waitInSync(confhub);
    return confhub;
  } catch (error) {
    await stopServer(confhub);
    throw error;
  }
}

interface Fetched {
  readonly archive: Buffer;
  readonly headers: Record<string, string>;
  readonly entries: string[];
}

async function fetchBundle(base: string, token: string): Promise<Fetched> {
  const res = await fetch(`${base}${BUNDLE_PATH}`, { headers: { authorization: `Bearer ${token}` } });
  const archive = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) throw new Error(`${base}${BUNDLE_PATH} answered ${res.status}: ${archive.toString('utf8').slice(0, 300)}`);
  const headers: Record<string, string> = {};
  for (const name of BUNDLE_HEADERS) {
    const value = res.headers.get(name);
    if (value === null) throw new Error(`the bundle answer has no ${name} header`);
    headers[name] = value;
  }
  const entries = execFileSync('tar', ['-tf', '-'], { input: archive, encoding: 'utf8' }).trim().split('\n');
  return { archive, headers, entries };
}

// ---------------------------------------------------------------------------------------------
// 1. The bundle endpoint under load

interface LoadTarget {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
}

interface Burst {
  readonly server: string;
  readonly requestsPerSecond: number;
  readonly cpu: CpuShares<'server' | 'bench'> | null;
}

interface BundleResult {
  readonly name: string;
  /** Mean of the bursts' 2xx answers a second. */
  readonly requestsPerSecond: number;
  readonly latencyMs: Latency;
  readonly responses2xx: number;
  readonly serverCores: number | null;
  /** The server's CPU per answer (all its threads), from each burst's cores and answers a second. */
  readonly cpuUsPerRequest: number | null;
}

function burst(target: LoadTarget, token: string, seconds: number, samples?: LatencySamples) {
  return runAutocannon(
    {
      url: target.url,
      connections: GET_CONNECTIONS,
      pipelining: PIPELINING,
      duration: seconds,
      timeout: 10,
      requests: [{ method: 'GET', path: BUNDLE_PATH, headers: { authorization: `Bearer ${token}` } }],
    },
    samples,
  );
}

/** A reference server must answer confhub's bytes and headers with the token, and 401 without it. */
async function checkReferenceServer(server: Server, token: string, confhub: Fetched): Promise<void> {
  const base = `http://${HOST}:${server.port}`;
  const answer = await fetchBundle(base, token);
  if (!answer.archive.equals(confhub.archive) || JSON.stringify(answer.headers) !== JSON.stringify(confhub.headers)) {
    throw new Error(`${server.name} does not answer confhub's bundle with its headers: ${JSON.stringify(answer.headers)}`);
  }
  const refused = await fetch(`${base}${BUNDLE_PATH}`, { headers: { authorization: `Bearer ${token}x` } });
  await refused.arrayBuffer();
  if (refused.status !== 401) throw new Error(`${server.name} did not refuse a wrong token (answered ${refused.status})`);
}

async function measureBundle({ confhub, token, fetched }: { confhub: Confhub; token: string; fetched: Fetched }) {
  const dir = makeTempDir('confhub-bench-pull-ref-');
  const bodyFile = join(dir, 'bundle.tar');
  writeFileSync(bodyFile, fetched.archive);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    BENCH_TOKEN: token,
    BENCH_BODY_FILE: bodyFile,
    BENCH_HEADERS: JSON.stringify(fetched.headers),
    BENCH_PORT: '0',
    BENCH_PATH: BUNDLE_PATH,
  };
  const references: Server[] = [];
  try {
    for (const [name, file] of [
      ['Express 5 ceiling', 'bench/ceiling-express-bundle.ts'],
      ['node:http floor', 'bench/floor-node-http-bundle.ts'],
    ] as const) {
      log(`starting ${name} (node --import tsx ${file}) with confhub's ${fetched.archive.length}-byte bundle`);
      const server = await startServer(name, ['--import', 'tsx', join(ROOT, file)], env, readyLine, 20_000);
      references.push(server);
      await checkReferenceServer(server, token, fetched);
    }
    const targets: LoadTarget[] = [
      { name: 'confhub', url: confhub.base, pid: confhub.pid },
      ...references.map((r) => ({ name: r.name, url: `http://${HOST}:${r.port}`, pid: r.pid })),
    ];
    log(`bundle: warm-up ${WARMUP_S} s each, then ${ROUNDS} rounds of ${BURST_S} s bursts cycling through ${targets.map((t) => t.name).join(', ')}`);
    for (const target of targets) await burst(target, token, WARMUP_S);
    const samples = new Map(targets.map((t) => [t.name, new LatencySamples()]));
    const bursts: Burst[] = [];
    let invalid = 0;
    for (let r = 0; r < ROUNDS; r++) {
      for (const target of targets) {
        await sleep(REST_MS);
        const sample = () => sampleCpu({ server: target.pid, bench: 'self' });
        const before = sample();
        const result = await burst(target, token, BURST_S, samples.get(target.name));
        invalid += result.non2xx + result.errors;
        bursts.push({ server: target.name, requestsPerSecond: round(result['2xx'] / result.duration, 1), cpu: cpuShares(before, sample()) });
      }
      const latest = bursts.slice(-targets.length);
      log(`bundle round ${r + 1}/${ROUNDS}: ${latest.map((b) => `${b.server} ${fmt(b.requestsPerSecond, 0)} req/s`).join(', ')}`);
    }
    const rateLimitAfter = (await fetch(`${confhub.base}${BUNDLE_PATH}`, { headers: { authorization: `Bearer ${token}` } })).headers.get('ratelimit');
    const results = targets.map((target): BundleResult => {
      const mine = bursts.filter((b) => b.server === target.name);
      const cores = mine.flatMap((b) => (b.cpu ? [b.cpu.serverCores] : []));
      const perRequest = mine.flatMap((b) => (b.cpu && b.requestsPerSecond > 0 ? [(b.cpu.serverCores / b.requestsPerSecond) * 1e6] : []));
      return {
        name: target.name,
        requestsPerSecond: round(mine.reduce((n, b) => n + b.requestsPerSecond, 0) / mine.length, 0),
        latencyMs: samples.get(target.name)!.summary(),
        responses2xx: samples.get(target.name)!.size,
        serverCores: cores.length === 0 ? null : round(cores.reduce((a, b) => a + b, 0) / cores.length, 2),
        cpuUsPerRequest: perRequest.length === 0 ? null : round(perRequest.reduce((a, b) => a + b, 0) / perRequest.length, 0),
      };
    });
    const of = (name: string): number[] => bursts.filter((b) => b.server === name).map((b) => b.requestsPerSecond);
    const [confhubRps, ceilingRps] = [of('confhub'), of('Express 5 ceiling')];
    const perRound = confhubRps.map((c, i) => c / ceilingRps[i]!).sort((a, b) => a - b);
    const [confhub_, ceiling, floor] = results as [BundleResult, BundleResult, BundleResult];
    return {
      results,
      bursts,
      ratios: {
        confhubVsCeiling: round(confhub_.requestsPerSecond / ceiling.requestsPerSecond, 3),
        confhubVsCeilingRoundMin: round(perRound[0]!, 3),
        confhubVsCeilingRoundMax: round(perRound[perRound.length - 1]!, 3),
        ceilingVsFloor: round(ceiling.requestsPerSecond / floor.requestsPerSecond, 3),
      },
      rateLimitHeaderAfter: rateLimitAfter,
      valid: invalid === 0,
      disturbed: bursts.some((b) => isDisturbed(b.cpu)),
    };
  } finally {
    for (const server of references) await stopServer(server);
  }
}

// ---------------------------------------------------------------------------------------------
// 2. Container start → the service's command runs with the files installed

type Variant = 'script' | 'floor';

interface StartRun {
  readonly variant: Variant;
  /** start call → the command created its marker. */
  readonly execMs: number;
  /** start call → the Docker API answered it. */
  readonly startAnsweredMs: number;
  /** confhub's CPU (all threads) from the start call until the container exited, in clock ticks. */
  readonly confhubTicks: number;
  /** Processes the machine started meanwhile (/proc/stat `processes`): runc's, the container's, and anyone else's. */
  readonly processesStarted: number;
}

/** Processes started on the machine since boot. */
function processesStarted(): number {
  const match = /^processes (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
  return match ? Number(match[1]) : NaN;
}

interface StartContext {
  readonly docker: Docker;
  readonly confhub: Confhub;
  readonly work: string;
  readonly tokenFile: string;
  readonly dataDir: string;
  /** When this process saw each marker appear (performance.now), by file name. */
  readonly markers: Map<string, number>;
}

/** The destination holds the worker's files, bytes and modes, and the revision of the bundle. */
function checkInstalled(dest: string, { dataDir, revision }: { dataDir: string; revision: string }): void {
  for (const [path, output] of Object.entries(OUTPUTS)) {
    const installed = join(dest, path);
    const written = join(dataDir, output);
    if (!readFileSync(installed).equals(readFileSync(written))) throw new Error(`${path} differs from the file the worker wrote`);
    if ((statSync(installed).mode & 0o7777) !== (statSync(written).mode & 0o7777)) throw new Error(`${path} has another mode than the worker's file`);
  }
  const recorded = readFileSync(join(dest, '.confhub-revision'), 'utf8').trim();
  if (recorded !== revision) throw new Error(`the script recorded revision ${recorded}, the bundle is of ${revision}`);
}

async function startOnce(context: StartContext, { variant, name, revision }: { variant: Variant; name: string; revision: string }): Promise<StartRun> {
  const { docker, confhub, work, tokenFile, markers } = context;
  const dest = join(work, 'dest', name);
  mkdirSync(dest, { recursive: true });
  const container = await docker.createContainer({
    name: `confhub-pull-bench-${process.pid}-${name}`,
    Image: BUSYBOX_IMAGE,
    ...(variant === 'script' ? { Entrypoint: ['/confhub-init.sh'] } : {}),
    Cmd: ['touch', `/out/${name}`],
    Env: [`CONFHUB_URL=${confhub.base}`, `CONFHUB_TARGET=${TARGET}`, 'CONFHUB_TOKEN_FILE=/run/confhub/token', 'CONFHUB_DEST=/dest'],
    HostConfig: {
      NetworkMode: 'host',
      Binds: [`${SCRIPT}:/confhub-init.sh:ro`, `${tokenFile}:/run/confhub/token:ro`, `${join(work, 'out')}:/out`, `${dest}:/dest`],
    },
  });
  try {
    const ticksBefore = processTicks(confhub.pid);
    const processesBefore = processesStarted();
    const t0 = performance.now();
    await container.start();
    const startAnsweredMs = performance.now() - t0;
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    const confhubTicks = processTicks(confhub.pid) - ticksBefore;
    const started = processesStarted() - processesBefore;
    if (StatusCode !== 0) {
      const logs = (await container.logs({ stdout: true, stderr: true })).toString('utf8');
      throw new Error(`${name} exited ${StatusCode}:\n${logs}`);
    }
    const deadline = performance.now() + MARKER_GRACE_MS;
    while (!markers.has(name)) {
      if (performance.now() > deadline) throw new Error(`${name} exited 0 but no fs.watch event of its marker arrived`);
      await sleep(1);
    }
    if (variant === 'script') checkInstalled(dest, { dataDir: context.dataDir, revision });
    return { variant, execMs: markers.get(name)! - t0, startAnsweredMs, confhubTicks, processesStarted: started };
  } finally {
    await container.remove({ force: true });
  }
}

/** confhub's access log: each answer's `ms` by method and path. */
function answerTimes(lines: string): Map<string, number[]> {
  const byRoute = new Map<string, number[]>();
  for (const line of lines.split('\n')) {
    if (!line.includes('"ms":')) continue;
    const entry = JSON.parse(line) as { method?: string; path?: string; ms?: number };
    if (entry.method === undefined || entry.path === undefined || entry.ms === undefined) continue;
    const route = `${entry.method} ${entry.path}`;
    byRoute.set(route, [...(byRoute.get(route) ?? []), entry.ms]);
  }
  return byRoute;
}

interface StartsInput {
  readonly engine: { socketPath: string };
  readonly confhub: Confhub;
  readonly token: string;
  readonly dataDir: string;
  readonly revision: string;
}

async function measureStarts({ engine, confhub, token, dataDir, revision }: StartsInput) {
  const logFile = join(dataDir, 'confhub.log');
  const docker = new Docker({ socketPath: engine.socketPath });
  const work = makeTempDir('confhub-bench-pull-ct-');
  chmodSync(work, 0o755);
  mkdirSync(join(work, 'out'));
  const tokenFile = join(work, 'web.token');
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  const markers = new Map<string, number>();
  const watcher = watch(join(work, 'out'), (_event, file) => {
    if (file !== null && !markers.has(file)) markers.set(file, performance.now());
  });
  const context: StartContext = { docker, confhub, work, tokenFile, dataDir, markers };
  const runs: StartRun[] = [];
  const loadAverage = loadavg().map((v) => round(v, 2));
  const cpuBefore = sampleCpu({ confhub: confhub.pid, bench: 'self' });
  const startedAt = performance.now();
  let logOffset = 0;
  try {
    log(`container starts: ${START_WARMUP} of each kind to warm up, then ${STARTS} of each, alternating (floor, script)`);
    for (let i = 1; i <= START_WARMUP; i++) {
      for (const variant of ['floor', 'script'] as const) await startOnce(context, { variant, name: `${variant}-warmup${i}`, revision });
    }
    logOffset = statSync(logFile).size;
    for (let i = 0; i < STARTS; i++) {
      for (const variant of ['floor', 'script'] as const) runs.push(await startOnce(context, { variant, name: `${variant}-${i}`, revision }));
      if ((i + 1) % 10 === 0) {
        const last = runs.slice(-2);
        log(`container starts: ${i + 1}/${STARTS} (last: ${last.map((r) => `${r.variant} ${fmt(r.execMs)} ms`).join(', ')})`);
      }
    }
  } finally {
    watcher.close();
  }
  const cpu = cpuShares(cpuBefore, sampleCpu({ confhub: confhub.pid, bench: 'self' }));
  const answered = answerTimes(readFileSync(logFile).subarray(logOffset).toString('utf8'));
  const ticksPerMs = clockTicksPerSecond() / 1000;
  const of = (variant: Variant) => runs.filter((r) => r.variant === variant);
  const side = (variant: Variant) => ({
    runs: of(variant).length,
    execMs: summarize(of(variant).map((r) => r.execMs)),
    startAnsweredMs: summarize(of(variant).map((r) => r.startAnsweredMs)),
    processesStartedPerStart: summarize(of(variant).map((r) => r.processesStarted)),
    confhubCpuMsPerStart: round(of(variant).reduce((n, r) => n + r.confhubTicks, 0) / ticksPerMs / of(variant).length, 2),
  });
  const script = side('script');
  const floor = side('floor');
  const floorRuns = of('floor');
  const pairedDifferences = of('script').map((r, i) => r.execMs - floorRuns[i]!.execMs);
  return {
    script,
    floor,
    scriptShareMs: {
      differenceOfMedians: round(script.execMs.p50 - floor.execMs.p50, 2),
      pairedDifferences: summarize(pairedDifferences),
    },
    /** From confhub's access log (its own time per answer); /readyz, a probe, is not logged at the shipped level. */
    confhubAnswerMs: {
      bundle: summarize(answered.get(`GET ${BUNDLE_PATH}`) ?? []),
      checkin: summarize(answered.get(`POST /api/v1/targets/${TARGET}/checkin`) ?? []),
    },
    durationSeconds: round((performance.now() - startedAt) / 1000, 1),
    loadAverageAtStart: loadAverage,
    /** Over the whole part; "other" holds dockerd, containerd, runc and the containers. */
    cpu,
    dockerVersion: (await docker.version()).Version,
  };
}

// ---------------------------------------------------------------------------------------------
// Report

interface Report {
  bench: 'pull';
  date: string;
  machine: MachineInfo;
  bundle: {
    target: string;
    files: string[];
    bytes: number;
    headers: Record<string, string>;
    settings: { connections: number; pipelining: number; warmupSeconds: number; burstSeconds: number; restMs: number; rounds: number };
    confhub: { requestLogs: string; rateLimits: { perMinute: number; authFailuresPer15Min: string; lastRateLimitHeader: string | null } };
  } & Omit<Awaited<ReturnType<typeof measureBundle>>, 'rateLimitHeaderAfter'>;
  starts: {
    settings: { startsOfEach: number; warmupOfEach: number; network: string; command: string; detector: string; confhub: string };
  } & Awaited<ReturnType<typeof measureStarts>>;
  valid: boolean;
}

function markdown(r: Report): string {
  const rows = r.bundle.results.map((s) => [s.name, fmt(s.requestsPerSecond, 0), fmt(s.latencyMs.p50, 2), fmt(s.latencyMs.p99, 2), fmt(s.cpuUsPerRequest, 0)]);
  const { script, floor, scriptShareMs } = r.starts;
  const startRow = (label: string, s: typeof script) => [label, s.runs, fmt(s.execMs.p50), fmt(s.execMs.p99), fmt(s.execMs.max), fmt(s.startAnsweredMs.p50)];
  const disturbed = r.bundle.bursts.flatMap((b) => (isDisturbed(b.cpu) ? [`${b.server} (${b.cpu.otherCores} cores)`] : []));
  return [
    `## Pull integration (${r.date.slice(0, 10)}, Node ${r.machine.node}, ${r.machine.cpuCount} × ${r.machine.cpuModel}, Docker ${r.starts.dockerVersion})`,
    '',
    `\`GET ${BUNDLE_PATH}\` with a target token: ${r.bundle.files.length} files, ${fmt(r.bundle.bytes, 0)} bytes of tar; ` +
      `${r.bundle.settings.connections} connections, ${r.bundle.settings.rounds} rounds of ${r.bundle.settings.burstSeconds} s bursts cycling through the three servers; ` +
      `confhub as shipped (logs into a file, the request limit raised to ${fmt(r.bundle.confhub.rateLimits.perMinute, 0)} a minute).`,
    '',
    ...markdownTable(['server', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs per request'], 'lrrrr', rows),
    '',
    `confhub / Express ceiling: **${fmt(r.bundle.ratios.confhubVsCeiling, 2)}** (rounds ${fmt(r.bundle.ratios.confhubVsCeilingRoundMin, 2)}–${fmt(r.bundle.ratios.confhubVsCeilingRoundMax, 2)}); ` +
      `ceiling / node:http floor: ${fmt(r.bundle.ratios.ceilingVsFloor, 2)}.`,
    '',
    ...disturbedNote(disturbed),
    `Container start (Docker API start call) → the command runs (\`touch\` on a bind mount, seen by inotify), busybox on \`--network host\`, confhub ready and as shipped:`,
    '',
    ...markdownTable(['start →', 'runs', 'p50 ms', 'p99 ms', 'max ms', 'start call answered, p50 ms'], 'lrrrrr', [
      startRow(`command runs behind confhub-init.sh (${r.bundle.files.length} files installed)`, script),
      startRow('floor: the command as the entrypoint, no script', floor),
    ]),
    '',
    `The script's share: **${fmt(scriptShareMs.differenceOfMedians)} ms** (difference of the p50s; paired runs: p50 ${fmt(scriptShareMs.pairedDifferences.p50)} ms, ` +
      `p99 ${fmt(scriptShareMs.pairedDifferences.p99)} ms). Of it, confhub's own answers (its access log): the bundle p50 ${fmt(r.starts.confhubAnswerMs.bundle.p50, 2)} ms, ` +
      `the check-in p50 ${fmt(r.starts.confhubAnswerMs.checkin.p50, 2)} ms; confhub's CPU per start: ${fmt(script.confhubCpuMsPerStart)} ms with the script, ${fmt(floor.confhubCpuMsPerStart)} ms without; ` +
      `processes started on the machine per start (p50): ${fmt(script.processesStartedPerStart.p50, 0)} with the script, ${fmt(floor.processesStartedPerStart.p50, 0)} without.`,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  assertBuilt();
  const machine = describeMachine();
  const dataDir = makeTempDir('confhub-bench-pull-');
  writeBenchSystemIni(dataDir);
  const { engine, stop } = await startBenchDockerd();
  try {
    await ensureBusyboxImage(engine.socketPath);

    let confhub = await startAsShipped(dataDir, RATE_LIMIT_PER_MINUTE);
    let token: string;
    let fetched: Fetched;
    let bundle: Awaited<ReturnType<typeof measureBundle>>;
    try {
      const made = await api(confhub, `/api/v1/targets/${TARGET}/tokens`, { method: 'POST', body: JSON.stringify({ description: 'pull bench' }) });
      if (made.status !== 201) throw new Error(`making a token: ${made.status} ${await made.text()}`);
      token = ((await made.json()) as { token: string }).token;
      fetched = await fetchBundle(confhub.base, token);
      const files = fetched.entries.filter((e) => e.startsWith('files/') && !e.endsWith('/'));
      if (files.length !== Object.keys(OUTPUTS).length) throw new Error(`the bundle holds ${files.length} files: ${fetched.entries.join(', ')}`);
      log(`bundle of ${TARGET}: ${files.join(', ')}; ${fetched.archive.length} bytes; ${JSON.stringify(fetched.headers)}`);
      bundle = await measureBundle({ confhub, token, fetched });
    } finally {
      await stopServer(confhub);
    }

    log('restarting confhub with the shipped request limit for the container starts');
    confhub = await startAsShipped(dataDir);
    let starts: Awaited<ReturnType<typeof measureStarts>>;
    try {
      const again = await fetchBundle(confhub.base, token);
      if (!again.archive.equals(fetched.archive)) throw new Error('the bundle changed across the restart');
      const revision = execFileSync('tar', ['-xOf', '-', 'REVISION'], { input: fetched.archive, encoding: 'utf8' }).trim();
      starts = await measureStarts({ engine, confhub, token, dataDir, revision });
    } finally {
      await stopServer(confhub);
    }

    const { rateLimitHeaderAfter, ...measured } = bundle;
    const report: Report = {
      bench: 'pull',
      date: new Date().toISOString(),
      machine,
      bundle: {
        target: TARGET,
        files: fetched.entries.filter((e) => e.startsWith('files/') && !e.endsWith('/')).map((e) => e.slice('files/'.length)),
        bytes: fetched.archive.length,
        headers: fetched.headers,
        settings: { connections: GET_CONNECTIONS, pipelining: PIPELINING, warmupSeconds: WARMUP_S, burstSeconds: BURST_S, restMs: REST_MS, rounds: ROUNDS },
        confhub: {
          requestLogs: 'as shipped (CONFHUB_LOG_LEVEL unset: info, one line per request), stdout to a file',
          rateLimits: { perMinute: RATE_LIMIT_PER_MINUTE, authFailuresPer15Min: 'default', lastRateLimitHeader: rateLimitHeaderAfter },
        },
        ...measured,
      },
      starts: {
        settings: {
          startsOfEach: STARTS,
          warmupOfEach: START_WARMUP,
          network: 'host',
          command: 'touch /out/<run> (a bind-mounted directory)',
          detector: "fs.watch (inotify) on the bind-mounted directory in the bench process; time from just before the Docker API's start call",
          confhub: 'as shipped: logs into a file, both rate limits at their defaults',
        },
        ...starts,
      },
      valid: bundle.valid,
    };
    writeResults(RESULTS_PATH, report, markdown(report), [dataDir, engine.dir]);
    if (!report.valid) {
      log('INVALID RUN: a bundle burst had non-2xx answers or errors');
      process.exitCode = 1;
    }
  } finally {
    await stop();
  }
}

runBench(main);
