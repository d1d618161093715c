/**
 * Write cost against file size (npm run bench, after the memory one): what one PUT of one key
 * costs when config.ini holds 100 keys and when it holds 3,000. The budget: the 3,000-key PUT
 * within 2× the 100-key one. Results go to bench/results/put-cost.json, a Markdown summary to
 * stdout, progress to stderr.
 *
 * Two servers run side by side, each `node dist/cli.js serve` as shipped (log level,
 * failed-authentication limit, logs into a file; the request limit raised for back-to-back
 * requests) on a data dir of its own: config.ini is the shipped one plus `[bench_N]` sections
 * of ten keys, one of them a password (sealed by the first start, like the shipped ones), until
 * the file holds the number of keys. One ini target renders nginx_proxy_manager (reload none),
 * so the sync worker renders, writes and commits each revision beside the requests, as in use.
 * The PUTs go one at a time, `PUT /api/v1/settings/nginx_proxy_manager {"nike_name": …}`, in
 * rounds that alternate between the two servers, so both meet the same machine.
 *
 * Environment: BENCH_PUT_ROUNDS (default 6), BENCH_PUT_PER_ROUND (PUTs per server and round,
 * default 50), BENCH_PUT_WARMUP (PUTs per server before the first round, default 50). Budgets
 * are reported, never enforced; the exit code is 1 only when a run is invalid (a non-200
 * answer, or a file that does not hold the last value written).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseIni } from '../src/ini/document.js';
import { assertBuilt, startConfhub, type Confhub } from './lib/confhub.js';
import { positiveFromEnv } from './lib/env.js';
import { dataDirFileSystem, describeMachine, type MachineInfo } from './lib/machine.js';
import { ROOT } from './lib/paths.js';
import { log, makeTempDir, runBench, sleep, stopServer } from './lib/processes.js';
import { budgetTable, disturbedNote, fmt, markdownTable, RESULTS_DIR, writeResults, type Budget } from './lib/report.js';
import { cpuShares, isDisturbed, sampleCpu, type CpuShares } from './lib/resource-usage.js';
import { round, summarize, type Summary } from './lib/stats.js';
import { SYNC, writeSystemIni } from './lib/system-ini.js';

// ---------------------------------------------------------------------------------------------
// Settings

const RESULTS_PATH = join(RESULTS_DIR, 'put-cost.json');
const ROUNDS = positiveFromEnv('BENCH_PUT_ROUNDS', 6, 'count');
const PER_ROUND = positiveFromEnv('BENCH_PUT_PER_ROUND', 50, 'count');
const WARMUP = positiveFromEnv('BENCH_PUT_WARMUP', 50, 'count');
const REST_MS = 500;
const SIZES = [100, 3000] as const;
/** Back-to-back requests reach a few hundred a second; the shipped limit is 1,200 a minute. */
const RATE_LIMIT_PER_MINUTE = 100_000;
const SECTION = 'nginx_proxy_manager';
const KEY = 'nike_name';
const KEYS_PER_SECTION = 10;
const TARGET = { sections: SECTION, format: 'ini', output: 'services/npm/console.ini', mode: '0644', reload: 'none', health: 'none' } as const;

const BUDGETS = { maxRatio: 2 } as const;

// ---------------------------------------------------------------------------------------------
// config.ini of a given size

function keyCount(text: string): number {
  return parseIni(text).sections.reduce((n, section) => n + section.entries.length, 0);
}

/** The shipped config.ini plus `[bench_N]` sections until it holds `keys` keys. */
function configWithKeys(keys: number): string {
  const shipped = readFileSync(join(ROOT, 'config', 'config.ini'), 'utf8').replace(/\n*$/, '\n');
  const lines: string[] = [];
  let count = keyCount(shipped);
  for (let s = 0; count < keys; s++) {
    lines.push('', `[bench_${s}]`);
    for (let k = 0; k < KEYS_PER_SECTION && count < keys; k++, count++) {
      // One password a section: sealed at the first start, opened by every read as the shipped ones.
      lines.push(k === KEYS_PER_SECTION - 1 ? `db_password = Bench-${s}-Pw!x${k}` : `setting_${k} = value ${s}.${k}`);
    }
  }
  return `${shipped}${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// Measuring

interface Server {
  readonly keys: number;
  readonly confhub: Confhub;
  readonly configPath: string;
  readonly configBytes: number;
  readonly samples: number[];
  lastValue: string;
}

async function startOne(keys: number, runTag: string): Promise<Server> {
  const dataDir = makeTempDir(`confhub-put-cost-${keys}-`);
  dataDirFileSystem(dataDir, 'the fsync of each write');
  writeSystemIni(dataDir, `confhub put-cost bench (bench/put-cost.ts), ${keys} keys`, { npm: TARGET });
  const configPath = join(dataDir, 'config', 'config.ini');
  const text = configWithKeys(keys);
  writeFileSync(configPath, text, { mode: 0o600 });
  const logFile = join(dataDir, 'confhub.log');
  const confhub = await startConfhub(dataDir, '/readyz', 60_000, { asShipped: { logFile, rateLimitPerMinute: RATE_LIMIT_PER_MINUTE } });
  const stored = readFileSync(configPath, 'utf8');
  if (keyCount(stored) !== keys) throw new Error(`config.ini holds ${keyCount(stored)} keys after the first start, not ${keys}`);
  return { keys, confhub, configPath, configBytes: Buffer.byteLength(stored), samples: [], lastValue: `${runTag}-start` };
}

/** One PUT of one key, timed from the call until the whole answer arrived. */
async function put(server: Server, value: string): Promise<number> {
  const { base, apiKey } = server.confhub;
  const started = performance.now();
  const response = await fetch(`${base}/api/v1/settings/${SECTION}`, {
    method: 'PUT',
    headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
    body: JSON.stringify({ [KEY]: value }),
  });
  const body = await response.text();
  const ms = performance.now() - started;
  if (response.status !== 200) throw new Error(`PUT on the ${server.keys}-key file answered ${response.status}: ${body.slice(0, 300)}`);
  if ((JSON.parse(body) as Record<string, unknown>)[KEY] !== value) throw new Error(`PUT on the ${server.keys}-key file did not answer the value it set`);
  server.lastValue = value;
  return ms;
}

async function series(server: Server, count: number, tag: string): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) times.push(await put(server, `${tag}-${i}`));
  return times;
}

interface SizeResult {
  keys: number;
  configBytes: number;
  latencyMs: Summary;
  /** Median of each round: how much the rounds differed. */
  roundP50Ms: number[];
  cpu: CpuShares<'confhub' | 'bench'> | null;
}

async function measure(runTag: string) {
  const servers: Server[] = [];
  try {
    for (const keys of SIZES) {
      log(`starting confhub with a ${keys}-key config.ini`);
      servers.push(await startOne(keys, runTag));
    }
    for (const server of servers) {
      log(`${server.keys} keys: ${WARMUP} warm-up PUTs`);
      await series(server, WARMUP, `${runTag}-warm`);
    }
    const rounds = new Map<number, number[][]>(servers.map((s) => [s.keys, []]));
    const cpu = new Map<number, CpuShares<'confhub' | 'bench'>[]>(servers.map((s) => [s.keys, []]));
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which size goes first, so neither always follows the other's worker run.
      const order = round % 2 === 0 ? servers : [...servers].reverse();
      for (const server of order) {
        await sleep(REST_MS);
        const sample = () => sampleCpu({ confhub: { pid: server.confhub.pid, children: true }, bench: 'self' });
        const before = sample();
        const times = await series(server, PER_ROUND, `${runTag}-r${round}`);
        const shares = cpuShares(before, sample());
        rounds.get(server.keys)!.push(times);
        server.samples.push(...times);
        if (shares) cpu.get(server.keys)!.push(shares);
      }
      log(`round ${round + 1}/${ROUNDS}: ${servers.map((s) => `${s.keys} keys p50 ${fmt(summarize(rounds.get(s.keys)!.at(-1)!).p50, 2)} ms`).join(', ')}`);
    }
    // Let the workers write their last revisions; the file must hold the last value written.
    await sleep(1000);
    for (const server of servers) {
      const value = parseIni(readFileSync(server.configPath, 'utf8')).byName.get(SECTION)?.byKey.get(KEY)?.value;
      if (value !== server.lastValue) throw new Error(`the ${server.keys}-key config.ini holds ${SECTION}.${KEY} = ${value}, not the last value written`);
    }
    return servers.map((server): SizeResult => {
      const shares = cpu.get(server.keys)!;
      const mean = (pick: (s: CpuShares<'confhub' | 'bench'>) => number): number => round(shares.reduce((n, s) => n + pick(s), 0) / shares.length, 2);
      return {
        keys: server.keys,
        configBytes: server.configBytes,
        latencyMs: summarize(server.samples),
        roundP50Ms: rounds.get(server.keys)!.map((times) => summarize(times).p50),
        cpu:
          shares.length === 0
            ? null
            : { confhubCores: mean((s) => s.confhubCores), benchCores: mean((s) => s.benchCores), otherCores: mean((s) => s.otherCores) },
      };
    });
  } finally {
    for (const server of servers) {
      log(`stopping confhub (pid ${server.confhub.pid})`);
      await stopServer(server.confhub);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function buildReport(machine: MachineInfo, sizes: SizeResult[]) {
  const small = sizes[0]!;
  const large = sizes[1]!;
  const ratioP50 = round(large.latencyMs.p50 / small.latencyMs.p50, 2);
  const ratioP99 = round(large.latencyMs.p99 / small.latencyMs.p99, 2);
  const budgets: Budget[] = [
    {
      name: `PUT of one key, ${large.keys.toLocaleString('en-US')} keys against ${small.keys} (p50)`,
      limit: `≤ ${BUDGETS.maxRatio}×`,
      actual: `${fmt(ratioP50, 2)}× (${fmt(large.latencyMs.p50, 2)} / ${fmt(small.latencyMs.p50, 2)} ms)`,
      pass: ratioP50 <= BUDGETS.maxRatio,
    },
  ];
  const disturbed = sizes.filter((s) => isDisturbed(s.cpu)).map((s) => `the ${s.keys}-key PUTs (${s.cpu!.otherCores} cores)`);
  return {
    date: new Date().toISOString(),
    machine,
    settings: {
      sizes: SIZES,
      rounds: ROUNDS,
      putsPerRound: PER_ROUND,
      warmupPuts: WARMUP,
      request: `PUT /api/v1/settings/${SECTION} {"${KEY}": …}, one at a time`,
      filler: `[bench_N] sections of ${KEYS_PER_SECTION} keys, one of them a password (sealed)`,
      sync: { debounce_min_ms: SYNC.debounceMinMs, debounce_max_ms: SYNC.debounceMaxMs, poll_interval_ms: SYNC.pollIntervalMs },
      target: TARGET,
      confhub: `node dist/cli.js serve as shipped (log level, failed-authentication limit; logs into a file), CONFHUB_RATE_LIMIT=${RATE_LIMIT_PER_MINUTE}`,
    },
    sizes,
    ratio: { p50: ratioP50, p99: ratioP99 },
    budgets,
    disturbed,
  };
}

type Report = ReturnType<typeof buildReport>;

function markdown(r: Report): string {
  return [
    `### PUT cost against file size (${r.date.slice(0, 10)}, Node ${r.machine.node}, ${r.machine.cpuCount} × ${r.machine.cpuModel})`,
    '',
    `${r.settings.request}; ${r.settings.rounds} rounds of ${r.settings.putsPerRound} per server after ${r.settings.warmupPuts} warm-up PUTs, the two servers alternating. ` +
      `config.ini is the shipped one plus ${r.settings.filler}; one ini target (reload none), so the worker renders and commits beside the PUTs.`,
    '',
    ...markdownTable(
      ['config.ini', 'bytes', 'PUTs', 'p50 ms', 'p99 ms', 'max ms', 'round p50s ms', 'confhub cores'],
      'lrrrrrlr',
      r.sizes.map((s) => [
        `${s.keys.toLocaleString('en-US')} keys`,
        s.configBytes.toLocaleString('en-US'),
        s.latencyMs.count,
        fmt(s.latencyMs.p50, 2),
        fmt(s.latencyMs.p99, 2),
        fmt(s.latencyMs.max, 2),
        s.roundP50Ms.map((v) => fmt(v, 2)).join(', '),
        fmt(s.cpu?.confhubCores, 2),
      ]),
    ),
    '',
    `Ratio ${r.sizes[1]!.keys.toLocaleString('en-US')} / ${r.sizes[0]!.keys} keys: p50 **${fmt(r.ratio.p50, 2)}×**, p99 ${fmt(r.ratio.p99, 2)}×.`,
    '',
    ...disturbedNote(r.disturbed),
    ...budgetTable(r.budgets),
    '',
    'Times are from this process: a request until its whole answer arrived.',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  const machine = describeMachine();
  assertBuilt();
  const report = buildReport(machine, await measure(Date.now().toString(36)));
  writeResults(RESULTS_PATH, report, markdown(report));
  if (report.disturbed.length > 0) log('warning: other processes used CPU during some measurements; see the "Disturbed run" line');
}

runBench(main);
