import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { createEventLog } from '../../src/events/event-log.js';
import { DEFAULT_STALL_MS, streamEvents } from '../../src/events/sse.js';
import { loadRuntimeConfig } from '../../src/runtime-config.js';
import { startServer } from '../../src/server.js';
import { readApiKey } from '../../src/settings/read-api-key.js';
import { createHarness, type Harness } from '../support/harness.js';
import { createManualClock } from '../support/manual-clock.js';
import { connectSse, type SseClient } from '../support/sse-client.js';
import { tempDirs } from '../support/temp-dirs.js';
import { eventually } from '../support/wait.js';

const newDir = tempDirs('confhub-sse-');
const silent = pino({ level: 'silent' });
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

async function put(url: string, apiKey: string, section: string, body: Record<string, string>): Promise<Response> {
  return fetch(`${url}/api/v1/settings/${section}`, {
    method: 'PUT',
    headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** Listens on loopback; the server and its sockets are closed after the test. */
async function serve(handler: RequestListener): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  server.on('connection', (socket) => cleanups.push(() => socket.destroy()));
  return { server, url: await listen(server) };
}

/** An API-only confhub (the test harness) behind a listening server. */
async function servedHarness(): Promise<{ h: Harness; url: string }> {
  const h = await createHarness();
  cleanups.push(() => h.close());
  const { url } = await serve(h.app);
  return { h, url };
}

const changed = (frame: { data: string }) => JSON.parse(frame.data) as { keys: string[]; actor: { type: string }; source: string };

describe('the event stream', () => {
  it('when an accepted PUT changes keys, then one settings.changed event names them and its actor, never their values; refused or no-op writes publish nothing', async () => {
    const { h, url } = await servedHarness();
    // The webhook outbox follows the log too.
    const others = h.events.subscribers();
    const client = await connectSse(`${url}/api/v1/settings/events`, { 'x-api-key': h.apiKey });
    cleanups.push(() => client.close());

    const password = 'Wz8#long-enough-passphrase-17';
    expect((await put(url, h.apiKey, 'gitea', { user_name: 'alice', user_pwd: password })).status).toBe(200);
    const first = await client.next((f) => f.event === 'settings.changed');
    expect(changed(first)).toMatchObject({ keys: ['gitea.user_name', 'gitea.user_pwd'], actor: { type: 'api' }, source: 'api' });
    expect(first.data).not.toContain(password);
    expect(first.data).not.toContain('alice');

    expect((await put(url, h.apiKey, 'gitea', { user_name: 'alice' })).status).toBe(200);
    expect((await put(url, h.apiKey, 'cockpit', { port: 'not a port' })).status).toBe(400);
    expect((await put(url, h.apiKey, 'portainer', { user_name: 'carol' })).status).toBe(200);
    await client.next((f) => f.event === 'settings.changed' && changed(f).keys.includes('portainer.user_name'));
    expect(client.frames.filter((f) => f.event === 'settings.changed').map((f) => changed(f).keys)).toEqual([
      ['gitea.user_name', 'gitea.user_pwd'],
      ['portainer.user_name'],
    ]);
    expect(client.frames.map((f) => f.id)).toEqual([...client.frames.map((f) => f.id)].sort((a, b) => a! - b!));
    expect(h.events.subscribers()).toBe(others + 1);
    client.close();
    await eventually('the closed stream is unsubscribed', () => h.events.subscribers() === others);
  });

  it('when environment variables are written, then env.changed names them with their case and scopes, never values, and no settings.changed is published', async () => {
    const { h, url } = await servedHarness();
    const seen: { type: string; data: unknown }[] = [];
    h.events.subscribe((event) => seen.push({ type: event.type, data: event.data }));
    const token = 'tok-Zq81-not-in-any-event';
    const patch = await fetch(`${url}/api/v1/env/global`, {
      method: 'PATCH',
      headers: { 'x-api-key': h.apiKey, 'content-type': 'application/json' },
      body: JSON.stringify({ Db_Url: 'postgres://db', API_TOKEN: token }),
    });
    expect(patch.status).toBe(200);
    expect(seen).toEqual([
      {
        type: 'env.changed',
        data: expect.objectContaining({
          variables: expect.arrayContaining(['global.Db_Url', 'global.API_TOKEN']),
          scopes: ['global'],
          actor: expect.objectContaining({ type: 'api' }),
        }),
      },
    ]);
    expect((seen[0]!.data as { variables: string[] }).variables).toHaveLength(2);
    expect(JSON.stringify(seen)).not.toContain(token);
    expect((await put(url, h.apiKey, 'gitea', { user_name: 'dora' })).status).toBe(200);
    expect(seen.map((e) => e.type)).toEqual(['env.changed', 'settings.changed']);
  });

  it('when values typed in plain text are sealed, then the settings store announces nothing itself (the worker announces the hand edit)', async () => {
    const h: Harness = await createHarness();
    cleanups.push(() => h.close());
    const seen: string[] = [];
    h.events.subscribe((event) => seen.push(JSON.stringify(event)));
    const typed = 'Typed-by-hand-passphrase-42';
    h.writeConfig(h.readConfig().replace(/^(\[gitea\][^[]*?user_pwd = ).*$/m, `$1${typed}`));
    await h.settings.seal({ actor: { type: 'file', id: 'file' } });
    // A seal is of a hand edit: the sync worker announces the edit with every key it changed, once.
    expect(seen).toEqual([]);
  });

  it('when a client reconnects before it saw any event, then the id it got on connecting resumes it: nothing in between is missed', async () => {
    const { h, url } = await servedHarness();
    const first = await connectSse(`${url}/api/v1/settings/events`, { 'x-api-key': h.apiKey });
    await eventually('the connecting id arrived', () => first.lastEventId() !== undefined);
    expect(first.lastEventId()).toBe(h.events.lastId());
    first.close();
    expect((await put(url, h.apiKey, 'gitea', { user_name: 'while-away' })).status).toBe(200);
    const again = await connectSse(`${url}/api/v1/settings/events`, { 'x-api-key': h.apiKey, 'last-event-id': String(first.lastEventId()) });
    cleanups.push(() => again.close());
    const missed = await again.next((f) => f.event === 'settings.changed');
    expect(changed(missed).keys).toEqual(['gitea.user_name']);
  });

  it('when a first connection resumes with ?since= (EventSource cannot set Last-Event-ID), then every later event comes once, in order, and the stream goes on; Last-Event-ID wins over it', async () => {
    const { h, url } = await servedHarness();
    const change = (n: number) => ({ revision: `r${n}`, actor: { type: 'api' as const, id: 'key:1' }, source: 'api' as const, keys: [`a.k${n}`] });
    for (let n = 1; n <= 5; n++) h.events.publish('settings.changed', change(n));
    const seen = h.events.lastId() - 3;
    const resumed = await connectSse(`${url}/api/v1/settings/events?since=${seen}`, { 'x-api-key': h.apiKey });
    cleanups.push(() => resumed.close());
    await resumed.next((f) => f.id === seen + 3);
    h.events.publish('settings.changed', change(6));
    await resumed.next((f) => f.id === seen + 4);
    expect(resumed.frames.map((f) => f.id)).toEqual([seen + 1, seen + 2, seen + 3, seen + 4]);
    expect(resumed.frames.map((f) => changed(f).keys[0])).toEqual(['a.k3', 'a.k4', 'a.k5', 'a.k6']);

    // A reconnect of the same EventSource sends the id it had seen, and keeps the URL: the header counts.
    const reconnected = await connectSse(`${url}/api/v1/settings/events?since=${seen}`, { 'x-api-key': h.apiKey, 'last-event-id': String(seen + 3) });
    cleanups.push(() => reconnected.close());
    await reconnected.next((f) => f.id === seen + 4);
    expect(reconnected.frames.map((f) => f.id)).toEqual([seen + 4]);
  });

  it('when ?since= is not an event id, then the stream is refused with 400 INVALID_REQUEST naming since', async () => {
    const { h, url } = await servedHarness();
    for (const query of ['since=abc', 'since=-1', 'since=1.5', 'since=', 'since=1234567890123456', 'since=1&since=2']) {
      const res = await fetch(`${url}/api/v1/settings/events?${query}`, { headers: { 'x-api-key': h.apiKey, accept: 'text/event-stream' } });
      expect(res.status, query).toBe(400);
      expect(res.headers.get('content-type'), query).toMatch(/^application\/json/);
      const body = (await res.json()) as { code: string; details: string };
      expect(body.code, query).toBe('INVALID_REQUEST');
      expect(body.details, query).toMatch(/since/);
    }
  });

  it('when confhub restarts, then a client resuming with the Last-Event-ID it had before gets every event it missed, and ids keep growing', async () => {
    const dir = newDir();
    const dataDir = join(dir, 'data');
    mkdirSync(join(dataDir, 'config'), { recursive: true });
    writeFileSync(join(dataDir, 'config', 'system.ini'), `[sync]\ndocker_socket = ${dir}/docker.sock\nsupervisor_url = unix://${dir}/supervisor.sock\n`);
    const config = loadRuntimeConfig({ CONFHUB_DATA_DIR: dataDir, CONFHUB_PORT: '0', CONFHUB_RATE_LIMIT: '0', CONFHUB_LOG_LEVEL: 'silent' }, dir);
    let server = await startServer(config, silent);
    cleanups.push(() => server.close());
    const apiKey = (await readApiKey(config))!;
    const before = await connectSse(`${server.url}/api/v1/settings/events`, { 'x-api-key': apiKey });
    expect((await put(server.url, apiKey, 'gitea', { user_name: 'alice' })).status).toBe(200);
    const lastSeen = await before.next((f) => f.event === 'settings.changed');
    before.close();
    await server.close();

    server = await startServer(config, silent);
    expect((await put(server.url, apiKey, 'gitea', { user_name: 'bob' })).status).toBe(200);
    expect((await put(server.url, apiKey, 'portainer', { user_name: 'carol' })).status).toBe(200);
    let resumed: SseClient | undefined;
    resumed = await connectSse(`${server.url}/api/v1/settings/events`, { 'x-api-key': apiKey, 'last-event-id': String(lastSeen.id) });
    cleanups.push(() => resumed?.close());
    await resumed.next((f) => f.event === 'settings.changed' && changed(f).keys.includes('portainer.user_name'));
    expect(resumed.frames.filter((f) => f.event === 'settings.changed').map((f) => changed(f).keys)).toEqual([['gitea.user_name'], ['portainer.user_name']]);
    const ids = resumed.frames.map((f) => f.id!);
    expect(ids[0]).toBeGreaterThan(lastSeen.id!);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    // What happened while it was away, the worker of the new process included, in log order.
    expect(resumed.frames.some((f) => f.event === 'worker.state')).toBe(true);
  });

  it('when a client stops reading, then nothing more is buffered for it past the limit, it is dropped once stalled, and a resume by id gets every event', async () => {
    const db = openDatabase({ path: ':memory:' });
    cleanups.push(() => db.close());
    const log = createEventLog({ db, logger: silent });
    const clock = createManualClock();
    const maxBufferedBytes = 64 * 1024;
    const responses: ServerResponse[] = [];
    const { server, url } = await serve((req, res) => {
      responses.push(res);
      streamEvents({ log, req, res, clock, maxBufferedBytes });
    });

    // A client that sends its request and never reads a byte.
    const stalled = connect((server.address() as AddressInfo).port, '127.0.0.1');
    stalled.pause();
    cleanups.push(() => stalled.destroy());
    stalled.write('GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    await eventually('the stalled client is subscribed', () => log.subscribers() === 1);

    const keys = Array.from({ length: 400 }, (_, i) => `section_${i}.key_with_a_long_name_${i}`);
    const frameBytes = JSON.stringify(keys).length + 200;
    let maxBuffered = 0;
    const total = 3000; // ~ 12 MB: well past what the loopback socket buffers hold
    for (let n = 1; n <= total; n++) {
      log.publish('settings.changed', { revision: `r${n}`, actor: { type: 'api', id: 'key:1' }, source: 'api', keys });
      maxBuffered = Math.max(maxBuffered, responses[0]!.writableLength);
      if (n % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    expect(maxBuffered).toBeGreaterThan(maxBufferedBytes / 2);
    expect(maxBuffered).toBeLessThanOrEqual(maxBufferedBytes + frameBytes);

    // Stalled past stallMs (30 s): dropped, unsubscribed.
    await clock.advance(DEFAULT_STALL_MS);
    await eventually('the stalled client is dropped', () => responses[0]!.destroyed && log.subscribers() === 0);

    // A client that reads, resuming from the start: every event, in order, through the same limit.
    const resumed = await connectSse(`${url}/events`, { 'last-event-id': '0' });
    cleanups.push(() => resumed.close());
    await resumed.next((f) => f.id === total, 60_000);
    expect(resumed.frames.map((f) => f.id)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  });

  it('when a client resumes from an id the log no longer holds, then it is told to reset first and follows from the newest', async () => {
    const db = openDatabase({ path: ':memory:' });
    cleanups.push(() => db.close());
    const log = createEventLog({ db, logger: silent, retain: 10 });
    const change = (n: number) => ({ revision: `r${n}`, actor: { type: 'api' as const, id: 'key:1' }, source: 'api' as const, keys: [`a.k${n}`] });
    for (let n = 1; n <= 300; n++) log.publish('settings.changed', change(n));
    const { url } = await serve((req, res) => streamEvents({ log, req, res, clock: createManualClock() }));
    const client = await connectSse(`${url}/events`, { 'last-event-id': '5' });
    cleanups.push(() => client.close());
    const reset = await client.next((f) => f.event === 'reset');
    expect(JSON.parse(reset.data)).toEqual({ lastId: 300 });
    // The reset carries the id to resume from, so a reconnect does not reset again.
    expect(reset.id).toBe(300);
    log.publish('settings.changed', change(301));
    await client.next((f) => f.id === 301);
    expect(client.frames.map((f) => f.event)).toEqual(['reset', 'settings.changed']);
  });

  it('when the API key is rotated, then a stream opened with the old key ends at its next heartbeat (the client reconnects and meets the key check)', async () => {
    const db = openDatabase({ path: ':memory:' });
    cleanups.push(() => db.close());
    const log = createEventLog({ db, logger: silent });
    const clock = createManualClock();
    let valid = true;
    const { url } = await serve((req, res) => streamEvents({ log, req, res, clock, heartbeatMs: 1000, stillAuthorized: () => valid }));
    const client = await connectSse(`${url}/events`, {});
    cleanups.push(() => client.close());
    await clock.advance(1000);
    log.publish('worker.state', { state: 'ready', restarts: 0 });
    await client.next((f) => f.event === 'worker.state');
    valid = false;
    await clock.advance(1000);
    await client.ended;
    await eventually('the stream is unsubscribed', () => log.subscribers() === 0);
  });
});
