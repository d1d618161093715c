/**
 * Resolve cost (npm run bench, after the write cost one): what `${section:key}` references cost
 * on a 1,000-key config.ini holding 200 of them, in the process and through the API. Results go
 * to bench/results/resolve.json, a Markdown summary to stdout, progress to stderr.
 *
 * The file: the shipped config.ini plus `[bench_N]` sections of ten keys (one a password, sealed)
 * up to 1,000 keys. In the first 50 sections four values refer to others: `${setting_0}` in the
 * same section, a chain on top of it (2 deep), a value referring to the previous section's chain
 * and to its own section (3 deep, cross-section; the first section refers to the shipped
 * [console] instead) and one referring forward to another section behind a `$$`. "Today's" file
 * holds the values those resolve to as literal text, so both answer the same JSON.
 *
 * 1. In the process (the modules from src/, run by tsx): parse + open of the stored file for scale,
 *    then `resolveDocument` with interpolation `extended` on the file with references, and with
 *    `none` (the fast path) on today's file, `checkDocument` (resolve + validation) of both, and
 *    the GET body built from each resolved document (createDocumentView + allJson). Each call
 *    timed on its own with performance.now, on a document parsed for it beforehand (untimed), as
 *    each new snapshot is; after a warm-up, in rounds that take the steps in turn.
 * 2. Through the API: two servers, each `node dist/cli.js serve` as shipped (log level,
 *    failed-authentication limit, logs into a file; the request limit raised), side by side: one
 *    on the file with references and `[confhub] interpolation = extended` in system.ini, one on
 *    today's file without a `[confhub]` section (interpolation none). Beside them the Express
 *    ceiling and the node:http floor of bench/run.ts serve the first server's GET body behind the
 *    same key check. Measured:
 *    - steady `GET /api/v1/settings` (the snapshot and its JSON cached), with bench/run.ts's load
 *      and GET budget, in bursts that strictly cycle through the four servers;
 *    - a change and the first GET after it, one at a time, alternating between the two confhubs:
 *      a PUT of `bench_0.setting_0` (which references reach) and the GET right after its answer;
 *      and a hand edit of the same key (temp file + rename, as an editor saves), then, once the
 *      watcher and the worker are done with it, the first GET, which parses, opens and resolves
 *      the new file.
 *
 * Environment: BENCH_RESOLVE_ROUNDS (rounds of the in-process steps, default 10),
 * BENCH_RESOLVE_PER_ROUND (calls of each step per round, default 300), BENCH_RESOLVE_GET_ROUNDS
 * (rounds of GET bursts, default 6), BENCH_RESOLVE_WRITES (PUT + GET pairs per server, default
 * 150), BENCH_RESOLVE_EDITS (hand edits per server, default 100). Budgets are reported, never
 * enforced; the exit code is 1 only when a run is invalid (a non-2xx answer, or values that do
 * not resolve to what today's file holds).
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseIni, type IniDocument } from '../src/ini/document.js';
import { openDocument } from '../src/secrets/sealed-document.js';
import { createKeyring, masterKey, sealValue, type Keyring } from '../src/secrets/secret-box.js';
import { checkDocument } from '../src/settings/check-document.js';
import { resolveDocument, type ResolveSettings } from '../src/settings/resolve.js';
import { CONFIG_SCHEMA } from '../src/settings/schema.js';
import { createDocumentView } from '../src/settings/typed-view.js';
import { fieldId } from '../src/settings/validate.js';
import { assertBuilt, HOST, startConfhub, type Confhub } from './lib/confhub.js';
import { positiveFromEnv } from './lib/env.js';
import { GET_BUDGET, GET_CONNECTIONS, LatencySamples, PIPELINING, readyLine, runAutocannon, type Latency } from './lib/http-load.js';
import { dataDirFileSystem, describeMachine, type MachineInfo } from './lib/machine.js';
import { ROOT } from './lib/paths.js';
import { log, makeTempDir, runBench, sleep, startServer, stopServer, type Server } from './lib/processes.js';
import { budgetTable, disturbedNote, fmt, markdownTable, RESULTS_DIR, writeResults, type Budget } from './lib/report.js';
import { cpuShares, isDisturbed, sampleCpu, threadCpuNs, type CpuShares } from './lib/resource-usage.js';
import { round, summarize, type Summary } from './lib/stats.js';
import { SYNC, writeSystemIni } from './lib/system-ini.js';

// ---------------------------------------------------------------------------------------------
// Settings

const RESULTS_PATH = join(RESULTS_DIR, 'resolve.json');
const KEYS = 1000;
const REFERENCE_VALUES = 200;
const KEYS_PER_SECTION = 10;
/** Values holding references in each of the first sections (setting_1 … setting_4). */
const REFERENCES_PER_SECTION = 4;
const REFERENCE_SECTIONS = REFERENCE_VALUES / REFERENCES_PER_SECTION;

const PURE_ROUNDS = positiveFromEnv('BENCH_RESOLVE_ROUNDS', 10, 'count');
const PURE_PER_ROUND = positiveFromEnv('BENCH_RESOLVE_PER_ROUND', 300, 'count');
const PURE_WARMUP = 300;

const GET_ROUNDS = positiveFromEnv('BENCH_RESOLVE_GET_ROUNDS', 6, 'count');
const GET_WARMUP_S = 2;
const GET_BURST_S = 5;
const GET_REST_MS = 1000;
const GET_PATH = '/api/v1/settings';

const WRITES = positiveFromEnv('BENCH_RESOLVE_WRITES', 150, 'count');
const WRITE_WARMUP = 10;
/** Before each PUT: the worker has written and committed the previous revision by then (debounce 50 ms). */
const WRITE_REST_MS = 200;
const EDITS = positiveFromEnv('BENCH_RESOLVE_EDITS', 100, 'count');
const EDIT_WARMUP = 3;
/** After a hand edit: past the store's racy window (100 ms) and the worker's run for the new revision. */
const EDIT_SETTLE_MS = 400;
/** A hand edit within this long of an API write is checked as a possibly stale copy (the store's window). */
const STALE_EDIT_WINDOW_MS = 2500;
/** Switch between the two confhubs after this many changes. */
const CHANGES_PER_TURN = 10;

const RATE_LIMIT_PER_MINUTE = 1_000_000;
const CHANGED_SECTION = 'bench_0';
const CHANGED_KEY = 'setting_0';

// ---------------------------------------------------------------------------------------------
// The two config.ini files

interface BenchFiles {
  /** config.ini with the references, as a user writes it (passwords in plain text: sealed by the first start). */
  readonly withReferences: string;
  /** The same file with every reference replaced by its value: what a user has today. */
  readonly literal: string;
  readonly keys: number;
  readonly referenceValues: number;
  /** `${…}` in all (each setting_3 holds two). */
  readonly referenceExpressions: number;
  readonly passwords: number;
}

const reference = (section: string, key: string): string => `\${${section}:${key}}`;
const hostOf = (s: number): string => `host-${s}.bench.internal`;
const urlOf = (host: string): string => `https://${host}:8443`;
const apiOf = (host: string): string => `${urlOf(host)}/api/v1`;

function keyCount(text: string): number {
  return parseIni(text).sections.reduce((n, section) => n + section.entries.length, 0);
}

/** One key of a bench section: its value as written and as it resolves. */
interface BenchKey {
  readonly key: string;
  readonly raw: string;
  readonly value: string;
}

function benchSection(s: number, shipped: IniDocument): BenchKey[] {
  const literal = (k: number): BenchKey => ({ key: `setting_${k}`, raw: `value ${s}.${k}`, value: `value ${s}.${k}` });
  const keys: BenchKey[] = [];
  for (let k = 0; k < KEYS_PER_SECTION - 1; k++) keys.push(literal(k));
  // One password a section: sealed at the first start, opened by every read as the shipped ones.
  keys.push({ key: 'db_password', raw: `Bench-${s}-Pw!x9`, value: `Bench-${s}-Pw!x9` });
  if (s >= REFERENCE_SECTIONS) return keys;
  const host = hostOf(s);
  const shippedValue = (section: string, key: string): string => shipped.byName.get(section)!.byKey.get(key)!.value;
  const previous = s === 0 ? undefined : `bench_${s - 1}`;
  const forward = (s + REFERENCE_SECTIONS / 2) % REFERENCE_SECTIONS;
  keys[0] = { key: 'setting_0', raw: host, value: host };
  keys[1] = { key: 'setting_1', raw: `https://\${setting_0}:8443`, value: urlOf(host) };
  keys[2] = { key: 'setting_2', raw: `\${setting_1}/api/v1`, value: apiOf(host) };
  keys[3] = previous
    ? { key: 'setting_3', raw: `${reference(previous, 'setting_2')}?via=\${setting_0}`, value: `${apiOf(hostOf(s - 1))}?via=${host}` }
    : {
        key: 'setting_3',
        raw: `${reference('console', 'bind')}:${reference('console', 'port')}`,
        value: `${shippedValue('console', 'bind')}:${shippedValue('console', 'port')}`,
      };
  keys[4] = { key: 'setting_4', raw: `$$HOME/${reference(`bench_${forward}`, 'setting_0')}`, value: `$HOME/${hostOf(forward)}` };
  return keys;
}

function benchFiles(): BenchFiles {
  const shippedText = readFileSync(join(ROOT, 'config', 'config.ini'), 'utf8').replace(/\n*$/, '\n');
  const shipped = parseIni(shippedText);
  const raw: string[] = [];
  const literal: string[] = [];
  let count = keyCount(shippedText);
  let passwords = 0;
  for (let s = 0; count < KEYS; s++) {
    raw.push('', `[bench_${s}]`);
    literal.push('', `[bench_${s}]`);
    for (const key of benchSection(s, shipped)) {
      if (count >= KEYS) break;
      raw.push(`${key.key} = ${key.raw}`);
      literal.push(`${key.key} = ${key.value}`);
      if (key.key === 'db_password') passwords++;
      count++;
    }
  }
  const withReferences = `${shippedText}${raw.join('\n')}\n`;
  const referenceLines = raw.filter((line) => /\$\{/.test(line));
  return {
    withReferences,
    literal: `${shippedText}${literal.join('\n')}\n`,
    keys: keyCount(withReferences),
    referenceValues: referenceLines.length,
    referenceExpressions: referenceLines.reduce((n, line) => n + (line.match(/\$\{/g)?.length ?? 0), 0),
    passwords,
  };
}

// ---------------------------------------------------------------------------------------------
// 1. In the process

const EXTENDED: ResolveSettings = { interpolation: 'extended' };
const NONE: ResolveSettings = { interpolation: 'none' };

/** The passwords sealed, as the server stores the file. */
function sealed(text: string, keyring: Keyring): string {
  let section = '';
  return text
    .split('\n')
    .map((line) => {
      const header = /^\[(.+)\]$/.exec(line);
      if (header) section = header[1]!;
      const password = /^db_password = (.+)$/.exec(line);
      return password ? `db_password = ${sealValue(keyring, fieldId(section, 'db_password'), password[1]!)}` : line;
    })
    .join('\n');
}

function opened(text: string, keyring: Keyring): IniDocument {
  return openDocument({ stored: parseIni(text), schema: CONFIG_SCHEMA, keyring }).doc;
}

/** The file with references resolves without an issue, to every value today's file holds. */
function checkResolvedValues(files: BenchFiles, keyring: Keyring): void {
  const resolved = resolveDocument({ doc: opened(sealed(files.withReferences, keyring), keyring), schema: CONFIG_SCHEMA, settings: EXTENDED });
  if (resolved.issues.length > 0) throw new Error(`the file with references does not resolve: ${resolved.issues[0]!.message}`);
  const today = opened(sealed(files.literal, keyring), keyring);
  for (const section of today.sections) {
    for (const entry of section.entries) {
      const value = resolved.doc.byName.get(section.name)?.byKey.get(entry.keyLower)?.value;
      if (value !== entry.value) throw new Error(`${section.name}.${entry.key} resolves to ${JSON.stringify(value)}, not ${JSON.stringify(entry.value)}`);
    }
  }
}

interface PureStep {
  readonly name: string;
  readonly file: 'references' | 'today';
  /** Untimed: makes what one timed call works on, and returns that call. */
  readonly prepare: () => () => unknown;
}

interface PureResult {
  readonly name: string;
  readonly file: 'references' | 'today';
  /** Microseconds per call. */
  readonly us: Summary;
  readonly roundP50Us: number[];
}

/** Each timed call works on a document parsed for it, as each new snapshot is resolved once. */
function pureSteps(files: BenchFiles): PureStep[] {
  const keyring = createKeyring(masterKey(randomBytes(32)));
  checkResolvedValues(files, keyring);
  const stored = { references: sealed(files.withReferences, keyring), today: sealed(files.literal, keyring) };
  const fresh = (file: 'references' | 'today'): IniDocument => opened(stored[file], keyring);
  const settingsOf = { references: EXTENDED, today: NONE } as const;
  const resolve = (file: 'references' | 'today') => () => {
    const doc = fresh(file);
    return () => resolveDocument({ doc, schema: CONFIG_SCHEMA, settings: settingsOf[file] });
  };
  const check = (file: 'references' | 'today') => () => {
    const doc = fresh(file);
    return () => checkDocument({ doc, schema: CONFIG_SCHEMA, resolve: settingsOf[file] });
  };
  const body = (file: 'references' | 'today') => () => {
    const { doc } = resolveDocument({ doc: fresh(file), schema: CONFIG_SCHEMA, settings: settingsOf[file] });
    return () => createDocumentView(doc, CONFIG_SCHEMA).allJson();
  };
  const parseAndOpen = `parse + open (${files.passwords} sealed values)`;
  return [
    { name: parseAndOpen, file: 'references', prepare: () => () => opened(stored.references, keyring) },
    { name: parseAndOpen, file: 'today', prepare: () => () => opened(stored.today, keyring) },
    { name: 'resolveDocument, interpolation extended', file: 'references', prepare: resolve('references') },
    { name: 'resolveDocument, interpolation none', file: 'today', prepare: resolve('today') },
    { name: 'checkDocument, interpolation extended', file: 'references', prepare: check('references') },
    { name: 'checkDocument, interpolation none', file: 'today', prepare: check('today') },
    { name: 'GET body of the resolved values (view + JSON)', file: 'references', prepare: body('references') },
    { name: 'GET body of the resolved values (view + JSON)', file: 'today', prepare: body('today') },
  ];
}

function measurePure(files: BenchFiles): { steps: PureResult[]; cpu: CpuShares<'bench'> | null } {
  const steps = pureSteps(files);
  const samples = steps.map(() => [] as number[]);
  const roundP50s = steps.map(() => [] as number[]);
  // What the steps return is kept, so no call can be optimised away.
  let sink: unknown;
  log(`in process: ${PURE_WARMUP} warm-up calls of each of ${steps.length} steps`);
  for (const step of steps) for (let i = 0; i < PURE_WARMUP; i++) sink = step.prepare()();
  const before = sampleCpu({ bench: 'self' });
  for (let r = 0; r < PURE_ROUNDS; r++) {
    steps.forEach((step, index) => {
      const times: number[] = [];
      for (let i = 0; i < PURE_PER_ROUND; i++) {
        const call = step.prepare();
        const started = performance.now();
        sink = call();
        times.push((performance.now() - started) * 1000);
      }
      samples[index]!.push(...times);
      roundP50s[index]!.push(summarize(times).p50);
    });
    log(`in process: round ${r + 1}/${PURE_ROUNDS}`);
  }
  const cpu = cpuShares(before, sampleCpu({ bench: 'self' }));
  if (sink === undefined) throw new Error('a step returned nothing');
  return {
    steps: steps.map((step, index) => ({ name: step.name, file: step.file, us: summarize(samples[index]!), roundP50Us: roundP50s[index]! })),
    cpu,
  };
}

// ---------------------------------------------------------------------------------------------
// 2. Through the API

type Variant = 'references' | 'today';

interface RunningConfhub {
  readonly variant: Variant;
  readonly name: string;
  readonly confhub: Confhub;
  readonly configPath: string;
  readonly configBytes: number;
}

async function startOne(variant: Variant, files: BenchFiles): Promise<RunningConfhub> {
  const dataDir = makeTempDir(`confhub-resolve-${variant}-`);
  dataDirFileSystem(dataDir, 'the fsync of each write');
  writeSystemIni(dataDir, `confhub resolve bench (bench/resolve.ts), ${variant === 'references' ? 'references, interpolation extended' : "today's file"}`, {});
  if (variant === 'references') appendFileSync(join(dataDir, 'config', 'system.ini'), '\n[confhub]\ninterpolation = extended\n');
  const configPath = join(dataDir, 'config', 'config.ini');
  writeFileSync(configPath, variant === 'references' ? files.withReferences : files.literal, { mode: 0o600 });
  const logFile = join(dataDir, 'confhub.log');
  const confhub = await startConfhub(dataDir, '/readyz', 60_000, { asShipped: { logFile, rateLimitPerMinute: RATE_LIMIT_PER_MINUTE } });
  const stored = readFileSync(configPath, 'utf8');
  if (keyCount(stored) !== files.keys) throw new Error(`config.ini holds ${keyCount(stored)} keys after the first start, not ${files.keys}`);
  const references = stored.match(/\$\{/g)?.length ?? 0;
  if (references !== (variant === 'references' ? files.referenceExpressions : 0))
    throw new Error(`config.ini holds ${references} references after the first start`);
  const name = variant === 'references' ? 'confhub, 200 references (extended)' : "confhub, today's file (none)";
  return { variant, name, confhub, configPath, configBytes: Buffer.byteLength(stored) };
}

async function getSettings({ confhub }: RunningConfhub): Promise<{ ms: number; body: string }> {
  const started = performance.now();
  const response = await fetch(`${confhub.base}${GET_PATH}`, { headers: { 'x-api-key': confhub.apiKey } });
  const body = await response.text();
  const ms = performance.now() - started;
  if (response.status !== 200) throw new Error(`GET ${GET_PATH} answered ${response.status}: ${body.slice(0, 300)}`);
  return { ms, body };
}

type Settings = Record<string, Record<string, unknown>>;

/** The bench sections of both answers are the same values: the references resolved to today's literals. */
function checkSameBenchValues(withReferences: string, today: string): void {
  const [a, b] = [JSON.parse(withReferences) as Settings, JSON.parse(today) as Settings];
  const names = Object.keys(b).filter((name) => name.startsWith('bench_'));
  if (names.length === 0) throw new Error('the GET answer holds no bench section');
  for (const name of names) {
    if (JSON.stringify(a[name]) !== JSON.stringify(b[name])) throw new Error(`GET ${GET_PATH}: [${name}] differs between the two servers`);
  }
  if (a[CHANGED_SECTION]?.setting_1 !== urlOf(hostOf(0))) throw new Error(`GET ${GET_PATH} answers ${CHANGED_SECTION}.setting_1 unresolved`);
}

/** What a change of bench_0.setting_0 to `value` must show in the GET answer. */
function checkChanged(server: RunningConfhub, body: string, value: string): void {
  const section = (JSON.parse(body) as Settings)[CHANGED_SECTION];
  const ok = section?.[CHANGED_KEY] === value && (server.variant === 'today' || section?.setting_1 === urlOf(value));
  if (!ok) throw new Error(`${server.name}: the GET after the change does not answer ${CHANGED_SECTION}.${CHANGED_KEY} = ${value} (resolved)`);
}

interface GetTarget {
  readonly name: string;
  readonly kind: 'confhub' | 'reference';
  readonly url: string;
  readonly pid: number;
  readonly apiKey: string;
}

interface Burst {
  readonly server: string;
  readonly requestsPerSecond: number;
  readonly cpu: CpuShares<'server' | 'bench'> | null;
}

interface GetResult {
  readonly name: string;
  readonly requestsPerSecond: number;
  readonly latencyMs: Latency;
  readonly responses2xx: number;
  readonly bodyBytes: number;
  readonly serverCores: number | null;
  /** The server's CPU per answer (all its threads), from each burst's cores and answers a second. */
  readonly cpuUsPerGet: number | null;
}

async function burst(target: GetTarget, durationSeconds: number, samples?: LatencySamples) {
  return runAutocannon(
    {
      url: target.url,
      connections: GET_CONNECTIONS,
      pipelining: PIPELINING,
      duration: durationSeconds,
      timeout: 10,
      requests: [{ method: 'GET', path: GET_PATH, headers: { 'x-api-key': target.apiKey } }],
    },
    samples,
  );
}

/** The reference server must answer exactly the body it was given with the key, and 401 without it. */
async function checkReferenceServer(target: GetTarget, body: string): Promise<void> {
  const withKey = await fetch(`${target.url}${GET_PATH}`, { headers: { 'x-api-key': target.apiKey } });
  const noKey = await fetch(`${target.url}${GET_PATH}`);
  await noKey.text();
  if (withKey.status !== 200 || (await withKey.text()) !== body || noKey.status !== 401)
    throw new Error(`${target.name} does not serve the body behind the key`);
}

async function measureGets({ servers, bodies }: { servers: readonly RunningConfhub[]; bodies: ReadonlyMap<string, string> }) {
  const [withReferences] = servers.filter((s) => s.variant === 'references');
  const body = bodies.get(withReferences!.name)!;
  const env: NodeJS.ProcessEnv = { ...process.env, BENCH_API_KEY: withReferences!.confhub.apiKey, BENCH_BODY: body, BENCH_PORT: '0', BENCH_PATH: GET_PATH };
  const references: Server[] = [];
  try {
    for (const [name, file] of [
      ['Express 5 ceiling', 'bench/ceiling-express.ts'],
      ['node:http floor', 'bench/floor-node-http.ts'],
    ] as const) {
      log(`starting ${name} (node --import tsx ${file}) with the first server's ${Buffer.byteLength(body)}-byte body`);
      references.push(await startServer(name, ['--import', 'tsx', join(ROOT, file)], env, readyLine, 20_000));
    }
    const targets: GetTarget[] = [
      ...servers.map((s): GetTarget => ({ name: s.name, kind: 'confhub', url: s.confhub.base, pid: s.confhub.pid, apiKey: s.confhub.apiKey })),
      ...references.map(
        (r): GetTarget => ({ name: r.name, kind: 'reference', url: `http://${HOST}:${r.port}`, pid: r.pid, apiKey: withReferences!.confhub.apiKey }),
      ),
    ];
    for (const target of targets) if (target.kind === 'reference') await checkReferenceServer(target, body);
    log(`GET: warm-up ${GET_WARMUP_S} s each, then ${GET_ROUNDS} rounds of ${GET_BURST_S} s bursts cycling through ${targets.map((t) => t.name).join(', ')}`);
    for (const target of targets) await burst(target, GET_WARMUP_S);
    const samples = new Map(targets.map((t) => [t.name, new LatencySamples()]));
    const bursts: Burst[] = [];
    let invalid = 0;
    for (let r = 0; r < GET_ROUNDS; r++) {
      // Always the same order, with the same rest before each burst: every server follows the
      // same other one, so whatever a burst leaves behind weighs on each alike, round after round.
      for (const target of targets) {
        await sleep(GET_REST_MS);
        const sample = () => sampleCpu({ server: target.pid, bench: 'self' });
        const before = sample();
        const result = await burst(target, GET_BURST_S, samples.get(target.name));
        invalid += result.non2xx + result.errors;
        bursts.push({ server: target.name, requestsPerSecond: round(result['2xx'] / result.duration, 1), cpu: cpuShares(before, sample()) });
      }
      log(
        `GET round ${r + 1}/${GET_ROUNDS}: ${bursts
          .slice(-targets.length)
          .map((b) => `${b.server} ${fmt(b.requestsPerSecond, 0)} req/s`)
          .join(', ')}`,
      );
    }
    const results = targets.map((target): GetResult => {
      const mine = bursts.filter((b) => b.server === target.name);
      const cores = mine.flatMap((b) => (b.cpu ? [b.cpu.serverCores] : []));
      const perGet = mine.flatMap((b) => (b.cpu && b.requestsPerSecond > 0 ? [(b.cpu.serverCores / b.requestsPerSecond) * 1e6] : []));
      return {
        name: target.name,
        requestsPerSecond: round(mine.reduce((n, b) => n + b.requestsPerSecond, 0) / mine.length, 0),
        latencyMs: samples.get(target.name)!.summary(),
        responses2xx: samples.get(target.name)!.size,
        bodyBytes: Buffer.byteLength(bodies.get(target.name) ?? body),
        serverCores: cores.length === 0 ? null : round(cores.reduce((a, b) => a + b, 0) / cores.length, 2),
        cpuUsPerGet: perGet.length === 0 ? null : round(perGet.reduce((a, b) => a + b, 0) / perGet.length, 0),
      };
    });
    return { results, bursts, valid: invalid === 0, disturbed: bursts.some((b) => isDisturbed(b.cpu)) };
  } finally {
    for (const server of references) {
      log(`stopping ${server.name} (pid ${server.pid})`);
      await stopServer(server);
    }
  }
}

/** A PUT of bench_0.setting_0, timed until its whole answer arrived. */
async function put(server: RunningConfhub, value: string): Promise<number> {
  const { base, apiKey } = server.confhub;
  const started = performance.now();
  const response = await fetch(`${base}/api/v1/settings/${CHANGED_SECTION}`, {
    method: 'PUT',
    headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
    body: JSON.stringify({ [CHANGED_KEY]: value }),
  });
  const body = await response.text();
  const ms = performance.now() - started;
  if (response.status !== 200) throw new Error(`${server.name}: PUT answered ${response.status}: ${body.slice(0, 300)}`);
  return ms;
}

/** config.ini with bench_0.setting_0 set to `value`, saved as an editor does (temp file, rename). */
function handEdit(server: RunningConfhub, value: string): void {
  const text = readFileSync(server.configPath, 'utf8');
  const at = text.indexOf(`[${CHANGED_SECTION}]\n`);
  const line = new RegExp(`^${CHANGED_KEY} = .*$`, 'm');
  const edited = text.slice(0, at) + text.slice(at).replace(line, `${CHANGED_KEY} = ${value}`);
  if (at < 0 || edited === text) throw new Error(`${server.name}: ${CHANGED_SECTION}.${CHANGED_KEY} not found in config.ini`);
  const temp = `${server.configPath}.bench-edit`;
  writeFileSync(temp, edited, { mode: 0o600 });
  renameSync(temp, server.configPath);
}

/** Times until the whole answer arrived, and the CPU the server's main thread used meanwhile, in ms. */
interface ChangeSamples {
  put: number[];
  getAfterPut: number[];
  getAfterEdit: number[];
  putCpu: number[];
  getAfterPutCpu: number[];
  getAfterEditCpu: number[];
}

/**
 * The CPU time of the server's main thread while `request` ran, from the scheduler's accounting:
 * what the request cost there, whatever else the machine was doing (wall times on a busy machine
 * include the wait for a core).
 */
async function withMainThreadCpu<T>(server: RunningConfhub, request: () => Promise<T>): Promise<{ result: T; cpuMs: number }> {
  const { pid } = server.confhub;
  const before = threadCpuNs(pid).get(pid)!;
  const result = await request();
  return { result, cpuMs: (threadCpuNs(pid).get(pid)! - before) / 1e6 };
}

/** `count` changes of each server, `CHANGES_PER_TURN` at a time, the servers taking turns. */
async function inTurns({
  servers,
  count,
  change,
}: {
  servers: readonly RunningConfhub[];
  count: number;
  change: (server: RunningConfhub, i: number) => Promise<void>;
}) {
  for (let done = 0; done < count; done += CHANGES_PER_TURN) {
    const order = (done / CHANGES_PER_TURN) % 2 === 0 ? servers : [...servers].reverse();
    for (const server of order) for (let i = done; i < Math.min(count, done + CHANGES_PER_TURN); i++) await change(server, i);
  }
}

/** CPU of both confhubs (with the git processes they ran) and of this process: what is left is other work. */
function sampleChanges(servers: readonly RunningConfhub[]) {
  const [a, b] = servers;
  return sampleCpu({ references: { pid: a!.confhub.pid, children: true }, today: { pid: b!.confhub.pid, children: true }, bench: 'self' });
}

type ChangeCpu = CpuShares<'references' | 'today' | 'bench'> | null;

async function measureChanges(
  servers: readonly RunningConfhub[],
  runTag: string,
): Promise<{ samples: Map<Variant, ChangeSamples>; cpu: { puts: ChangeCpu; handEdits: ChangeCpu } }> {
  const samples = new Map<Variant, ChangeSamples>(
    servers.map((s) => [s.variant, { put: [], getAfterPut: [], getAfterEdit: [], putCpu: [], getAfterPutCpu: [], getAfterEditCpu: [] }]),
  );
  const putThenGet = (keep: boolean) => async (server: RunningConfhub, i: number) => {
    await sleep(WRITE_REST_MS);
    const value = hostOf(0).replace('host-0', `put-${runTag}-${keep ? 'm' : 'w'}${i}`);
    const written = await withMainThreadCpu(server, () => put(server, value));
    const read = await withMainThreadCpu(server, () => getSettings(server));
    checkChanged(server, read.result.body, value);
    if (!keep) return;
    const mine = samples.get(server.variant)!;
    mine.put.push(written.result);
    mine.putCpu.push(written.cpuMs);
    mine.getAfterPut.push(read.result.ms);
    mine.getAfterPutCpu.push(read.cpuMs);
  };
  log(`PUT then GET: ${WRITE_WARMUP} to warm up, then ${WRITES} per server, ${CHANGES_PER_TURN} at a time`);
  await inTurns({ servers, count: WRITE_WARMUP, change: putThenGet(false) });
  const putsBefore = sampleChanges(servers);
  await inTurns({ servers, count: WRITES, change: putThenGet(true) });
  const puts = cpuShares(putsBefore, sampleChanges(servers));

  await sleep(STALE_EDIT_WINDOW_MS);
  const editThenGet = (keep: boolean) => async (server: RunningConfhub, i: number) => {
    const value = hostOf(0).replace('host-0', `edit-${runTag}-${keep ? 'm' : 'w'}${i}`);
    handEdit(server, value);
    await sleep(EDIT_SETTLE_MS);
    const read = await withMainThreadCpu(server, () => getSettings(server));
    checkChanged(server, read.result.body, value);
    if (!keep) return;
    samples.get(server.variant)!.getAfterEdit.push(read.result.ms);
    samples.get(server.variant)!.getAfterEditCpu.push(read.cpuMs);
  };
  log(`hand edit then GET: ${EDIT_WARMUP} to warm up, then ${EDITS} per server, ${CHANGES_PER_TURN} at a time`);
  await inTurns({ servers, count: EDIT_WARMUP, change: editThenGet(false) });
  const editsBefore = sampleChanges(servers);
  await inTurns({ servers, count: EDITS, change: editThenGet(true) });
  return { samples, cpu: { puts, handEdits: cpuShares(editsBefore, sampleChanges(servers)) } };
}

async function measureServers(files: BenchFiles, runTag: string) {
  const servers: RunningConfhub[] = [];
  try {
    for (const variant of ['references', 'today'] as const) {
      log(`starting confhub on the ${variant === 'references' ? 'file with references' : "today's file"}`);
      servers.push(await startOne(variant, files));
    }
    const bodies = new Map<string, string>();
    for (const server of servers) bodies.set(server.name, (await getSettings(server)).body);
    checkSameBenchValues(bodies.get(servers[0]!.name)!, bodies.get(servers[1]!.name)!);
    const gets = await measureGets({ servers, bodies });
    const changes = await measureChanges(servers, runTag);
    return {
      servers: servers.map((s) => ({ name: s.name, variant: s.variant, configBytes: s.configBytes })),
      gets,
      changesCpu: changes.cpu,
      changes: servers.map((s) => {
        const c = changes.samples.get(s.variant)!;
        return {
          name: s.name,
          putMs: summarize(c.put),
          getAfterPutMs: summarize(c.getAfterPut),
          getAfterEditMs: summarize(c.getAfterEdit),
          mainThreadCpuMs: { put: summarize(c.putCpu), getAfterPut: summarize(c.getAfterPutCpu), getAfterEdit: summarize(c.getAfterEditCpu) },
        };
      }),
    };
  } finally {
    for (const server of servers) {
      log(`stopping confhub (pid ${server.confhub.pid})`);
      await stopServer(server.confhub);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function buildReport({
  machine,
  files,
  pure,
  api,
}: {
  machine: MachineInfo;
  files: BenchFiles;
  pure: ReturnType<typeof measurePure>;
  api: Awaited<ReturnType<typeof measureServers>>;
}) {
  const get = (name: string): GetResult => api.gets.results.find((r) => r.name === name)!;
  const [withReferences, today] = api.servers;
  const ref = get(withReferences!.name);
  const now = get(today!.name);
  const ceiling = get('Express 5 ceiling');
  const floor = get('node:http floor');
  const ratio = (a: number, b: number): number => round(a / b, 3);
  const ratios = {
    referencesVsToday: ratio(ref.requestsPerSecond, now.requestsPerSecond),
    referencesVsCeiling: ratio(ref.requestsPerSecond, ceiling.requestsPerSecond),
    todayVsCeiling: ratio(now.requestsPerSecond, ceiling.requestsPerSecond),
    ceilingVsFloor: ratio(ceiling.requestsPerSecond, floor.requestsPerSecond),
  };
  const budgets: Budget[] = [
    {
      name: `GET ${GET_PATH} with 200 references (resolved, the default) ≥ ${GET_BUDGET.vsCeilingMin} × Express ceiling, interleaved bursts`,
      limit: `ratio ≥ ${GET_BUDGET.vsCeilingMin}`,
      actual: `${fmt(ref.requestsPerSecond, 0)} / ${fmt(ceiling.requestsPerSecond, 0)} req/s = ${fmt(ratios.referencesVsCeiling, 2)} (today's file: ${fmt(ratios.todayVsCeiling, 2)})`,
      pass: api.gets.valid && ratios.referencesVsCeiling >= GET_BUDGET.vsCeilingMin,
    },
    {
      name: `GET ${GET_PATH} with 200 references, p99`,
      limit: `≤ ${GET_BUDGET.p99MaxMs} ms`,
      actual: `${fmt(ref.latencyMs.p99, 2)} ms (today's file: ${fmt(now.latencyMs.p99, 2)} ms)`,
      pass: ref.latencyMs.p99 <= GET_BUDGET.p99MaxMs,
    },
  ];
  const disturbedBursts = api.gets.bursts.flatMap((b) => (isDisturbed(b.cpu) ? [b.cpu.otherCores] : []));
  const disturbed = [
    ...(isDisturbed(pure.cpu) ? [`the in-process steps (${pure.cpu.otherCores} cores)`] : []),
    ...(disturbedBursts.length > 0
      ? [`${disturbedBursts.length} of the ${api.gets.bursts.length} GET bursts (${Math.min(...disturbedBursts)} to ${Math.max(...disturbedBursts)} cores)`]
      : []),
    ...(isDisturbed(api.changesCpu.puts) ? [`the PUTs (${api.changesCpu.puts.otherCores} cores)`] : []),
    ...(isDisturbed(api.changesCpu.handEdits) ? [`the hand edits (${api.changesCpu.handEdits.otherCores} cores)`] : []),
  ];
  return {
    date: new Date().toISOString(),
    machine,
    settings: {
      pure: { rounds: PURE_ROUNDS, callsPerRound: PURE_PER_ROUND, warmupCalls: PURE_WARMUP, modules: 'src/ through tsx, in the bench process' },
      get: {
        path: GET_PATH,
        connections: GET_CONNECTIONS,
        pipelining: PIPELINING,
        rounds: GET_ROUNDS,
        burstSeconds: GET_BURST_S,
        restMs: GET_REST_MS,
        warmupSeconds: GET_WARMUP_S,
      },
      changes: {
        key: `${CHANGED_SECTION}.${CHANGED_KEY}`,
        puts: WRITES,
        putWarmup: WRITE_WARMUP,
        restBeforePutMs: WRITE_REST_MS,
        handEdits: EDITS,
        handEditWarmup: EDIT_WARMUP,
        settleAfterEditMs: EDIT_SETTLE_MS,
        changesPerTurn: CHANGES_PER_TURN,
      },
      sync: { debounce_min_ms: SYNC.debounceMinMs, debounce_max_ms: SYNC.debounceMaxMs, poll_interval_ms: SYNC.pollIntervalMs, targets: 'none' },
      confhub: `node dist/cli.js serve as shipped (log level, failed-authentication limit; logs into a file), CONFHUB_RATE_LIMIT=${RATE_LIMIT_PER_MINUTE}`,
    },
    document: {
      keys: files.keys,
      bytesWithReferences: Buffer.byteLength(files.withReferences),
      bytesToday: Buffer.byteLength(files.literal),
      storedBytes: Object.fromEntries(api.servers.map((s) => [s.variant, s.configBytes])),
      referenceValues: files.referenceValues,
      referenceExpressions: files.referenceExpressions,
      deepestChain: 3,
      sealedPasswords: files.passwords,
    },
    pure,
    get: { ...api.gets, ratios },
    changes: api.changes,
    changesCpu: api.changesCpu,
    budgets,
    valid: api.gets.valid,
    disturbed,
  };
}

type Report = ReturnType<typeof buildReport>;

function markdown(r: Report): string {
  const d = r.document;
  const pureRows = r.pure.steps.map((s) => [
    s.name,
    s.file === 'references' ? 'with references' : "today's",
    fmt(s.us.p50, 1),
    fmt(s.us.p99, 1),
    fmt(s.us.mean, 1),
  ]);
  const getRows = r.get.results.map((g) => [
    g.name,
    fmt(g.requestsPerSecond, 0),
    fmt(g.latencyMs.p50, 2),
    fmt(g.latencyMs.p99, 2),
    g.bodyBytes.toLocaleString('en-US'),
    fmt(g.serverCores, 2),
    fmt(g.cpuUsPerGet, 0),
  ]);
  const cell = (ms: Summary, cpu: Summary): string => `${fmt(ms.p50, 2)} / ${fmt(ms.p99, 2)} (${fmt(cpu.p50, 2)})`;
  const changeRows = r.changes.map((c) => [
    c.name,
    cell(c.putMs, c.mainThreadCpuMs.put),
    cell(c.getAfterPutMs, c.mainThreadCpuMs.getAfterPut),
    cell(c.getAfterEditMs, c.mainThreadCpuMs.getAfterEdit),
  ]);
  return [
    `### Resolve cost (${r.date.slice(0, 10)}, Node ${r.machine.node}, ${r.machine.cpuCount} × ${r.machine.cpuModel})`,
    '',
    `config.ini: ${d.keys.toLocaleString('en-US')} keys (${d.sealedPasswords} bench passwords sealed), ${d.referenceValues} values holding ${d.referenceExpressions} references ` +
      `(same section, cross-section, chains up to ${d.deepestChain} deep, \`$$\`); today's file holds what they resolve to.`,
    '',
    `In the process, ${r.settings.pure.rounds} rounds of ${r.settings.pure.callsPerRound} calls per step after ${r.settings.pure.warmupCalls} to warm up:`,
    '',
    ...markdownTable(['step', 'file', 'p50 µs', 'p99 µs', 'mean µs'], 'llrrr', pureRows),
    '',
    `GET ${r.settings.get.path}, ${r.settings.get.connections} connections, ${r.settings.get.rounds} rounds of ${r.settings.get.burstSeconds} s bursts cycling through the four servers:`,
    '',
    ...markdownTable(['server', 'req/s', 'p50 ms', 'p99 ms', 'body bytes', 'server cores', 'CPU µs per GET'], 'lrrrrrr', getRows),
    '',
    `With references / today: **${fmt(r.get.ratios.referencesVsToday, 2)}** · with references / Express ceiling: **${fmt(r.get.ratios.referencesVsCeiling, 2)}** ` +
      `(today's: ${fmt(r.get.ratios.todayVsCeiling, 2)}) · ceiling / floor: ${fmt(r.get.ratios.ceilingVsFloor, 2)}`,
    '',
    `A change of ${r.settings.changes.key} and the first GET after it (${r.settings.changes.puts} PUTs and ${r.settings.changes.handEdits} hand edits per server, one at a time, ` +
      `the servers taking turns; the GET ${r.settings.changes.settleAfterEditMs} ms after a hand edit). In brackets: the p50 of the CPU the server's main thread used meanwhile:`,
    '',
    ...markdownTable(
      ['server', 'PUT p50 / p99 ms (CPU)', 'GET right after the PUT p50 / p99 ms (CPU)', 'first GET after a hand edit p50 / p99 ms (CPU)'],
      'lrrr',
      changeRows,
    ),
    '',
    ...disturbedNote(r.disturbed),
    ...budgetTable(r.budgets),
    '',
    'Times over HTTP are from this process: a request until its whole answer arrived.',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  const machine = describeMachine();
  assertBuilt();
  const files = benchFiles();
  if (files.keys !== KEYS || files.referenceValues !== REFERENCE_VALUES) {
    throw new Error(`the bench file holds ${files.keys} keys and ${files.referenceValues} values with references`);
  }
  log(`config.ini: ${files.keys} keys, ${files.referenceValues} values holding ${files.referenceExpressions} references`);
  const pure = measurePure(files);
  const api = await measureServers(files, Date.now().toString(36));
  const report = buildReport({ machine, files, pure, api });
  writeResults(RESULTS_PATH, report, markdown(report));
  if (!report.valid) {
    log('INVALID RUN: a GET burst had non-2xx answers or errors');
    process.exitCode = 1;
  }
  if (report.disturbed.length > 0) log('warning: other processes used CPU during some measurements; see the "Disturbed run" line');
}

runBench(main);
