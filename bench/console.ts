/**
 * The console's admin page in a browser (npm run bench, last): how soon it is usable, what it
 * costs on the wire, and how soon a change shows on it. Results go to bench/results/console.json,
 * a Markdown summary to stdout, progress to stderr.
 *
 * Everything runs as users run it: confhub is `node dist/cli.js serve` as shipped (both rate
 * limits, the shipped log level, logs into a file), the console is the program
 * `node dist/console/console.js --config FILE --upstream URL`, the browser is Debian's Chromium
 * (headless) driven by playwright-core; all on loopback. system.ini has one target, `cockpit`,
 * rendering section cockpit to an ini file (reload none, health none).
 *
 * 1. Page load → interactive: a browser context holding a session cookie (signed in once with
 *    `POST /session` from this process) opens a new page on `/#status` and on `/#settings`, and
 *    the time runs from the navigation's start (the page's time origin) to the page's
 *    `console-ready` mark (the first view has its data). The floor, side by side: a bare
 *    node:http server (bench/floor-console-page.ts) answering the same HTML, JS and CSS bytes with
 *    the same headers and nothing else, timed to its `load` event (loadEventEnd): what the browser
 *    alone costs for these bytes. After a warm-up, the three kinds take turns, the order rotating
 *    each round, so all meet the same machine.
 * 2. Bytes: one load of each view in a fresh context (empty cache), then a second in the same
 *    context (what its cache saves): the transferSize of the navigation and of every resource
 *    entry (fetch() calls to /api/ included; transferSize counts the response headers too), the
 *    requests the page made, and the page's own files with and without gzip (Content-Length).
 * 3. Change → shown: the page on #status, its live channel connected, and a MutationObserver in the
 *    page noting Date.now() when a 7-hex text first shows in the target's Revision cell. Then one
 *    `PUT /api/v1/settings/cockpit {"port": …}` at a time with x-api-key straight to confhub: from
 *    Date.now() before the PUT until the page shows the revision (the PUT's ETag) and, the floor,
 *    until a `ws` client of confhub's channel in this process has the revision's `sync.applied`.
 *    Browser and bench read the same clock.
 *
 * Environment: BENCH_CONSOLE_LOADS (loads of each kind, default 30), BENCH_CONSOLE_CHANGES
 * (default 30). The exit code is 1 only when a run is invalid: a view without its data or signed
 * out, a change that is not applied or not shown.
 */
import { request } from 'node:http';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import WebSocket from 'ws';
import { CHROMIUM, launchChromium } from '../test/support/chromium.js';
import { assertBuilt, type Confhub, freePort, HOST, startConfhub } from './lib/confhub.js';
import { positiveFromEnv } from './lib/env.js';
import { readyLine } from './lib/http-load.js';
import { describeMachine, type MachineInfo } from './lib/machine.js';
import { ROOT } from './lib/paths.js';
import { answers200, log, makeTempDir, runBench, type Server, sleep, startServer, stopServer } from './lib/processes.js';
import { disturbedNote, fmt, markdownTable, RESULTS_DIR, writeResults } from './lib/report.js';
import { cpuShares, DISTURBED_OTHER_CORES, sampleCpu, type CpuSample } from './lib/resource-usage.js';
import { round, summarize, type Summary } from './lib/stats.js';
import { SYNC, writeSystemIni } from './lib/system-ini.js';

// ---------------------------------------------------------------------------------------------
// Settings

const RESULTS_PATH = join(RESULTS_DIR, 'console.json');
const LOADS = positiveFromEnv('BENCH_CONSOLE_LOADS', 30, 'count');
const CHANGES = positiveFromEnv('BENCH_CONSOLE_CHANGES', 30, 'count');
/** Rounds before the measured ones: Chromium's first pages, the servers' first answers. */
const WARMUP_ROUNDS = 3;
/** Before each load: the previous page's WebSocket closes and the machine settles a little. */
const LOAD_REST_MS = 100;
/** After a change is shown: the page's trailing refresh and confhub's run are over before the next. */
const CHANGE_GAP_MS = 300;
const TARGET = 'cockpit';
const CONSOLE_TITLE = 'confhub console';
const PAGE_FILES = ['/', '/assets/console.js', '/assets/console.css'] as const;
const SESSION_COOKIE = 'confhub_session';

/** What the wait conditions read in the page (the bench compiles without the DOM's types). */
interface PageGlobals {
  readonly performance: {
    getEntriesByName(name: string): unknown[];
    getEntriesByType(type: string): { loadEventEnd?: number }[];
  };
  readonly __benchSeen?: Record<string, number>;
}

/*
 * Wait conditions are functions, not strings: playwright evals a string condition at every poll,
 * and the console's Content-Security-Policy (no 'unsafe-eval') refuses that once a poll runs from
 * the page's own timer; a function's source is evaluated once, in DevTools' first call, and then
 * only called. Each is sent alone, so none can call another. Code read once goes as a string.
 */
const loaded = (): boolean => ((globalThis as unknown as PageGlobals).performance.getEntriesByType('navigation')[0]?.loadEventEnd ?? 0) > 0;
const readyAndLoaded = (): boolean => {
  const { performance: timeline } = globalThis as unknown as PageGlobals;
  return timeline.getEntriesByName('console-ready').length > 0 && (timeline.getEntriesByType('navigation')[0]?.loadEventEnd ?? 0) > 0;
};
const shown = (short: string): boolean => (globalThis as unknown as PageGlobals).__benchSeen?.[short] !== undefined;
const TIMES = `({
  ready: performance.getEntriesByName('console-ready')[0]?.startTime ?? null,
  load: performance.getEntriesByType('navigation')[0].loadEventEnd,
  signedIn: document.getElementById('app')?.hidden === false,
  statusShown: document.getElementById('view-status')?.hidden === false,
  settingsShown: document.getElementById('view-settings')?.hidden === false,
  rows: document.querySelectorAll('#targets tbody tr[data-target]').length,
  sections: document.querySelectorAll('#sections fieldset[data-section]').length,
  ...(() => {
    const resources = performance.getEntriesByType('resource').map((e) => ({ path: new URL(e.name).pathname, start: e.startTime, end: e.responseEnd }));
    const api = resources.filter((e) => e.path.startsWith('/api/'));
    return {
      scriptEnd: resources.find((e) => e.path === '/assets/console.js')?.end ?? null,
      sessionEnd: resources.find((e) => e.path === '/session')?.end ?? null,
      apiStart: api.length > 0 ? Math.min(...api.map((e) => e.start)) : null,
      apiEnd: api.length > 0 ? Math.max(...api.map((e) => e.end)) : null,
    };
  })(),
})`;
const ENTRIES = `[performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource')].map((e) => ({
  url: e.name,
  initiatorType: e.initiatorType ?? 'navigation',
  transferSize: e.transferSize,
  encodedBodySize: e.encodedBodySize,
  decodedBodySize: e.decodedBodySize,
  startTime: Math.round(e.startTime * 10) / 10,
  responseEnd: Math.round(e.responseEnd * 10) / 10,
}))`;
/**
 * Installed before the first change: every 7-hex text the target's Revision cell shows, with the
 * time it first showed. The observer's callback runs right after the DOM change (a microtask), so
 * this is the DOM update; the paint follows within a frame.
 */
const OBSERVE_REVISIONS = `(() => {
  const seen = {};
  window.__benchSeen = seen;
  const record = () => {
    const now = Date.now();
    for (const cell of document.querySelectorAll('tr[data-target="${TARGET}"] td.mono')) {
      const text = cell.textContent;
      if (/^[0-9a-f]{7}$/.test(text) && !(text in seen)) seen[text] = now;
    }
  };
  new MutationObserver(record).observe(document.getElementById('targets'), { childList: true, subtree: true, characterData: true });
  record();
  return true;
})()`;

// ---------------------------------------------------------------------------------------------
// Servers

function api(confhub: Confhub, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${confhub.base}${path}`, { ...init, headers: { 'x-api-key': confhub.apiKey, 'content-type': 'application/json' } });
}

/** The first sync run is over and the target applied a revision: the Status view has one to show. */
async function waitInSync(confhub: Confhub): Promise<void> {
  const deadline = performance.now() + 30_000;
  for (;;) {
    const status = (await (await api(confhub, '/api/v1/sync/status')).json()) as {
      targets: { target: string; state: string; appliedRevision: string | null }[];
    };
    const target = status.targets.find((t) => t.target === TARGET);
    if (target?.state === 'in_sync' && target.appliedRevision) return;
    if (performance.now() > deadline) throw new Error(`target ${TARGET} is not in sync after 30 s: ${JSON.stringify(status.targets)}`);
    await sleep(100);
  }
}

/** The console as supervisord starts it in the image, with a settings file as confhub renders it. */
async function startConsole(confhub: Confhub, dir: string): Promise<Server & { base: string }> {
  const port = await freePort();
  const config = join(dir, 'console.json');
  writeFileSync(config, JSON.stringify({ console: { title: CONSOLE_TITLE, bind: HOST, port: String(port) } }));
  const base = `http://${HOST}:${port}`;
  log(`starting the console (node dist/console/console.js) on ${base}, passing /api/ to ${confhub.base}`);
  const args = [join(ROOT, 'dist', 'console', 'console.js'), '--config', config, '--upstream', confhub.base];
  const server = await startServer('console', args, { ...process.env }, answers200(`${base}/healthz`, port), 20_000);
  return { ...server, base };
}

interface Fetched {
  readonly status: number;
  readonly headers: Record<string, string>;
  /** As on the wire: gzip when asked for and given. */
  readonly body: Buffer;
}

/** node:http rather than fetch(): fetch always asks for gzip and hands back the decoded body. */
function getRaw(url: string, { gzip }: { gzip: boolean }): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: gzip ? { 'accept-encoding': 'gzip' } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(res.headers)) if (typeof value === 'string') headers[name] = value;
        resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

interface PageFile {
  readonly path: string;
  readonly contentType: string;
  /** Content-Length without and with `accept-encoding: gzip`. */
  readonly bytes: number;
  readonly gzipBytes: number;
}

/** Headers of the console's answers the floor sends too; length and encoding it sets itself. */
const FLOOR_SKIPS = new Set(['content-length', 'content-encoding', 'vary', 'date', 'connection', 'keep-alive']);

/** The page's files as the console answers them, sizes for the report and the bytes for the floor. */
async function pageFiles(consoleBase: string, dir: string): Promise<{ files: PageFile[]; manifest: string }> {
  const files: PageFile[] = [];
  const stored: Record<string, { headers: Record<string, string>; raw: string; gzip: string }> = {};
  for (const path of PAGE_FILES) {
    const [raw, gzip] = [await getRaw(`${consoleBase}${path}`, { gzip: false }), await getRaw(`${consoleBase}${path}`, { gzip: true })];
    if (raw.status !== 200 || gzip.status !== 200) throw new Error(`the console answered ${path} with ${raw.status} / ${gzip.status}`);
    if (gzip.headers['content-encoding'] !== 'gzip') throw new Error(`the console did not gzip ${path} when asked to`);
    const length = (f: Fetched): number => Number(f.headers['content-length'] ?? NaN);
    if (length(raw) !== raw.body.length || length(gzip) !== gzip.body.length) throw new Error(`Content-Length of ${path} is not its body's length`);
    files.push({ path, contentType: raw.headers['content-type'] ?? '', bytes: length(raw), gzipBytes: length(gzip) });
    const headers = Object.fromEntries(Object.entries(raw.headers).filter(([name]) => !FLOOR_SKIPS.has(name)));
    stored[path] = { headers, raw: raw.body.toString('base64'), gzip: gzip.body.toString('base64') };
  }
  const manifest = join(dir, 'floor-files.json');
  writeFileSync(manifest, JSON.stringify(stored));
  return { files, manifest };
}

async function startFloor(manifest: string, files: readonly PageFile[]): Promise<Server & { base: string }> {
  log('starting the page floor (node --import tsx bench/floor-console-page.ts) with the console’s bytes');
  const env = { ...process.env, BENCH_FLOOR_FILES: manifest, BENCH_PORT: '0' };
  const server = await startServer('page floor', ['--import', 'tsx', join(ROOT, 'bench', 'floor-console-page.ts')], env, readyLine, 20_000);
  const base = `http://${HOST}:${server.port}`;
  for (const file of files) {
    const [raw, gzip] = [await getRaw(`${base}${file.path}`, { gzip: false }), await getRaw(`${base}${file.path}`, { gzip: true })];
    if (raw.body.length !== file.bytes || gzip.body.length !== file.gzipBytes)
      throw new Error(`the floor does not answer the console's bytes for ${file.path}`);
  }
  return { ...server, base };
}

/** `POST /session` as the page's form does, from this process; the cookie's value. */
async function signIn(consoleBase: string, apiKey: string): Promise<string> {
  const response = await fetch(`${consoleBase}/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key: apiKey }),
  });
  const body = await response.text();
  if (response.status !== 200) throw new Error(`POST /session answered ${response.status}: ${body.slice(0, 300)}`);
  const cookie = new RegExp(`^${SESSION_COOKIE}=([^;]+)`).exec(response.headers.get('set-cookie') ?? '');
  if (!cookie) throw new Error(`POST /session set no ${SESSION_COOKIE} cookie`);
  return cookie[1]!;
}

async function signedInContext(browser: Browser, { consoleBase, cookie }: { consoleBase: string; cookie: string }): Promise<BrowserContext> {
  const context = await browser.newContext();
  await context.addCookies([{ name: SESSION_COOKIE, value: cookie, url: consoleBase, httpOnly: true, sameSite: 'Strict' }]);
  return context;
}

// ---------------------------------------------------------------------------------------------
// CPU: who used the machine during a part

/** Clock ticks of a process and all its descendants, exited-and-reaped ones included (cutime). */
function treeTicks(root: number, skip: ReadonlySet<number>): number {
  const children = new Map<number, number[]>();
  const ticks = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // After "(comm)": state is field 3, ppid 4, utime 14, stime 15, cutime 16, cstime 17.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(fields[1]);
      ticks.set(Number(entry), Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]));
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // The process ended between the listing and the read.
    }
  }
  let sum = 0;
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    if (skip.has(pid)) continue;
    sum += ticks.get(pid) ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return sum;
}

interface Pids {
  readonly confhub: number;
  readonly console: number;
  readonly floor: number;
}

type Servers = 'confhub' | 'console' | 'floor';

interface CpuWindow {
  readonly machine: CpuSample<Servers> | null;
  /** This process and Chromium (its child, with all of Chromium's processes). */
  readonly benchAndBrowser: number;
}

interface CpuUse {
  confhubCores: number;
  consoleCores: number;
  floorCores: number;
  /** This process (playwright's client, the ws client) and every Chromium process. */
  benchAndBrowserCores: number;
  /** Everything else on the machine. */
  otherCores: number;
}

function cpuWindow(pids: Pids): CpuWindow {
  return {
    machine: sampleCpu<Servers>({ confhub: pids.confhub, console: pids.console, floor: pids.floor }),
    benchAndBrowser: treeTicks(process.pid, new Set([pids.confhub, pids.console, pids.floor])),
  };
}

function cpuUse(before: CpuWindow, after: CpuWindow): CpuUse | null {
  const shares = cpuShares(before.machine, after.machine);
  if (!shares || !before.machine || !after.machine) return null;
  const perCore = (after.machine.machineTotal - before.machine.machineTotal) / cpus().length;
  const benchAndBrowserCores = (after.benchAndBrowser - before.benchAndBrowser) / perCore;
  return {
    confhubCores: shares.confhubCores,
    consoleCores: shares.consoleCores,
    floorCores: shares.floorCores,
    benchAndBrowserCores: round(benchAndBrowserCores, 2),
    otherCores: round(Math.max(0, shares.otherCores - benchAndBrowserCores), 2),
  };
}

// ---------------------------------------------------------------------------------------------
// 1. Page load → interactive

type Kind = 'status' | 'settings' | 'floor';

interface PageTimes {
  ready: number | null;
  load: number;
  signedIn: boolean;
  statusShown: boolean;
  settingsShown: boolean;
  rows: number;
  sections: number;
  /** The script's answer ended, /session's answer ended, the first API call started, the last one's answer ended. */
  scriptEnd: number | null;
  sessionEnd: number | null;
  apiStart: number | null;
  apiEnd: number | null;
}

interface Urls {
  readonly console: string;
  readonly floor: string;
}

const urlOf = (kind: Kind, urls: Urls): string => (kind === 'floor' ? `${urls.floor}/` : `${urls.console}/#${kind}`);

/** The view has what its first screen shows: signed in, the view's own data in place. */
function checkView(kind: 'status' | 'settings', times: PageTimes): void {
  if (!times.signedIn) throw new Error(`the #${kind} view opened signed out: the session cookie was not taken`);
  if (kind === 'status' && (!times.statusShown || times.rows < 1)) throw new Error('the #status view is ready without its targets');
  if (kind === 'settings' && (!times.settingsShown || times.sections < 1)) throw new Error('the #settings view is ready without its sections');
}

/** A new page, one navigation, the times read from the page itself; the page is closed after. */
async function loadOnce(context: BrowserContext, kind: Kind, urls: Urls): Promise<PageTimes> {
  const page = await context.newPage();
  try {
    await page.goto(urlOf(kind, urls), { waitUntil: 'load', timeout: 30_000 });
    await page.waitForFunction(kind === 'floor' ? loaded : readyAndLoaded, undefined, { timeout: 30_000 });
    const times = await page.evaluate<PageTimes>(TIMES);
    if (kind !== 'floor') checkView(kind, times);
    return times;
  } finally {
    await page.close();
  }
}

interface LoadKind {
  readonly loads: number;
  /** Navigation start → the console-ready mark (the floor has none). */
  readonly readyMs: Summary | null;
  /** Navigation start → the end of the load event. */
  readonly loadEventMs: Summary;
  /** Navigation start → the moments the view's requests ended or began (null for the floor). */
  readonly steps: { scriptEndMs: Summary; sessionEndMs: Summary | null; apiStartMs: Summary | null; apiEndMs: Summary | null };
}

async function measureLoads(context: BrowserContext, { urls, pids }: { urls: Urls; pids: Pids }) {
  const kinds: Kind[] = ['status', 'settings', 'floor'];
  log(`page loads: ${WARMUP_ROUNDS} warm-up rounds, then ${LOADS} rounds of ${kinds.join(', ')}, the order rotating each round`);
  for (let r = 0; r < WARMUP_ROUNDS; r++) for (const kind of kinds) await loadOnce(context, kind, urls);
  const samples = new Map<Kind, PageTimes[]>(kinds.map((k) => [k, []]));
  const loadAverage = loadavg().map((v) => round(v, 2));
  const before = cpuWindow(pids);
  for (let r = 0; r < LOADS; r++) {
    const order = kinds.map((_, i) => kinds[(i + r) % kinds.length]!);
    for (const kind of order) {
      await sleep(LOAD_REST_MS);
      samples.get(kind)!.push(await loadOnce(context, kind, urls));
    }
    if ((r + 1) % 10 === 0 || r === LOADS - 1) {
      const last = (k: Kind): string => fmt(k === 'floor' ? samples.get(k)!.at(-1)!.load : samples.get(k)!.at(-1)!.ready, 1);
      log(`page loads: round ${r + 1}/${LOADS}: status ${last('status')} ms, settings ${last('settings')} ms, floor ${last('floor')} ms`);
    }
  }
  const cpu = cpuUse(before, cpuWindow(pids));
  const of = (kind: Kind): LoadKind => {
    const list = samples.get(kind)!;
    return {
      loads: list.length,
      readyMs: kind === 'floor' ? null : summarize(list.map((s) => s.ready!)),
      loadEventMs: summarize(list.map((s) => s.load)),
      steps: {
        scriptEndMs: summarize(list.map((s) => s.scriptEnd ?? NaN)),
        sessionEndMs: kind === 'floor' ? null : summarize(list.map((s) => s.sessionEnd ?? NaN)),
        apiStartMs: kind === 'floor' ? null : summarize(list.map((s) => s.apiStart ?? NaN)),
        apiEndMs: kind === 'floor' ? null : summarize(list.map((s) => s.apiEnd ?? NaN)),
      },
    };
  };
  return { status: of('status'), settings: of('settings'), floor: of('floor'), loadAverageAtStart: loadAverage, cpu };
}

// ---------------------------------------------------------------------------------------------
// 2. Bytes on the wire

interface Entry {
  url: string;
  initiatorType: string;
  transferSize: number;
  encodedBodySize: number;
  decodedBodySize: number;
  /** When the request started and its answer ended, ms from the navigation's start. */
  startTime: number;
  responseEnd: number;
}

interface LoadBytes {
  /** Requests the browser made, by method and path, in order (the WebSocket as `WS`). */
  readonly requests: string[];
  readonly entries: (Omit<Entry, 'url'> & { path: string })[];
  /** Sum of transferSize over the navigation and every resource entry: bodies as sent, and headers. */
  readonly transferBytes: number;
  /** The same for the page's own files (the document, console.js, console.css). */
  readonly pageFilesTransferBytes: number;
  /** The same for the other answers (fetch() to /session and /api/). */
  readonly apiTransferBytes: number;
  /** Sum of decodedBodySize: what the browser had to read after decompressing. */
  readonly decodedBytes: number;
}

interface ViewBytes extends LoadBytes {
  /** A second load in the same context, its cache holding what the first one got. */
  readonly repeat: LoadBytes;
}

const pathOf = (url: string): string => {
  const parsed = new URL(url);
  return `${parsed.pathname}${parsed.search}`;
};

/** One load of a view up to its ready mark: what went over the wire, from the page's own entries. */
async function loadBytes(context: BrowserContext, { consoleBase, kind }: { consoleBase: string; kind: 'status' | 'settings' }): Promise<LoadBytes> {
  const page = await context.newPage();
  try {
    const requests: string[] = [];
    page.on('request', (req) => requests.push(`${req.method()} ${pathOf(req.url())}`));
    page.on('websocket', (socket) => requests.push(`WS ${pathOf(socket.url())}`));
    await page.goto(`${consoleBase}/#${kind}`, { waitUntil: 'load', timeout: 30_000 });
    await page.waitForFunction(readyAndLoaded, undefined, { timeout: 30_000 });
    checkView(kind, await page.evaluate<PageTimes>(TIMES));
    const entries = (await page.evaluate<Entry[]>(ENTRIES)).map(({ url, ...rest }) => ({ path: pathOf(url), ...rest }));
    const sum = (list: typeof entries, field: 'transferSize' | 'decodedBodySize'): number => list.reduce((n, e) => n + e[field], 0);
    const isPageFile = (path: string): boolean => (PAGE_FILES as readonly string[]).includes(path.split('?')[0] ?? '');
    return {
      requests,
      entries,
      transferBytes: sum(entries, 'transferSize'),
      pageFilesTransferBytes: sum(
        entries.filter((e) => isPageFile(e.path)),
        'transferSize',
      ),
      apiTransferBytes: sum(
        entries.filter((e) => !isPageFile(e.path)),
        'transferSize',
      ),
      decodedBytes: sum(entries, 'decodedBodySize'),
    };
  } finally {
    await page.close();
  }
}

async function measureBytes(
  browser: Browser,
  { consoleBase, cookie }: { consoleBase: string; cookie: string },
): Promise<Record<'status' | 'settings', ViewBytes>> {
  const out: Partial<Record<'status' | 'settings', ViewBytes>> = {};
  for (const kind of ['status', 'settings'] as const) {
    // A fresh context: an empty cache, nothing from an earlier load.
    const context = await signedInContext(browser, { consoleBase, cookie });
    try {
      const first = await loadBytes(context, { consoleBase, kind });
      const repeat = await loadBytes(context, { consoleBase, kind });
      out[kind] = { ...first, repeat };
      log(
        `bytes of #${kind}: ${first.transferBytes} transferred in ${first.requests.length} requests (${first.requests.join(', ')}); again: ${repeat.transferBytes}`,
      );
    } finally {
      await context.close();
    }
  }
  return out as Record<'status' | 'settings', ViewBytes>;
}

// ---------------------------------------------------------------------------------------------
// 3. Change → shown

interface Applied {
  readonly type: string;
  /** Date.now() when the event arrived. */
  readonly at: number;
}

/** confhub's channel, straight: which sync event came for each revision, and when. */
function followSyncEvents(confhub: Confhub): Promise<{ ws: WebSocket; events: Map<string, Applied> }> {
  const events = new Map<string, Applied>();
  const ws = new WebSocket(`${confhub.base.replace(/^http/, 'ws')}/api/v1/ws`, ['confhub.v1', `key.${confhub.apiKey}`]);
  return new Promise((resolve, reject) => {
    ws.on('message', (data: Buffer) => {
      const at = Date.now();
      // Legacy messages (ConfigChanged) have no `type`.
      const message = JSON.parse(data.toString('utf8')) as { type?: string; data?: { revision?: string } };
      if (message.type === 'hello') resolve({ ws, events });
      else if (message.type?.startsWith('sync.') && message.data?.revision && !events.has(message.data.revision)) {
        events.set(message.data.revision, { type: message.type, at });
      }
    });
    ws.on('error', reject);
    ws.on('close', (code) => reject(new Error(`confhub closed the bench's WebSocket (${code}) before its hello`)));
  });
}

interface ChangeSample {
  readonly revision: string;
  /** Date.now() before the PUT was sent. */
  readonly t0: number;
  /** The PUT's answer (ms after t0). */
  readonly answeredMs: number;
  /** The ws client had `sync.applied` for the revision. */
  readonly wsMs: number;
  /** The page's Revision cell showed the revision's 7 characters. */
  readonly pageMs: number;
}

async function putPort(confhub: Confhub, port: number): Promise<string> {
  const response = await api(confhub, `/api/v1/settings/${TARGET}`, { method: 'PUT', body: JSON.stringify({ port }) });
  const body = await response.text();
  if (response.status !== 200) throw new Error(`PUT /api/v1/settings/${TARGET} answered ${response.status}: ${body.slice(0, 300)}`);
  const revision = (response.headers.get('etag') ?? '').replace(/^W\//, '').replaceAll('"', '');
  if (!/^[0-9a-f]{7,}$/.test(revision)) throw new Error(`the PUT's ETag is not a revision: ${response.headers.get('etag')}`);
  return revision;
}

async function waitUntil(what: string, check: () => boolean): Promise<void> {
  const deadline = performance.now() + 30_000;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out after 30 s waiting until ${what}`);
    await sleep(5);
  }
}

async function openStatusPage(context: BrowserContext, consoleBase: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${consoleBase}/#status`, { waitUntil: 'load', timeout: 30_000 });
  await page.waitForFunction(readyAndLoaded, undefined, { timeout: 30_000 });
  checkView('status', await page.evaluate<PageTimes>(TIMES));
  await page.locator('#live[data-state="connected"]').waitFor({ timeout: 30_000 });
  await page.evaluate<boolean>(OBSERVE_REVISIONS);
  return page;
}

async function measureChanges(context: BrowserContext, { confhub, consoleBase, pids }: { confhub: Confhub; consoleBase: string; pids: Pids }) {
  log(`changes: ${CHANGES} PUTs of ${TARGET}.port, one at a time, each until the page and the ws client both have it`);
  const page = await openStatusPage(context, consoleBase);
  const { ws, events } = await followSyncEvents(confhub);
  const loadAverage = loadavg().map((v) => round(v, 2));
  const before = cpuWindow(pids);
  const sent: { revision: string; t0: number; answered: number }[] = [];
  try {
    for (let i = 0; i < CHANGES; i++) {
      const t0 = Date.now();
      const revision = await putPort(confhub, 20_001 + i);
      const answered = Date.now();
      sent.push({ revision, t0, answered });
      const short = revision.slice(0, 7);
      await waitUntil(`confhub's channel had a sync event for ${short}`, () => events.has(revision));
      if (events.get(revision)!.type !== 'sync.applied') throw new Error(`revision ${short} was not applied: ${events.get(revision)!.type}`);
      await page.waitForFunction(shown, short, { polling: 20, timeout: 30_000 });
      await sleep(CHANGE_GAP_MS);
      if ((i + 1) % 10 === 0) log(`changes: ${i + 1}/${CHANGES}`);
    }
  } finally {
    ws.close();
  }
  const cpu = cpuUse(before, cpuWindow(pids));
  const seen = await page.evaluate<Record<string, number>>('window.__benchSeen');
  await page.close();
  const samples: ChangeSample[] = sent.map(({ revision, t0, answered }) => ({
    revision,
    t0,
    answeredMs: answered - t0,
    wsMs: events.get(revision)!.at - t0,
    pageMs: seen[revision.slice(0, 7)]! - t0,
  }));
  return {
    changes: samples.length,
    putAnsweredMs: summarize(samples.map((s) => s.answeredMs)),
    wsAppliedMs: summarize(samples.map((s) => s.wsMs)),
    pageShownMs: summarize(samples.map((s) => s.pageMs)),
    pageExtraMs: summarize(samples.map((s) => s.pageMs - s.wsMs)),
    samples,
    loadAverageAtStart: loadAverage,
    cpu,
  };
}

// ---------------------------------------------------------------------------------------------
// Report

interface Report {
  bench: 'console';
  date: string;
  machine: MachineInfo;
  chromium: string;
  settings: {
    loadsOfEach: number;
    warmupRounds: number;
    changes: number;
    confhub: string;
    console: string;
    systemIni: string;
    floor: string;
  };
  pageFiles: { files: PageFile[]; bytes: number; gzipBytes: number };
  loads: Awaited<ReturnType<typeof measureLoads>>;
  bytes: Record<'status' | 'settings', ViewBytes>;
  changes: Awaited<ReturnType<typeof measureChanges>>;
  loadAverageAtEnd: number[];
  disturbed: string[];
}

function markdown(r: Report): string {
  const { status, settings, floor } = r.loads;
  const loadRow = (label: string, k: LoadKind, ready: boolean) => [
    label,
    k.loads,
    ready ? fmt(k.readyMs?.p50, 1) : '—',
    ready ? fmt(k.readyMs?.p99, 1) : '—',
    fmt(k.loadEventMs.p50, 1),
    fmt(k.loadEventMs.p99, 1),
  ];
  const steps = (label: string, k: LoadKind): string =>
    `${label}: script in at ${fmt(k.steps.scriptEndMs.p50, 0)}, /session answered at ${fmt(k.steps.sessionEndMs?.p50, 0)}, ` +
    `API calls from ${fmt(k.steps.apiStartMs?.p50, 0)} to ${fmt(k.steps.apiEndMs?.p50, 0)}, ready at ${fmt(k.readyMs?.p50, 0)}`;
  const c = r.changes;
  const timeline = (b: LoadBytes): string => b.entries.map((e) => `${e.path} ${fmt(e.startTime, 0)}–${fmt(e.responseEnd, 0)}`).join(', ');
  const changeRow = (label: string, s: Summary) => [label, fmt(s.p50, 1), fmt(s.p99, 1), fmt(s.max, 1)];
  const kib = (bytes: number): string => fmt(bytes / 1024, 1);
  const bytesRow = (label: string, b: LoadBytes) => [
    label,
    b.requests.length,
    kib(b.transferBytes),
    kib(b.pageFilesTransferBytes),
    kib(b.apiTransferBytes),
    kib(b.decodedBytes),
  ];
  return [
    `## Console page (${r.date.slice(0, 10)}, Node ${r.machine.node}, ${r.machine.cpuCount} × ${r.machine.cpuModel}, ${r.chromium})`,
    '',
    `confhub ${r.settings.confhub}; the console ${r.settings.console}; headless Chromium through playwright-core, all on loopback. ` +
      `Load average at the start: ${r.machine.loadAverageAtStart.join(', ')}; at the end: ${r.loadAverageAtEnd.join(', ')}.`,
    '',
    `Page load → interactive, ${r.settings.loadsOfEach} loads of each after ${r.settings.warmupRounds} warm-up rounds, a new page each time in a context holding the session cookie:`,
    '',
    ...markdownTable(['load', 'loads', 'ready p50 ms', 'ready p99 ms', 'load event p50 ms', 'load event p99 ms'], 'lrrrrr', [
      loadRow('console, `/#status`', status, true),
      loadRow('console, `/#settings`', settings, true),
      loadRow('floor: the same bytes from a bare node:http server', floor, false),
    ]),
    '',
    `Where the time goes (p50 of each moment, ms from the navigation's start): ${steps('#status', status)}; ${steps('#settings', settings)}; ` +
      `the floor's script in at ${fmt(floor.steps.scriptEndMs.p50, 0)}.`,
    '',
    `Ready is the page's \`console-ready\` mark (the view has its data), from the navigation's start. Over the floor's load event (p50): ` +
      `#status +${fmt((status.readyMs?.p50 ?? NaN) - floor.loadEventMs.p50, 1)} ms, #settings +${fmt((settings.readyMs?.p50 ?? NaN) - floor.loadEventMs.p50, 1)} ms.`,
    '',
    `The page's own files: ${fmt(r.pageFiles.bytes, 0)} bytes, ${fmt(r.pageFiles.gzipBytes, 0)} gzipped (${r.pageFiles.files
      .map((f) => `${f.path} ${fmt(f.bytes, 0)} → ${fmt(f.gzipBytes, 0)}`)
      .join(', ')}). One load in a fresh context (empty cache), up to the ready mark; transferSize counts headers too:`,
    '',
    ...markdownTable(['view', 'requests', 'transferred KiB', 'of it page files', 'of it API answers', 'decoded KiB'], 'lrrrrr', [
      bytesRow('#status', r.bytes.status),
      bytesRow('#status again, same context', r.bytes.status.repeat),
      bytesRow('#settings', r.bytes.settings),
      bytesRow('#settings again, same context', r.bytes.settings.repeat),
    ]),
    '',
    `Requests of #status: ${r.bytes.status.requests.join(', ')}. Of #settings: ${r.bytes.settings.requests.join(', ')}.`,
    '',
    `When each answer of those first loads ran (ms from the navigation's start, fresh context): #status ${timeline(r.bytes.status)}; #settings ${timeline(r.bytes.settings)}.`,
    '',
    `Change → shown: ${c.changes} \`PUT /api/v1/settings/${TARGET} {"port": …}\`, one at a time, the page on #status with its live channel connected:`,
    '',
    ...markdownTable(['PUT sent →', 'p50 ms', 'p99 ms', 'max ms'], 'lrrr', [
      changeRow('PUT answered', c.putAnsweredMs),
      changeRow('floor: `sync.applied` at a ws client of confhub', c.wsAppliedMs),
      changeRow("the page's Revision cell shows it", c.pageShownMs),
      changeRow("the page's extra (paired, per change)", c.pageExtraMs),
    ]),
    '',
    ...disturbedNote(r.disturbed),
    'A p99 of fewer than 100 samples is the slowest one.',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  assertBuilt();
  if (!CHROMIUM) throw new Error('chromium is not installed (Debian: apt-get install chromium)');
  const machine = describeMachine();
  const dataDir = makeTempDir('confhub-bench-console-');
  writeSystemIni(dataDir, 'console bench: one target rendering cockpit', {
    [TARGET]: { sections: 'cockpit', format: 'ini', output: `services/${TARGET}/${TARGET}.ini`, reload: 'none', health: 'none' },
  });
  const confhub = await startConfhub(dataDir, '/readyz', 60_000, { asShipped: { logFile: join(dataDir, 'confhub.log') } });
  const servers: Server[] = [confhub];
  let browser: Browser | undefined;
  try {
    await waitInSync(confhub);
    const consoleServer = await startConsole(confhub, dataDir);
    servers.push(consoleServer);
    const { files, manifest } = await pageFiles(consoleServer.base, dataDir);
    const floor = await startFloor(manifest, files);
    servers.push(floor);
    const cookie = await signIn(consoleServer.base, confhub.apiKey);
    log(`launching ${CHROMIUM} (headless)`);
    browser = await launchChromium();
    const pids: Pids = { confhub: confhub.pid, console: consoleServer.pid, floor: floor.pid };
    const context = await signedInContext(browser, { consoleBase: consoleServer.base, cookie });
    const loads = await measureLoads(context, { urls: { console: consoleServer.base, floor: floor.base }, pids });
    const bytes = await measureBytes(browser, { consoleBase: consoleServer.base, cookie });
    const changes = await measureChanges(context, { confhub, consoleBase: consoleServer.base, pids });
    const disturbed = [
      loads.cpu && loads.cpu.otherCores > DISTURBED_OTHER_CORES ? `the page loads (${loads.cpu.otherCores} cores)` : undefined,
      changes.cpu && changes.cpu.otherCores > DISTURBED_OTHER_CORES ? `the changes (${changes.cpu.otherCores} cores)` : undefined,
    ].filter((s): s is string => s !== undefined);
    const report: Report = {
      bench: 'console',
      date: new Date().toISOString(),
      machine,
      chromium: `Chromium ${browser.version()}`,
      settings: {
        loadsOfEach: LOADS,
        warmupRounds: WARMUP_ROUNDS,
        changes: CHANGES,
        confhub: 'node dist/cli.js serve as shipped (both rate limits, the shipped log level, logs into a file)',
        console: 'node dist/console/console.js --config FILE --upstream URL, as supervisord starts it',
        systemIni: `one target ${TARGET}: section cockpit to an ini file, reload none, health none; [sync] debounce_min_ms ${SYNC.debounceMinMs}`,
        floor: 'bench/floor-console-page.ts: the console’s HTML, JS and CSS bytes and headers from a bare node:http server, nothing else',
      },
      pageFiles: { files, bytes: files.reduce((n, f) => n + f.bytes, 0), gzipBytes: files.reduce((n, f) => n + f.gzipBytes, 0) },
      loads,
      bytes,
      changes,
      loadAverageAtEnd: loadavg().map((v) => round(v, 2)),
      disturbed,
    };
    writeResults(RESULTS_PATH, report, markdown(report), [dataDir]);
    if (disturbed.length > 0) log('warning: other processes used CPU during some measurements; see the "Disturbed run" line');
  } finally {
    await browser?.close();
    for (const server of servers.reverse()) await stopServer(server);
  }
}

runBench(main);
