/**
 * The WebSocket channel (npm run bench, last): what 500 idle clients cost confhub, and how long an
 * event takes to reach all of them. Results go to bench/results/websocket.json, a Markdown summary
 * to stdout, progress to stderr.
 *
 * confhub runs as shipped: `node dist/cli.js serve`, the shipped config.ini, log level and both
 * rate limits (500 upgrades and the PUTs stay under the shipped 1,200 requests a minute), logs into
 * a file; system.ini declares no target, so nothing but the event log's own traffic reaches the
 * clients. The bench process holds the clients (the `ws` package), each offering `confhub.v1` and
 * `key.<key>` as a browser would.
 *
 * 1. confhub alone: RSS and CPU over IDLE_S seconds with no client.
 * 2. CLIENTS clients connect (in batches) and each gets its hello; then RSS and CPU over IDLE_S
 *    seconds with every client idle (heartbeats every 5 s, pings every 15 s), per thread, from the
 *    scheduler's accounting.
 * 3. EVENTS changes, one at a time: `PUT /api/v1/settings/nginx_proxy_manager {"nike_name": …}`,
 *    the next once every client has the previous one's settings.changed and GAP_MS have passed
 *    (the sync worker's run events go out in between, as in use). Per event: from the event's
 *    time (`at`, stamped by confhub when it published it) and from the PUT being sent, until the
 *    first and the last client had it; the spread between them is the fan-out.
 * 4. confhub stops (SIGTERM): every client must be closed with 1001.
 *
 * Environment: BENCH_WS_CLIENTS (default 500), BENCH_WS_EVENTS (default 100), BENCH_WS_IDLE_S
 * (default 30). The exit code is 1 only when a run is invalid: a client refused or dropped, an
 * event missing, repeated or out of order at a client, a close other than 1001 at shutdown.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { assertBuilt, startConfhub, type Confhub } from './lib/confhub.js';
import { positiveFromEnv } from './lib/env.js';
import { describeMachine, type MachineInfo } from './lib/machine.js';
import { log, makeTempDir, runBench, sleep, stopServer } from './lib/processes.js';
import { disturbedNote, fmt, fmtMiB, markdownTable, RESULTS_DIR, writeResults } from './lib/report.js';
import { cpuShares, isDisturbed, processStatus, sampleCpu, threadCpuNs, type CpuShares, type ProcessStatus } from './lib/resource-usage.js';
import { round, summarize, type Summary } from './lib/stats.js';
import { writeSystemIni } from './lib/system-ini.js';

// ---------------------------------------------------------------------------------------------
// Settings

const RESULTS_PATH = join(RESULTS_DIR, 'websocket.json');
const CLIENTS = positiveFromEnv('BENCH_WS_CLIENTS', 500, 'count');
const EVENTS = positiveFromEnv('BENCH_WS_EVENTS', 100, 'count');
const IDLE_S = positiveFromEnv('BENCH_WS_IDLE_S', 30, 'seconds');
const CONNECT_BATCH = 50;
const GAP_MS = 100;
/** After the start (the worker's first run) and after the clients connected, before measuring. */
const SETTLE_MS = 10_000;
const SECTION = 'nginx_proxy_manager';
const KEY = 'nike_name';

// ---------------------------------------------------------------------------------------------
// Clients

interface Client {
  readonly ws: WebSocket;
  /** settings.changed revs, in the order they came. */
  readonly revs: number[];
  closeCode: number | undefined;
}

/** When each settings.changed event reached the first and the last client (performance.now()). */
interface Arrival {
  at: number;
  first: number;
  last: number;
  count: number;
}

function openClients(confhub: Confhub, arrivals: Map<number, Arrival>): Promise<Client[]> {
  const url = `${confhub.base.replace(/^http/, 'ws')}/api/v1/ws`;
  const clients: Client[] = [];
  const connectOne = (): Promise<Client> =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url, ['confhub.v1', `key.${confhub.apiKey}`]);
      const client: Client = { ws, revs: [], closeCode: undefined };
      ws.on('message', (data: Buffer) => {
        const now = performance.now();
        const text = data.toString('utf8');
        if (text.startsWith('{"type":"hello"')) {
          resolve(client);
          return;
        }
        if (!text.startsWith('{"type":"settings.changed"')) return;
        const event = JSON.parse(text) as { rev: number; at: string };
        client.revs.push(event.rev);
        const arrival = arrivals.get(event.rev);
        if (arrival === undefined) arrivals.set(event.rev, { at: Date.parse(event.at), first: now, last: now, count: 1 });
        else {
          arrival.last = now;
          arrival.count += 1;
        }
      });
      ws.on('close', (code) => {
        client.closeCode = code;
        reject(new Error(`a client was closed before its hello (${code})`));
      });
      ws.on('error', (error) => reject(error));
    });
  return (async () => {
    for (let opened = 0; opened < CLIENTS; opened += CONNECT_BATCH) {
      clients.push(...(await Promise.all(Array.from({ length: Math.min(CONNECT_BATCH, CLIENTS - opened) }, connectOne))));
    }
    return clients;
  })();
}

// ---------------------------------------------------------------------------------------------
// Measuring

interface IdleResult {
  seconds: number;
  /** % of one core, all of confhub's threads; per thread (main, others) summed over the window. */
  cpuPercent: number;
  mainThreadPercent: number;
  rss: ProcessStatus;
  machine: CpuShares<'confhub' | 'bench'> | null;
}

async function idle(confhub: Confhub, label: string): Promise<IdleResult> {
  log(`${label}: ${IDLE_S} s idle`);
  const before = threadCpuNs(confhub.pid);
  const machineBefore = sampleCpu({ confhub: confhub.pid, bench: 'self' });
  const t0 = performance.now();
  await sleep(IDLE_S * 1000);
  const seconds = (performance.now() - t0) / 1000;
  const after = threadCpuNs(confhub.pid);
  let totalMs = 0;
  for (const [tid, ns] of after) totalMs += (ns - (before.get(tid) ?? 0)) / 1e6;
  const mainMs = ((after.get(confhub.pid) ?? 0) - (before.get(confhub.pid) ?? 0)) / 1e6;
  const result = {
    seconds: round(seconds, 2),
    cpuPercent: round(totalMs / (seconds * 10), 3),
    mainThreadPercent: round(mainMs / (seconds * 10), 3),
    rss: processStatus(confhub.pid),
    machine: cpuShares(machineBefore, sampleCpu({ confhub: confhub.pid, bench: 'self' })),
  };
  log(`${label}: ${result.cpuPercent} % of a core (main thread ${result.mainThreadPercent} %), RSS ${fmtMiB(result.rss.rssKiB)} MiB`);
  return result;
}

async function put(confhub: Confhub, value: string): Promise<void> {
  const response = await fetch(`${confhub.base}/api/v1/settings/${SECTION}`, {
    method: 'PUT',
    headers: { 'x-api-key': confhub.apiKey, 'content-type': 'application/json' },
    body: JSON.stringify({ [KEY]: value }),
  });
  const body = await response.text();
  if (response.status !== 200) throw new Error(`PUT answered ${response.status}: ${body.slice(0, 300)}`);
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(1);
  }
}

interface FanOutResult {
  events: number;
  /** confhub's event time → the first / the last client had it (ms; `at` is whole milliseconds). */
  publishToFirstMs: Summary;
  publishToAllMs: Summary;
  /** The PUT sent → the last client had its event. */
  putToAllMs: Summary;
  /** The first client → the last client. */
  spreadMs: Summary;
  machine: CpuShares<'confhub' | 'bench'> | null;
}

async function fanOut(confhub: Confhub, clients: Client[], arrivals: Map<number, Arrival>, tag: string): Promise<FanOutResult> {
  log(`events: ${EVENTS} changes, each to ${clients.length} clients`);
  const publishToFirst: number[] = [];
  const publishToAll: number[] = [];
  const putToAll: number[] = [];
  const spread: number[] = [];
  const machineBefore = sampleCpu({ confhub: confhub.pid, bench: 'self' });
  // performance.now() against the epoch, for confhub's `at`.
  const epochOf = (now: number): number => performance.timeOrigin + now;
  for (let i = 0; i < EVENTS; i++) {
    const known = new Set(arrivals.keys());
    const sent = performance.now();
    await put(confhub, `${tag}-${i}`);
    await waitFor(`event ${i + 1} reached every client`, () => [...arrivals].some(([rev, a]) => !known.has(rev) && a.count === clients.length));
    const [, arrival] = [...arrivals].find(([rev, a]) => !known.has(rev) && a.count === clients.length)!;
    publishToFirst.push(epochOf(arrival.first) - arrival.at);
    publishToAll.push(epochOf(arrival.last) - arrival.at);
    putToAll.push(arrival.last - sent);
    spread.push(arrival.last - arrival.first);
    await sleep(GAP_MS);
  }
  const result = {
    events: EVENTS,
    publishToFirstMs: summarize(publishToFirst),
    publishToAllMs: summarize(publishToAll),
    putToAllMs: summarize(putToAll),
    spreadMs: summarize(spread),
    machine: cpuShares(machineBefore, sampleCpu({ confhub: confhub.pid, bench: 'self' })),
  };
  log(`events: publish → all ${clients.length} p50 ${fmt(result.publishToAllMs.p50, 2)} ms, p99 ${fmt(result.publishToAllMs.p99, 2)} ms`);
  return result;
}

/** Every client got every settings.changed event once, in order, and is still open. */
function checkDelivery(clients: Client[]): void {
  const reference = clients[0]!.revs;
  if (reference.length !== EVENTS) throw new Error(`the first client got ${reference.length} settings.changed events, not ${EVENTS}`);
  for (const [index, client] of clients.entries()) {
    if (client.closeCode !== undefined) throw new Error(`client ${index} was closed (${client.closeCode}) during the run`);
    if (client.revs.length !== reference.length || client.revs.some((rev, i) => rev !== reference[i])) {
      throw new Error(`client ${index} got other events than the first client (missing, repeated or out of order)`);
    }
  }
}

async function measure(runTag: string) {
  const dataDir = makeTempDir('confhub-ws-bench-');
  writeSystemIni(dataDir, 'confhub WebSocket bench (bench/websocket.ts): no targets', {});
  const confhub = await startConfhub(dataDir, '/readyz', 60_000, { asShipped: { logFile: join(dataDir, 'confhub.log') } });
  try {
    await sleep(SETTLE_MS);
    const rssAtReady = processStatus(confhub.pid);
    const alone = await idle(confhub, 'no client');
    const arrivals = new Map<number, Arrival>();
    log(`connecting ${CLIENTS} clients`);
    const connectStarted = performance.now();
    const clients = await openClients(confhub, arrivals);
    const connectSeconds = round((performance.now() - connectStarted) / 1000, 2);
    for (const client of clients) {
      client.ws.removeAllListeners('close');
      client.ws.on('close', (code) => {
        client.closeCode = code;
      });
    }
    const metrics = await (await fetch(`${confhub.base}/metrics`)).text();
    const gauge = Number(/^confhub_ws_clients (\d+)$/m.exec(metrics)?.[1]);
    if (gauge !== CLIENTS) throw new Error(`confhub_ws_clients is ${gauge}, not ${CLIENTS}`);
    await sleep(SETTLE_MS);
    const rssConnected = processStatus(confhub.pid);
    const withClients = await idle(confhub, `${CLIENTS} idle clients`);
    const events = await fanOut(confhub, clients, arrivals, runTag);
    const rssAfterEvents = processStatus(confhub.pid);
    checkDelivery(clients);
    log('stopping confhub (SIGTERM)');
    const stopStarted = performance.now();
    await stopServer(confhub);
    const stopSeconds = round((performance.now() - stopStarted) / 1000, 2);
    await sleep(200);
    const codes = clients.map((c) => c.closeCode);
    const goingAway = codes.filter((code) => code === 1001).length;
    if (goingAway !== CLIENTS) throw new Error(`${CLIENTS - goingAway} clients were not closed with 1001 at shutdown (${[...new Set(codes)].join(', ')})`);
    return { rssAtReady, alone, connectSeconds, rssConnected, withClients, events, rssAfterEvents, stopSeconds, closedWith1001: goingAway };
  } finally {
    await stopServer(confhub);
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function buildReport(machine: MachineInfo, run: Awaited<ReturnType<typeof measure>>) {
  // Both after an idle window, once each thread ran its idle collection (src/idle-gc.ts).
  const idleWith = run.withClients.rss.rssKiB;
  const idleWithout = run.alone.rss.rssKiB;
  const perClientKiB = idleWith !== null && idleWithout !== null ? round((idleWith - idleWithout) / CLIENTS, 1) : null;
  const disturbed = [
    isDisturbed(run.alone.machine) ? `the idle window without clients (${run.alone.machine!.otherCores} cores)` : undefined,
    isDisturbed(run.withClients.machine) ? `the idle window with clients (${run.withClients.machine!.otherCores} cores)` : undefined,
    isDisturbed(run.events.machine) ? `the events (${run.events.machine!.otherCores} cores)` : undefined,
  ].filter((s): s is string => s !== undefined);
  return {
    date: new Date().toISOString(),
    machine,
    settings: {
      clients: CLIENTS,
      events: EVENTS,
      idleSeconds: IDLE_S,
      gapMs: GAP_MS,
      request: `PUT /api/v1/settings/${SECTION} {"${KEY}": …}, one at a time, the next once every client had the previous event`,
      confhub: 'node dist/cli.js serve as shipped (shipped config.ini, log level, both rate limits; logs into a file), system.ini without targets',
      clientLibrary: 'ws, in the bench process, subprotocols confhub.v1 and key.<key>',
    },
    rssKiB: {
      atReady: run.rssAtReady.rssKiB,
      afterIdleWithoutClients: idleWithout,
      clientsConnected: run.rssConnected.rssKiB,
      afterIdleWithClients: idleWith,
      afterEvents: run.rssAfterEvents.rssKiB,
      perClient: perClientKiB,
    },
    idle: { withoutClients: run.alone, withClients: run.withClients },
    connectSeconds: run.connectSeconds,
    events: run.events,
    shutdown: { seconds: run.stopSeconds, closedWith1001: run.closedWith1001 },
    disturbed,
  };
}

type Report = ReturnType<typeof buildReport>;

function markdown(r: Report): string {
  const e = r.events;
  return [
    `### WebSocket channel (${r.date.slice(0, 10)}, Node ${r.machine.node}, ${r.machine.cpuCount} × ${r.machine.cpuModel})`,
    '',
    `${r.settings.clients} clients (${r.settings.clientLibrary}) on ${r.settings.confhub}.`,
    '',
    ...markdownTable(['', 'RSS MiB', 'CPU % of a core (main thread)'], 'lrr', [
      [
        'no client, idle',
        fmtMiB(r.rssKiB.afterIdleWithoutClients),
        `${fmt(r.idle.withoutClients.cpuPercent, 2)} (${fmt(r.idle.withoutClients.mainThreadPercent, 2)})`,
      ],
      [
        `${r.settings.clients} idle clients`,
        fmtMiB(r.rssKiB.afterIdleWithClients),
        `${fmt(r.idle.withClients.cpuPercent, 2)} (${fmt(r.idle.withClients.mainThreadPercent, 2)})`,
      ],
      [`after ${e.events} events`, fmtMiB(r.rssKiB.afterEvents), ''],
    ]),
    '',
    `RSS at the end of each idle window of ${r.settings.idleSeconds} s: about ${fmt(r.rssKiB.perClient, 1)} KiB per client. ${r.settings.clients} clients connected in ${fmt(r.connectSeconds, 2)} s.`,
    '',
    ...markdownTable(['event → clients', 'events', 'p50 ms', 'p99 ms', 'max ms'], 'lrrrr', [
      [`published → first client`, e.events, fmt(e.publishToFirstMs.p50, 2), fmt(e.publishToFirstMs.p99, 2), fmt(e.publishToFirstMs.max, 2)],
      [`published → all ${r.settings.clients} clients`, e.events, fmt(e.publishToAllMs.p50, 2), fmt(e.publishToAllMs.p99, 2), fmt(e.publishToAllMs.max, 2)],
      [`PUT sent → all ${r.settings.clients} clients`, e.events, fmt(e.putToAllMs.p50, 2), fmt(e.putToAllMs.p99, 2), fmt(e.putToAllMs.max, 2)],
      ['first → last client', e.events, fmt(e.spreadMs.p50, 2), fmt(e.spreadMs.p99, 2), fmt(e.spreadMs.max, 2)],
    ]),
    '',
    `Shutdown: every client closed with 1001 (${r.shutdown.closedWith1001}); SIGTERM → exit ${fmt(r.shutdown.seconds, 2)} s.`,
    '',
    ...disturbedNote(r.disturbed),
    "Times are taken in the bench process, which also parses every client's messages; `published` is the event's `at`, in whole milliseconds.",
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
