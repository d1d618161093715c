/**
 * The rate limits as shipped (CONFHUB_RATE_LIMIT and CONFHUB_AUTH_FAILURE_LIMIT at their
 * defaults) on a listening server: many clients with the right key at once, long and dropped
 * requests, and guessing keys. Only refused authentications may count against an address.
 */
import { createServer, request as httpRequest, type ClientRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import supertest from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { AppError } from '../../src/core/errors.js';
import { createErrorHandler } from '../../src/http/errors.js';
import { createRateLimits } from '../../src/http/rate-limits.js';
import { parseIni } from '../../src/ini/document.js';
import { createLogger } from '../../src/log.js';
import { DEFAULT_AUTH_FAILURE_LIMIT, DEFAULT_RATE_LIMIT } from '../../src/runtime-config.js';
import { createHarness, type Harness } from '../support/harness.js';
import { connectSse } from '../support/sse-client.js';
import { eventually } from '../support/wait.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** confhub with the shipped limits, listening on loopback. */
async function shippedConfhub(): Promise<{ h: Harness; url: string; server: Server }> {
  const h = await createHarness({ rateLimitPerMinute: DEFAULT_RATE_LIMIT, authFailuresPer15Min: DEFAULT_AUTH_FAILURE_LIMIT });
  cleanups.push(() => h.close());
  const server = createServer(h.app);
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  server.on('connection', (socket) => cleanups.push(() => socket.destroy()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { h, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

async function getStatus(url: string, apiKey?: string): Promise<number> {
  const response = await fetch(`${url}/api/v1/settings/cockpit`, { headers: apiKey === undefined ? {} : { 'x-api-key': apiKey } });
  await response.arrayBuffer();
  return response.status;
}

interface AuditEntry {
  id: number;
  section: string;
  key: string;
  newValue: string | null;
  result: string;
}

describe('failed authentications as shipped', () => {
  it('when 100 authenticated PUTs run at once, then all answer 200 and every value lands', async () => {
    const { h, url } = await shippedConfhub();
    const keys = [
      ['nginx_proxy_manager', 'nike_name'],
      ['gitea', 'user_name'],
      ['portainer', 'user_name'],
      ['console', 'title'],
    ] as const;
    const writes = Array.from({ length: 100 }, (_, i) => ({ section: keys[i % 4]![0], key: keys[i % 4]![1], value: `writer-${i}` }));
    const statuses = await Promise.all(
      writes.map(async ({ section, key, value }) => {
        const response = await fetch(`${url}/api/v1/settings/${section}?key=${key}&value=${value}`, { method: 'PUT', headers: { 'x-api-key': h.apiKey } });
        await response.arrayBuffer();
        return response.status;
      }),
    );
    expect(statuses.filter((status) => status !== 200)).toEqual([]);

    // Every write was applied, and for each key the file holds the value of its newest write.
    const audit = (await supertest(h.app).get('/api/v1/audit?limit=1000').set('x-api-key', h.apiKey)).body.entries as AuditEntry[];
    const applied = audit.filter((e) => e.result === 'applied' && e.newValue?.startsWith('writer-'));
    expect(applied.map((e) => e.newValue).sort()).toEqual(writes.map((w) => w.value).sort());
    const file = parseIni(h.readConfig());
    for (const [section, key] of keys) {
      const newest = applied.filter((e) => e.section === section && e.key === key).sort((a, b) => b.id - a.id)[0];
      expect(file.byName.get(section)?.byKey.get(key)?.value).toBe(newest?.newValue);
    }
  });

  it('when 50 event streams are opened and dropped, then a GET with the right key answers 200', async () => {
    const { h, url } = await shippedConfhub();
    // The webhook outbox follows the log too.
    const others = h.events.subscribers();
    for (let i = 0; i < 50; i++) {
      const stream = await connectSse(`${url}/api/v1/settings/events`, { 'x-api-key': h.apiKey });
      stream.close();
    }
    await eventually('every dropped stream is unsubscribed', () => h.events.subscribers() === others);
    expect(await getStatus(url, h.apiKey)).toBe(200);
  });

  it('when 25 slow uploads with the right key are in flight and then abandoned, then the address is never locked out', async () => {
    const { h, url, server } = await shippedConfhub();
    let arrived = 0;
    server.on('request', () => {
      arrived += 1;
    });
    const { port } = new URL(url);
    const uploads: ClientRequest[] = [];
    for (let i = 0; i < 25; i++) {
      const upload = httpRequest({
        host: '127.0.0.1',
        port,
        method: 'PUT',
        path: '/api/v1/settings/gitea',
        headers: { 'x-api-key': h.apiKey, 'content-type': 'application/json', 'content-length': '1000' },
      });
      upload.on('error', () => undefined);
      upload.write('{"user_name":');
      uploads.push(upload);
    }
    await eventually('every upload reached confhub', () => arrived === 25);
    expect(await getStatus(url, h.apiKey)).toBe(200);
    for (const upload of uploads) upload.destroy();
    expect(await getStatus(url, h.apiKey)).toBe(200);
  });

  it('when 21 wrong keys are presented, then the 21st gets 429 and so does the right key, with the RateLimit headers', async () => {
    const { h, url } = await shippedConfhub();
    for (let i = 0; i < DEFAULT_AUTH_FAILURE_LIMIT; i++) expect(await getStatus(url, i % 2 === 0 ? 'wrong' : undefined)).toBe(401);
    expect(await getStatus(url, 'wrong')).toBe(429);
    const locked = await fetch(`${url}/api/v1/settings/cockpit`, { headers: { 'x-api-key': h.apiKey } });
    expect(locked.status).toBe(429);
    expect(await locked.json()).toMatchObject({
      code: 'RATE_LIMITED',
      message: expect.any(String),
      details: 'Too many failed authentications; try again later',
    });
    expect(locked.headers.get('ratelimit')).toMatch(/"auth-failures"; r=0; t=\d+/);
    expect(locked.headers.get('ratelimit-policy')).toMatch(/"auth-failures"; q=20; w=900; pk=:[A-Za-z0-9+/=]+:/);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(800);
  });
});

describe('the limits over time', () => {
  /** The limits with a clock the test moves, in front of a stand-in for authentication. */
  function limitedApp({ perMinute, authFailures }: { perMinute: number; authFailures: number }) {
    let time = Date.parse('2026-01-01T00:00:00Z');
    const limits = createRateLimits({ perMinute, authFailuresPer15Min: authFailures, now: () => time });
    const app = express();
    app.set('trust proxy', true);
    const authenticate: express.RequestHandler = (req, res, next) => {
      const key = req.get('x-api-key');
      if (key === 'right') {
        next();
        return;
      }
      limits.authenticationRefused(req, res);
      next(new AppError(key ? 'API_KEY_INVALID' : 'API_KEY_MISSING'));
    };
    if (limits.check) app.use(limits.check);
    app.use(authenticate);
    app.get('/thing', (_req, res) => {
      res.json({ ok: true });
    });
    app.use(createErrorHandler({ logger: createLogger({ level: 'silent' }) }));
    const send = (key: string | undefined, from = '192.0.2.1') => {
      const req = supertest(app).get('/thing').set('x-forwarded-for', from);
      return key === undefined ? req : req.set('x-api-key', key);
    };
    return {
      send,
      advance: (ms: number) => {
        time += ms;
      },
    };
  }

  it('when an address is locked out, then it stays locked for 15 minutes from its first failure, other addresses are not, and then it may try again', async () => {
    const { send, advance } = limitedApp({ perMinute: 0, authFailures: 3 });
    expect((await send(undefined)).status).toBe(401);
    advance(60_000);
    expect((await send('wrong')).status).toBe(401);
    expect((await send('wrong')).status).toBe(401);
    expect((await send('right')).status).toBe(429);
    expect((await send('right', '192.0.2.2')).status).toBe(200);
    advance(14 * 60_000 - 1);
    const late = await send('right');
    expect(late.status).toBe(429);
    expect(late.headers['retry-after']).toBe('1');
    advance(1);
    expect((await send('right')).status).toBe(200);
    expect((await send('wrong')).status).toBe(401);
  });

  it('when the right key is used any number of times, then the failure count never moves', async () => {
    const { send } = limitedApp({ perMinute: 0, authFailures: 2 });
    for (let i = 0; i < 50; i++) expect((await send('right')).status).toBe(200);
    const failed = await send('wrong');
    expect(failed.status).toBe(401);
    expect(failed.headers.ratelimit).toMatch(/"auth-failures"; r=1; t=900/);
  });

  it('when a client goes over the per-minute limit, then 429 until its minute ends, with both limits in the headers', async () => {
    const { send, advance } = limitedApp({ perMinute: 3, authFailures: 20 });
    for (let i = 0; i < 3; i++) expect((await send('right')).status).toBe(200);
    const limited = await send('right');
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({ code: 'RATE_LIMITED', details: 'Too many requests; try again later' });
    expect(limited.headers.ratelimit).toBe('"3-in-1min"; r=0; t=60');
    expect(limited.headers['ratelimit-policy']).toMatch(/^"3-in-1min"; q=3; w=60; pk=:[A-Za-z0-9+/=]+:$/);
    const refused = await send('wrong', '192.0.2.3');
    expect(refused.headers.ratelimit).toMatch(/^"3-in-1min"; r=2; t=60, "auth-failures"; r=19; t=900$/);
    advance(60_000);
    expect((await send('right')).status).toBe(200);
  });
});
