/**
 * Webhook delivery benchmark (npm run bench): how long a settings change takes to reach a Standard
 * Webhooks receiver on loopback, against the built server as shipped (logs, limits). Results go to
 * bench/results/webhooks.json, a Markdown summary to stdout, progress to stderr.
 *
 * - `delivered`: PUT /api/v1/settings/gitea (no wait) → the receiver has the signed
 *   `settings.changed` message; `event → delivered` is the same arrival from the event's own time.
 * - floor: the same body POSTed straight to the receiver from this process (the transport alone).
 * - API beside slow receivers: PUT latency with no webhook, and with 10 endpoints whose receiver
 *   holds every request for 5 s (until the attempt times out or it answers): delivery must not
 *   slow the API.
 *
 * Environment: BENCH_WEBHOOK_CHANGES (default 200).
 */
import { appendFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { assertBuilt, startConfhub, type Confhub } from './lib/confhub.js';
import { positiveFromEnv } from './lib/env.js';
import { describeMachine, type MachineInfo } from './lib/machine.js';
import { log, makeTempDir, runBench, sleep, stopServer } from './lib/processes.js';
import { fmt, markdownTable, RESULTS_DIR, writeResults } from './lib/report.js';
import { summarize, type Summary } from './lib/stats.js';
import { writeSystemIni } from './lib/system-ini.js';

const RESULTS_PATH = join(RESULTS_DIR, 'webhooks.json');
const CHANGES = positiveFromEnv('BENCH_WEBHOOK_CHANGES', 200, 'count');
const SLOW_ENDPOINTS = 10;
const SLOW_HOLD_MS = 5000;

interface Report {
  bench: 'webhooks';
  date: string;
  machine: MachineInfo;
  changes: number;
  putToDeliveredMs: Summary;
  eventToDeliveredMs: Summary;
  floorPostMs: Summary;
  putMs: { noWebhooks: Summary; slowReceivers: Summary };
}

function markdown(report: Report): string {
  const row = (label: string, s: Summary): (string | number)[] => [label, report.changes, fmt(s.p50), fmt(s.p99), fmt(s.max)];
  return [
    '## Event → webhook delivered (loopback)',
    '',
    ...markdownTable(['Path', 'Changes', 'p50 ms', 'p99 ms', 'max ms'], 'lrrrr', [
      row('PUT → signed message received', report.putToDeliveredMs),
      row('event logged → message received', report.eventToDeliveredMs),
      row('floor: the same POST straight to the receiver', report.floorPostMs),
      row('PUT answered, no webhook', report.putMs.noWebhooks),
      row(`PUT answered, ${SLOW_ENDPOINTS} endpoints holding each request ${SLOW_HOLD_MS / 1000} s`, report.putMs.slowReceivers),
    ]),
    '',
    `${report.machine.cpuModel} × ${report.machine.cpuCount}, Node ${report.machine.node}; confhub as shipped (logs, limits).`,
  ].join('\n');
}

interface Receiver {
  readonly url: string;
  /** Arrival time (performance.now) and body of each message, in order. */
  readonly arrivals: { at: number; body: string }[];
  close(): Promise<void>;
}

async function startReceiver({ holdMs = 0 }: { holdMs?: number } = {}): Promise<Receiver> {
  const arrivals: { at: number; body: string }[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      arrivals.push({ at: performance.now(), body: Buffer.concat(chunks).toString('utf8') });
      const answer = (): void => {
        res.statusCode = 204;
        res.end();
      };
      if (holdMs > 0) setTimeout(answer, holdMs).unref();
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    arrivals,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function api(confhub: Confhub, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${confhub.base}${path}`, { ...init, headers: { 'x-api-key': confhub.apiKey, 'content-type': 'application/json' } });
}

async function createWebhook(confhub: Confhub, url: string): Promise<void> {
  const res = await api(confhub, '/api/v1/webhooks', { method: 'POST', body: JSON.stringify({ url, events: ['settings.changed'] }) });
  if (res.status !== 201) throw new Error(`creating a webhook: ${res.status} ${await res.text()}`);
}

async function put(confhub: Confhub, value: string): Promise<number> {
  const t0 = performance.now();
  const res = await api(confhub, '/api/v1/settings/gitea', { method: 'PUT', body: JSON.stringify({ user_name: value }) });
  if (res.status !== 200) throw new Error(`PUT: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
  return performance.now() - t0;
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function main(): Promise<void> {
  assertBuilt();
  const machine = describeMachine();
  const dataDir = makeTempDir('confhub-bench-webhooks-');
  writeSystemIni(dataDir, 'webhooks bench', {});
  appendFileSync(join(dataDir, 'config', 'system.ini'), '\n[notify]\nallow_hosts = 127.0.0.1\n');
  const receiver = await startReceiver();
  const slow = await startReceiver({ holdMs: SLOW_HOLD_MS });
  const confhub = await startConfhub(dataDir, '/readyz', 60_000, { asShipped: { logFile: join(dataDir, 'confhub.log'), rateLimitPerMinute: 100_000 } });
  try {
    // The API alone first: the baseline the slow receivers are compared with.
    const noWebhooks: number[] = [];
    for (let i = 0; i < CHANGES; i++) noWebhooks.push(await put(confhub, `base-${i}`));
    log(`PUT, no webhook: p50 ${fmt(summarize(noWebhooks).p50)} ms`);

    await createWebhook(confhub, receiver.url);
    const delivered: number[] = [];
    const fromEvent: number[] = [];
    for (let i = 0; i < CHANGES; i++) {
      const t0 = performance.now();
      const wallAtStart = Date.now();
      await put(confhub, `user-${i}`);
      await waitFor(`message ${i + 1} arrived`, () => receiver.arrivals.length > i);
      const arrival = receiver.arrivals[i]!;
      delivered.push(arrival.at - t0);
      const eventAt = Date.parse((JSON.parse(arrival.body) as { timestamp: string }).timestamp);
      // The event's time is epoch ms: placed on this process's monotonic clock through the PUT's start.
      fromEvent.push(Math.max(0, arrival.at - (t0 + (eventAt - wallAtStart))));
      // Let the run of this change (render, commit) finish before the next one.
      await sleep(20);
    }
    log(`PUT → delivered: p50 ${fmt(summarize(delivered).p50)} ms, p99 ${fmt(summarize(delivered).p99)} ms`);

    const floor: number[] = [];
    const body = receiver.arrivals[0]!.body;
    for (let i = 0; i < CHANGES; i++) {
      const before = receiver.arrivals.length;
      const t0 = performance.now();
      await fetch(receiver.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      floor.push(receiver.arrivals[before]!.at - t0);
    }

    for (let i = 0; i < SLOW_ENDPOINTS; i++) await createWebhook(confhub, slow.url);
    const slowPuts: number[] = [];
    for (let i = 0; i < CHANGES; i++) {
      slowPuts.push(await put(confhub, `slow-${i}`));
      await sleep(20);
    }
    log(`PUT beside ${SLOW_ENDPOINTS} slow endpoints: p50 ${fmt(summarize(slowPuts).p50)} ms; ${slow.arrivals.length} requests held`);

    const report: Report = {
      bench: 'webhooks',
      date: new Date().toISOString(),
      machine,
      changes: CHANGES,
      putToDeliveredMs: summarize(delivered),
      eventToDeliveredMs: summarize(fromEvent),
      floorPostMs: summarize(floor),
      putMs: { noWebhooks: summarize(noWebhooks), slowReceivers: summarize(slowPuts) },
    };
    writeResults(RESULTS_PATH, report, markdown(report), [dataDir]);
  } finally {
    await stopServer(confhub);
    await receiver.close();
    await slow.close();
  }
}

runBench(main);
