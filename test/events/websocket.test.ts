import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { openDatabase } from '../../src/db/database.js';
import { createEventLog, type EventLog } from '../../src/events/event-log.js';
import type { EventType } from '../../src/events/event-types.js';
import { createWebSocketChannel, DEFAULT_STALL_MS, type WebSocketChannel, type WebSocketChannelOptions } from '../../src/events/websocket.js';
import { createOriginCheck, parseAllowedOrigins } from '../../src/events/websocket-origins.js';
import { parseIni } from '../../src/ini/document.js';
import { createLogger } from '../../src/log.js';
import { loadRuntimeConfig, type RuntimeConfig } from '../../src/runtime-config.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { readApiKey } from '../../src/settings/read-api-key.js';
import { createManualClock } from '../support/manual-clock.js';
import { freePort } from '../support/ports.js';
import { connectSse } from '../support/sse-client.js';
import { tempDirs } from '../support/temp-dirs.js';
import { eventually } from '../support/wait.js';
import { connectWs, type ConnectWsOptions, type WsClient, type WsMessage } from '../support/ws-client.js';

const newDir = tempDirs('confhub-ws-');
const silent = pino({ level: 'silent' });
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const PROTOCOL = 'confhub.v1';
const events = (client: WsClient): WsMessage[] =>
  client.messages.filter((m) => typeof m.rev === 'number' && !['hello', 'heartbeat', 'reset'].includes(m.type!));

function ws(url: string, options: ConnectWsOptions = {}): WsClient {
  const client = connectWs(url, options);
  cleanups.push(() => client.close());
  return client;
}

interface Served {
  server: RunningServer;
  config: RuntimeConfig;
  apiKey: string;
  /** ws://host:port */
  wsUrl: string;
  logs: () => string;
}

/** confhub as it runs (server.ts: the worker, the upgrade listener, the shutdown) on a temp data dir, its logs kept. */
async function serve({ systemIni = '', env = {} }: { systemIni?: string; env?: Record<string, string> } = {}): Promise<Served> {
  const dir = newDir();
  const dataDir = join(dir, 'data');
  mkdirSync(join(dataDir, 'config'), { recursive: true });
  writeFileSync(
    join(dataDir, 'config', 'system.ini'),
    `[sync]\ndocker_socket = ${dir}/docker.sock\nsupervisor_url = unix://${dir}/supervisor.sock\n\n${systemIni}`,
  );
  const config = loadRuntimeConfig({ CONFHUB_DATA_DIR: dataDir, CONFHUB_PORT: '0', CONFHUB_RATE_LIMIT: '0', CONFHUB_LOG_LEVEL: 'silent', ...env }, dir);
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  const server = await startServer(config, createLogger({ level: 'debug', destination }));
  cleanups.push(() => server.close());
  return { server, config, apiKey: (await readApiKey(config))!, wsUrl: server.url.replace(/^http/, 'ws'), logs: () => chunks.join('') };
}

async function put(url: string, apiKey: string, section: string, body: Record<string, string>): Promise<Response> {
  return fetch(`${url}/api/v1/settings/${section}`, {
    method: 'PUT',
    headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/** The channel alone behind a node:http server, on a real event log in SQLite. */
async function channelServer(options: Partial<WebSocketChannelOptions> & { log: EventLog }): Promise<{ channel: WebSocketChannel; url: string; port: number }> {
  const channel = createWebSocketChannel({ logger: silent, authenticate: () => true, originAllowed: () => true, ...options });
  const server: Server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket, head) => channel.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  cleanups.push(() => channel.close());
  const { port } = server.address() as AddressInfo;
  return { channel, url: `ws://127.0.0.1:${port}/ws`, port };
}

function memoryLog(retain?: number): EventLog {
  const db = openDatabase({ path: ':memory:' });
  cleanups.push(() => db.close());
  return createEventLog({ db, logger: silent, ...(retain === undefined ? {} : { retain }) });
}

const change = (n: number, keys: readonly string[] = [`a.k${n}`]) => ({
  revision: `r${n}`,
  actor: { type: 'api' as const, id: 'key:1' },
  source: 'api' as const,
  keys,
});

describe('the WebSocket channel: authentication and admission', () => {
  it('when a client offers confhub.v1 and key.<key>, then the answer names confhub.v1 only and hello follows; a wrong or missing key completes the handshake and closes with 4401; the key is never logged', async () => {
    const s = await serve();
    const good = ws(`${s.wsUrl}/api/v1/ws`, { protocols: [PROTOCOL, `key.${s.apiKey}`] });
    await good.opened;
    expect(good.acceptedProtocolHeader()).toBe(PROTOCOL);
    expect(good.ws.protocol).toBe(PROTOCOL);
    const hello = await good.next((m) => m.type === 'hello');
    expect(hello).toEqual({ type: 'hello', rev: expect.any(Number), heartbeatMs: 5000 });

    // The legacy prefix, and the header non-browser clients may send instead.
    const legacy = ws(`${s.wsUrl}/api/ws`, { protocols: [PROTOCOL], headers: { 'x-api-key': s.apiKey } });
    await legacy.next((m) => m.type === 'hello');
    const metrics = await (await fetch(`${s.server.url}/metrics`)).text();
    expect(metrics).toMatch(/^confhub_ws_clients 2$/m);

    const wrongKey = 'W'.repeat(40);
    const wrong = ws(`${s.wsUrl}/api/v1/ws`, { protocols: [PROTOCOL, `key.${wrongKey}`] });
    await wrong.opened;
    expect(await wrong.closed).toEqual({ code: 4401, reason: 'unauthorized' });
    expect(wrong.messages).toEqual([]);
    const missing = ws(`${s.wsUrl}/api/v1/ws`, { protocols: [PROTOCOL] });
    expect(await missing.closed).toEqual({ code: 4401, reason: 'unauthorized' });
    expect(missing.acceptedProtocolHeader()).toBe(PROTOCOL);
    expect(missing.messages).toEqual([]);

    // The good clients stay: a write reaches them.
    expect((await put(s.server.url, s.apiKey, 'gitea', { user_name: 'alice' })).status).toBe(200);
    await good.next((m) => m.type === 'settings.changed');
    await legacy.next((m) => m.type === 'settings.changed');
    expect(s.logs()).toContain('websocket refused: missing or wrong key');
    expect(s.logs()).not.toContain(s.apiKey);
    expect(s.logs()).not.toContain(wrongKey);
  });

  it('when confhub.v1 is not offered, the path is not the channel, or the GET asks for no upgrade, then JSON errors answer: 400, 404, 426', async () => {
    const s = await serve();
    const noProtocol = ws(`${s.wsUrl}/api/v1/ws`, { protocols: [`key.${s.apiKey}`] });
    const refused = await noProtocol.refused;
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.body)).toMatchObject({ code: 'INVALID_REQUEST', details: expect.stringContaining('confhub.v1') });
    expect(refused.body).not.toContain(s.apiKey);

    const elsewhere = ws(`${s.wsUrl}/api/v1/settings`, { protocols: [PROTOCOL, `key.${s.apiKey}`] });
    const notFound = await elsewhere.refused;
    expect(notFound.status).toBe(404);
    expect(JSON.parse(notFound.body)).toMatchObject({ code: 'NOT_FOUND' });

    const plain = await fetch(`${s.server.url}/api/v1/ws`, { headers: { 'x-api-key': s.apiKey } });
    expect(plain.status).toBe(426);
    expect(plain.headers.get('upgrade')).toBe('websocket');
    expect(await plain.json()).toMatchObject({ code: 'UPGRADE_REQUIRED' });
  });

  it('when a page of another origin opens the channel, then it is refused with 403 before the upgrade unless [api] allowed_origins lists it; no Origin and its own origin pass', async () => {
    const s = await serve({ systemIni: '[api]\nallowed_origins = https://Admin.Example.com, http://localhost:3000\n' });
    const open = (origin?: string) => ws(`${s.wsUrl}/api/v1/ws`, { protocols: [PROTOCOL, `key.${s.apiKey}`], ...(origin ? { origin } : {}) });
    const evil = open('https://evil.example.com');
    const refused = await evil.refused;
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body)).toMatchObject({ code: 'ORIGIN_NOT_ALLOWED' });
    expect((await open('null').refused).status).toBe(403);
    // A listed origin on another port is another origin.
    expect((await open('http://localhost:3001').refused).status).toBe(403);

    for (const origin of [undefined, 'https://admin.example.com', 'http://localhost:3000', s.server.url]) {
      await open(origin).next((m) => m.type === 'hello');
    }
  });

  it('when [api] allowed_origins holds something that is not an origin, then confhub does not start and says which entry and why', async () => {
    await expect(serve({ systemIni: '[api]\nallowed_origins = https://admin.example.com/console\n' })).rejects.toThrow(
      'system.ini [api] allowed_origins: "https://admin.example.com/console" must be an origin only',
    );
    const parse = (value: string) => () => parseAllowedOrigins(parseIni(`[api]\nallowed_origins = ${value}\n`));
    expect(parse('https://a.example.com,  http://b.example.com:8080/')()).toEqual(['https://a.example.com', 'http://b.example.com:8080']);
    expect(parse('')()).toEqual([]);
    expect(parse('https://a.example.com/admin')).toThrow(/system\.ini \[api\] allowed_origins: "https:\/\/a\.example\.com\/admin" must be an origin only/);
    expect(parse('https://*.example.com')).toThrow(/wildcards are not supported/);
    expect(parse('ftp://a.example.com')).toThrow(/must be an http or https origin/);
    expect(parse('admin.example.com')).toThrow(/is not an origin/);
    expect(() => parseAllowedOrigins(parseIni('[api]\nallowed_origin = https://a.example.com\n'))).toThrow(/unknown key/);
    // The server's own origin passes whatever the list says; the Host header says what it is.
    const check = createOriginCheck({ allowed: [] });
    const req = (origin: string, host: string) => ({ headers: { origin, host } }) as never;
    expect(check(req('https://confhub.example.com', 'confhub.example.com'))).toBe(true);
    expect(check(req('https://confhub.example.com', 'other.example.com'))).toBe(false);
  });

  it('when WebSocket authentications fail, then they count toward the failed-authentication limit the HTTP API has, per address', async () => {
    const s = await serve({ env: { CONFHUB_AUTH_FAILURE_LIMIT: '3' } });
    for (let i = 0; i < 3; i++) {
      expect((await ws(`${s.wsUrl}/api/v1/ws`, { protocols: [PROTOCOL, `key.${'x'.repeat(40)}`] }).closed).code).toBe(4401);
    }
    const http = await fetch(`${s.server.url}/api/v1/settings`, { headers: { 'x-api-key': s.apiKey } });
    expect(http.status).toBe(429);
    const locked = await ws(`${s.wsUrl}/api/v1/ws`, { protocols: [PROTOCOL, `key.${s.apiKey}`] }).refused;
    expect(locked.status).toBe(429);
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    expect(JSON.parse(locked.body)).toMatchObject({ code: 'RATE_LIMITED' });
  });
});

describe('the WebSocket channel: messages', () => {
  it('when an accepted write changes settings, then the event comes as {type, rev, at, data} and the legacy ConfigChanged right after it, with the same rev as SSE id', async () => {
    const s = await serve();
    const client = ws(`${s.wsUrl}/api/v1/ws`, { protocols: [PROTOCOL, `key.${s.apiKey}`] });
    const hello = await client.next((m) => m.type === 'hello');
    const sse = await connectSse(`${s.server.url}/api/v1/settings/events`, { 'x-api-key': s.apiKey, 'last-event-id': String(hello.rev) });
    cleanups.push(() => sse.close());
    expect((await put(s.server.url, s.apiKey, 'gitea', { user_name: 'alice' })).status).toBe(200);
    const event = await client.next((m) => m.type === 'settings.changed');
    expect(event).toEqual({
      type: 'settings.changed',
      rev: expect.any(Number),
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      data: expect.objectContaining({ keys: ['gitea.user_name'], actor: expect.objectContaining({ type: 'api' }) }),
    });
    await client.next((m) => m.ConfigChanged !== undefined);
    const index = client.messages.indexOf(event);
    expect(client.messages[index + 1]).toEqual({ ConfigChanged: { tenant_id: 'default', change_type: 'settings' } });
    const frame = await sse.next((f) => f.event === 'settings.changed');
    expect(frame.id).toBe(event.rev);
  });

  it('when an env.changed event is published, then the legacy ConfigChanged of change_type env follows it; other events have none', async () => {
    const log = memoryLog();
    const { url } = await channelServer({ log, clock: createManualClock() });
    const client = ws(url, { protocols: [PROTOCOL] });
    await client.next((m) => m.type === 'hello');
    log.publish('env.changed' as EventType, { scope: 'global', names: ['TZ'] } as never);
    log.publish('worker.state', { state: 'ready', restarts: 0 });
    log.publish('settings.changed', change(3));
    await client.next((m) => m.ConfigChanged?.change_type === 'settings');
    expect(client.messages.map((m) => m.type ?? m.ConfigChanged?.change_type)).toEqual([
      'hello',
      'env.changed',
      'env',
      'worker.state',
      'settings.changed',
      'settings',
    ]);
    expect(client.messages[1]).toMatchObject({ rev: 1, data: { scope: 'global', names: ['TZ'] } });
  });

  it('when 5 s pass, then a heartbeat with the current rev comes, and every 5 s after; never sooner', async () => {
    const log = memoryLog();
    const clock = createManualClock();
    const { url } = await channelServer({ log, clock, pingMs: 3_600_000 });
    const client = ws(url, { protocols: [PROTOCOL] });
    await client.next((m) => m.type === 'hello');
    const beats = () => client.messages.filter((m) => m.type === 'heartbeat');

    await clock.advance(4999);
    // Messages arrive in order: had a heartbeat been sent, it would be here before this event.
    log.publish('settings.changed', change(1));
    await client.next((m) => m.rev === 1);
    expect(beats()).toEqual([]);
    await clock.advance(1);
    expect(await client.next((m) => m.type === 'heartbeat')).toEqual({ type: 'heartbeat', rev: 1 });

    log.publish('settings.changed', change(2));
    await clock.advance(4999);
    log.publish('settings.changed', change(3));
    await client.next((m) => m.rev === 3 && m.type === 'settings.changed');
    expect(beats()).toHaveLength(1);
    await clock.advance(1);
    await eventually('the second heartbeat', () => beats().length === 2);
    expect(beats()[1]).toEqual({ type: 'heartbeat', rev: 3 });
  });

  it('when the API key changes, then a client that connected with the old one is closed with 4401 at its next heartbeat; one with the new key stays', async () => {
    const log = memoryLog();
    const clock = createManualClock();
    let current = 'key-one';
    const { url } = await channelServer({ log, clock, pingMs: 3_600_000, authenticate: () => true, stillAuthorized: (key) => key === current });
    const old = ws(url, { protocols: [PROTOCOL, 'key.key-one'] });
    await old.next((m) => m.type === 'hello');
    current = 'key-two';
    const fresh = ws(url, { protocols: [PROTOCOL, 'key.key-two'] });
    await fresh.next((m) => m.type === 'hello');
    await clock.advance(5000);
    expect(await old.closed).toMatchObject({ code: 4401 });
    await fresh.next((m) => m.type === 'heartbeat');
    log.publish('settings.changed', change(1));
    await fresh.next((m) => m.rev === 1);
  });

  it('when a peer does not answer a ping, then it is terminated at the next one; a peer that answers stays', async () => {
    const log = memoryLog();
    const clock = createManualClock();
    const { url, channel } = await channelServer({ log, clock, pingMs: 15_000, heartbeatMs: 3_600_000 });
    const dead = ws(url, { protocols: [PROTOCOL], autoPong: false });
    const alive = ws(url, { protocols: [PROTOCOL] });
    await dead.next((m) => m.type === 'hello');
    await alive.next((m) => m.type === 'hello');
    let pings = 0;
    dead.ws.on('ping', () => {
      pings += 1;
    });

    await clock.advance(15_000);
    await eventually('the ping reached the dead peer', () => pings === 1);
    await eventually('the live peer answered', () => channel.clients().filter((c) => !c.waitingForPong).length === 1);
    await clock.advance(15_000);
    expect((await dead.closed).code).toBe(1006);
    expect(channel.clients()).toHaveLength(1);
    log.publish('settings.changed', change(1));
    await alive.next((m) => m.rev === 1);
  });
});

describe('the WebSocket channel: resuming', () => {
  it('when confhub restarts, then a client resuming with since gets every event after it, nothing twice, and a client open across the stop was told 1001', async () => {
    const dir = newDir();
    const dataDir = join(dir, 'data');
    mkdirSync(join(dataDir, 'config'), { recursive: true });
    writeFileSync(join(dataDir, 'config', 'system.ini'), `[sync]\ndocker_socket = ${dir}/docker.sock\nsupervisor_url = unix://${dir}/supervisor.sock\n`);
    const config = loadRuntimeConfig({ CONFHUB_DATA_DIR: dataDir, CONFHUB_PORT: '0', CONFHUB_RATE_LIMIT: '0', CONFHUB_LOG_LEVEL: 'silent' }, dir);
    let server = await startServer(config, silent);
    cleanups.push(() => server.close());
    const apiKey = (await readApiKey(config))!;
    const wsUrl = () => `${server.url.replace(/^http/, 'ws')}/api/v1/ws`;
    const before = ws(wsUrl(), { protocols: [PROTOCOL, `key.${apiKey}`] });
    expect((await put(server.url, apiKey, 'gitea', { user_name: 'alice' })).status).toBe(200);
    const lastSeen = (await before.next((m) => m.type === 'settings.changed')).rev!;
    await server.close();
    expect(await before.closed).toEqual({ code: 1001, reason: 'going away' });

    server = await startServer(config, silent);
    expect((await put(server.url, apiKey, 'gitea', { user_name: 'bob' })).status).toBe(200);
    expect((await put(server.url, apiKey, 'portainer', { user_name: 'carol' })).status).toBe(200);
    const resumed = ws(`${wsUrl()}?since=${lastSeen}`, { protocols: [PROTOCOL, `key.${apiKey}`] });
    await resumed.next((m) => m.type === 'settings.changed' && (m.data as { keys: string[] }).keys.includes('portainer.user_name'));
    expect(resumed.messages[0]).toEqual({ type: 'hello', rev: lastSeen, heartbeatMs: 5000 });
    const revs = events(resumed).map((m) => m.rev!);
    // What happened while it was away (the worker of each process included), in log order, none twice, none left out.
    expect(revs).toEqual(Array.from({ length: revs.length }, (_, i) => lastSeen + 1 + i));
    expect(
      events(resumed)
        .filter((m) => m.type === 'settings.changed')
        .map((m) => (m.data as { keys: string[] }).keys),
    ).toEqual([['gitea.user_name'], ['portainer.user_name']]);
    expect(resumed.messages.some((m) => m.type === 'reset')).toBe(false);
  });

  it('when a client switches channels, then the WebSocket resumes from the id: SSE sent, and SSE from the rev the WebSocket sent with ?since= (as a browser must), nothing missed or repeated', async () => {
    const s = await serve();
    const key = { 'x-api-key': s.apiKey };
    const sse = await connectSse(`${s.server.url}/api/v1/settings/events`, key);
    expect((await put(s.server.url, s.apiKey, 'gitea', { user_name: 'alice' })).status).toBe(200);
    const lastId = (await sse.next((f) => f.event === 'settings.changed')).id!;
    sse.close();
    expect((await put(s.server.url, s.apiKey, 'gitea', { user_name: 'bob' })).status).toBe(200);
    expect((await put(s.server.url, s.apiKey, 'portainer', { user_name: 'carol' })).status).toBe(200);

    const client = ws(`${s.wsUrl}/api/v1/ws?since=${lastId}`, { protocols: [PROTOCOL, `key.${s.apiKey}`] });
    const keysOf = (m: WsMessage) => (m.data as { keys: string[] }).keys;
    await client.next((m) => m.type === 'settings.changed' && keysOf(m).includes('portainer.user_name'));
    expect(client.messages[0]).toEqual({ type: 'hello', rev: lastId, heartbeatMs: 5000 });
    const revs = events(client).map((m) => m.rev!);
    expect(revs).toEqual(Array.from({ length: revs.length }, (_, i) => lastId + 1 + i));
    expect(
      events(client)
        .filter((m) => m.type === 'settings.changed')
        .map(keysOf),
    ).toEqual([['gitea.user_name'], ['portainer.user_name']]);
    const lastRev = revs.at(-1)!;
    client.close();

    expect((await put(s.server.url, s.apiKey, 'gitea', { user_name: 'dave' })).status).toBe(200);
    const back = await connectSse(`${s.server.url}/api/v1/settings/events?since=${lastRev}`, key);
    cleanups.push(() => back.close());
    await back.next((f) => f.event === 'settings.changed');
    const ids = back.frames.map((f) => f.id!);
    expect(ids[0]).toBe(lastRev + 1);
    expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => lastRev + 1 + i));
    expect(back.frames.filter((f) => f.event === 'settings.changed').map((f) => (JSON.parse(f.data) as { keys: string[] }).keys)).toEqual([
      ['gitea.user_name'],
    ]);
  });

  it('when since is older than the log keeps, or was never issued, then hello and reset name the newest rev and the client follows from there; a since that is no rev closes with 4400', async () => {
    const log = memoryLog(10);
    for (let n = 1; n <= 300; n++) log.publish('settings.changed', change(n));
    const { url } = await channelServer({ log, clock: createManualClock() });

    const old = ws(`${url}?since=5`, { protocols: [PROTOCOL] });
    await old.next((m) => m.type === 'reset');
    const ahead = ws(`${url}?since=301`, { protocols: [PROTOCOL] });
    await ahead.next((m) => m.type === 'reset');
    const kept = ws(`${url}?since=295`, { protocols: [PROTOCOL] });
    await kept.next((m) => m.rev === 300 && m.type === 'settings.changed');
    log.publish('settings.changed', change(301));
    for (const client of [old, ahead]) {
      await client.next((m) => m.rev === 301 && m.type === 'settings.changed');
      expect(client.messages.map((m) => m.type ?? 'legacy')).toEqual(['hello', 'reset', 'settings.changed', 'legacy']);
      expect(client.messages.slice(0, 2)).toEqual([
        { type: 'hello', rev: 300, heartbeatMs: 5000 },
        { type: 'reset', rev: 300 },
      ]);
    }
    await kept.next((m) => m.rev === 301);
    expect(events(kept).map((m) => m.rev)).toEqual([296, 297, 298, 299, 300, 301]);

    const refusals: Record<string, RegExp> = {
      'since=abc': /^since must be a non-negative integer/,
      'since=-1': /^since must be a non-negative integer/,
      'since=1&since=2': /^since must be given once$/,
      'since=1&limit=2': /^the only query parameter is since$/,
      'key=x': /^the only query parameter is since$/,
    };
    for (const [query, reason] of Object.entries(refusals)) {
      const closed = await ws(`${url}?${query}`, { protocols: [PROTOCOL] }).closed;
      expect(closed.code, query).toBe(4400);
      expect(closed.reason, query).toMatch(reason);
    }
  });

  it('when a client stops reading, then nothing more is buffered for it past the limit, it is dropped once stalled, and a resume with since gets every event', async () => {
    const log = memoryLog();
    const clock = createManualClock();
    const maxBufferedBytes = 64 * 1024;
    const { url, port, channel } = await channelServer({ log, clock, maxBufferedBytes, pingMs: 3_600_000 });

    // A client that does the handshake and never reads a byte.
    const stalled = connect(port, '127.0.0.1');
    stalled.pause();
    cleanups.push(() => stalled.destroy());
    stalled.write(
      'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${Buffer.from('0123456789abcdef').toString('base64')}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ${PROTOCOL}\r\n\r\n`,
    );
    await eventually('the stalled client is followed', () => channel.clients().length === 1 && log.subscribers() === 1);

    const keys = Array.from({ length: 400 }, (_, i) => `section_${i}.key_with_a_long_name_${i}`);
    const messageBytes = JSON.stringify(keys).length + 300;
    let maxBuffered = 0;
    const total = 3000; // ~ 12 MB: well past what the loopback socket buffers hold
    for (let n = 1; n <= total; n++) {
      log.publish('settings.changed', change(n, keys));
      maxBuffered = Math.max(maxBuffered, channel.clients()[0]!.bufferedAmount);
      if (n % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    expect(maxBuffered).toBeGreaterThan(maxBufferedBytes / 2);
    expect(maxBuffered).toBeLessThanOrEqual(maxBufferedBytes + messageBytes);
    const [state] = channel.clients();
    expect(state).toMatchObject({ paused: true });
    expect(state!.rev).toBeLessThan(total);

    // Stalled past stallMs (30 s): dropped, unsubscribed, its socket closed.
    await clock.advance(DEFAULT_STALL_MS);
    await eventually('the stalled client is dropped', () => channel.clients().length === 0 && log.subscribers() === 0);

    // A client that reads, resuming from the start: every event, in order, through the same limit.
    const resumed = ws(`${url}?since=0`, { protocols: [PROTOCOL] });
    await resumed.next((m) => m.rev === total && m.type === 'settings.changed', 60_000);
    expect(events(resumed).map((m) => m.rev)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  });
});

interface ReferenceClient {
  stop(): void;
}
type FollowConfhub = (options: {
  base: string;
  apiKey: string;
  onEvent(event: WsMessage): void;
  onReset(): void;
  onFatal(code: number, reason: string): void;
}) => ReferenceClient;

class BrowserLikeWebSocket extends WebSocket {
  constructor(url: string, protocols: string[]) {
    super(url, protocols);
    // A browser reports errors as a close; ws would also throw them when nobody listens.
    this.on('error', () => undefined);
  }
}

/**
 * The browser client of README's "Live channel" section, run by default on the ws package's
 * WebSocket (the browser API, with EventEmitter errors); its timers are the global ones.
 */
function referenceClient(socketClass: unknown = BrowserLikeWebSocket): FollowConfhub {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('**A reference client**'));
  const code = /```js\n([\s\S]*?)```/.exec(section)![1]!;
  return new Function('WebSocket', `${code}\nreturn followConfhub;`)(socketClass) as FollowConfhub;
}

/** A browser WebSocket as the reference client uses it: the test plays the server through it. */
class FakeSocket {
  static readonly made: FakeSocket[] = [];
  onmessage: ((message: { data: string }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  closed = false;
  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {
    FakeSocket.made.push(this);
  }
  close(): void {
    this.closed = true;
  }
  send(message: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  /** The connection ends as a browser reports it (1006: dropped without a close frame). */
  end(code = 1006, reason = ''): void {
    this.onclose?.({ code, reason });
  }
}

describe("README's reference client", () => {
  it('when it follows confhub across a restart, then it gets every event once, in order, without a reset; with a wrong key it stops at 4401', async () => {
    const dir = newDir();
    const dataDir = join(dir, 'data');
    mkdirSync(join(dataDir, 'config'), { recursive: true });
    writeFileSync(join(dataDir, 'config', 'system.ini'), `[sync]\ndocker_socket = ${dir}/docker.sock\nsupervisor_url = unix://${dir}/supervisor.sock\n`);
    const port = await freePort();
    const config = loadRuntimeConfig({ CONFHUB_DATA_DIR: dataDir, CONFHUB_PORT: String(port), CONFHUB_RATE_LIMIT: '0', CONFHUB_LOG_LEVEL: 'silent' }, dir);
    let server = await startServer(config, silent);
    cleanups.push(() => server.close());
    const apiKey = (await readApiKey(config))!;
    const followConfhub = referenceClient();
    const seen: WsMessage[] = [];
    const resets: number[] = [];
    const fatal: number[] = [];
    const client = followConfhub({
      base: server.url,
      apiKey,
      onEvent: (event) => seen.push(event),
      onReset: () => resets.push(1),
      onFatal: (code) => fatal.push(code),
    });
    cleanups.push(() => client.stop());
    const changed = (key: string) => seen.some((e) => e.type === 'settings.changed' && (e.data as { keys: string[] }).keys.includes(key));

    // Written once the client follows: the write before it is the worker's first run.
    await eventually('the client follows', async () => {
      expect((await put(server.url, apiKey, 'gitea', { user_name: `alice-${seen.length}` })).status).toBe(200);
      return changed('gitea.user_name');
    });
    await server.close();
    server = await startServer(config, silent);
    expect((await put(server.url, apiKey, 'portainer', { user_name: 'carol' })).status).toBe(200);
    await eventually('the client resumed', () => changed('portainer.user_name'), 20_000);
    const revs = seen.map((e) => e.rev!);
    expect(revs).toEqual(Array.from({ length: revs.length }, (_, i) => revs[0]! + i));
    expect(resets).toEqual([]);
    expect(fatal).toEqual([]);

    const refused = followConfhub({
      base: server.url,
      apiKey: 'x'.repeat(40),
      onEvent: () => undefined,
      onReset: () => undefined,
      onFatal: (code) => fatal.push(code),
    });
    cleanups.push(() => refused.stop());
    await eventually('the wrong key is refused', () => fatal.length === 1);
    expect(fatal).toEqual([4401]);
  });
});

describe("README's reference client, on fake sockets and timers", () => {
  const newest = (): FakeSocket => FakeSocket.made.at(-1)!;
  const sinceOf = (socket: FakeSocket): string | null => new URL(socket.url).searchParams.get('since');
  let fatal: [number, string][];
  let seen: WsMessage[];
  let resets: number;

  function follow(): ReferenceClient {
    FakeSocket.made.length = 0;
    fatal = [];
    seen = [];
    resets = 0;
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    cleanups.push(() => vi.useRealTimers());
    const random = vi.spyOn(Math, 'random');
    cleanups.push(() => random.mockRestore());
    const client = referenceClient(FakeSocket)({
      base: 'https://confhub.example:8443/ui/',
      apiKey: 'k'.repeat(40),
      onEvent: (event) => seen.push(event),
      onReset: () => resets++,
      onFatal: (code, reason) => fatal.push([code, reason]),
    });
    cleanups.push(() => client.stop());
    return client;
  }

  /** Advances to just before `ms` (no new socket yet), then to it (one new socket). */
  function expectReconnectAfter(ms: number): FakeSocket {
    const count = FakeSocket.made.length;
    vi.advanceTimersByTime(ms - 1);
    expect(FakeSocket.made.length, `no reconnect before ${ms} ms`).toBe(count);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.made.length, `a reconnect at ${ms} ms`).toBe(count + 1);
    return newest();
  }

  it('when connections keep failing, then each wait is a random share of 1 s, 2 s, 4 s, … capped at 30 s (full jitter), and a hello starts the series again', () => {
    follow();
    const first = newest();
    expect(first.url).toBe('wss://confhub.example:8443/api/v1/ws');
    expect(first.protocols).toEqual(['confhub.v1', `key.${'k'.repeat(40)}`]);
    // The whole ceiling each time (random just under 1): 1 s, 2 s, … then 30 s and no more.
    vi.mocked(Math.random).mockReturnValue(0.999);
    const ceilings = [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000];
    for (const ceiling of ceilings) {
      newest().end();
      expectReconnectAfter(Math.ceil(0.999 * ceiling));
    }
    // Full jitter: the wait is the random share of the ceiling, down to nothing.
    vi.mocked(Math.random).mockReturnValue(0.25);
    newest().end();
    expectReconnectAfter(7500);
    vi.mocked(Math.random).mockReturnValue(0);
    newest().end();
    vi.advanceTimersByTime(0);
    expect(FakeSocket.made).toHaveLength(ceilings.length + 3);

    // A hello: confhub answered, the next failure waits as the first did.
    newest().send({ type: 'hello', rev: 3, heartbeatMs: 5000 });
    vi.mocked(Math.random).mockReturnValue(0.5);
    newest().end();
    expectReconnectAfter(500);
    newest().end();
    expectReconnectAfter(1000);
  });

  it('when 10 s pass without a message, then the socket is closed and the client reconnects from the last rev; any message (a heartbeat) restarts the 10 s', () => {
    follow();
    vi.mocked(Math.random).mockReturnValue(0.5);
    const socket = newest();
    expect(sinceOf(socket)).toBeNull();
    socket.send({ type: 'hello', rev: 41, heartbeatMs: 5000 });
    socket.send({ type: 'settings.changed', rev: 42, at: '2026-01-01T00:00:00.000Z', data: { keys: ['a.b'] } });
    socket.send({ ConfigChanged: { tenant_id: 'default', change_type: 'settings' } });
    vi.advanceTimersByTime(5000);
    socket.send({ type: 'heartbeat', rev: 42 });
    vi.advanceTimersByTime(9999);
    expect(socket.closed).toBe(false);
    expect(FakeSocket.made).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(socket.closed).toBe(true);
    // Its handlers are gone: a late close event of the dead socket starts nothing more.
    expect(socket.onclose).toBeNull();
    // The hello reset the backoff: the first wait's ceiling, 1 s.
    expect(sinceOf(expectReconnectAfter(500))).toBe('42');
    expect(seen.map((e) => e.rev)).toEqual([42]);
    // A new connection is watched too.
    vi.advanceTimersByTime(10_000);
    expect(newest().closed).toBe(true);
    expect(resets).toBe(0);
  });

  it.each([4400, 4401])('when confhub closes with %i, then onFatal says so and the client never reconnects, leaving no timer', (code) => {
    follow();
    newest().send({ type: 'hello', rev: 7, heartbeatMs: 5000 });
    newest().end(code, code === 4400 ? 'since must be a non-negative integer (a rev)' : 'unauthorized');
    expect(fatal).toEqual([[code, code === 4400 ? 'since must be a non-negative integer (a rev)' : 'unauthorized']]);
    expect(newest().closed).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10 * 60_000);
    expect(FakeSocket.made).toHaveLength(1);
  });

  it('when stop() is called while a reconnect waits, then none is made', () => {
    const client = follow();
    vi.mocked(Math.random).mockReturnValue(0.5);
    newest().end();
    client.stop();
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.made).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });
});
