/**
 * HTTP reload hooks and health probes against a real node:http server on 127.0.0.1.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { safeUrl } from '../../src/core/safe-url.js';
import { postReload, probeHealth } from '../../src/reload/http.js';
import { createManualClock } from '../support/manual-clock.js';
import { expectAppError } from '../support/wait.js';

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  return port;
}

describe('HTTP reload hooks and health probes', () => {
  let server: Server;
  let base: string;
  const seen: { method: string; url: string; authorization?: string }[] = [];
  let flakyCalls = 0;
  let fadingCalls = 0;
  const calls = (path: string): number => seen.filter((r) => r.url === path).length;

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
      const path = (req.url ?? '').split('?')[0];
      if (path === '/ok') res.writeHead(204).end();
      else if (path === '/fail') res.writeHead(500).end('boom');
      else if (path === '/redirect') res.writeHead(302, { location: '/ok' }).end();
      else if (path === '/flaky') res.writeHead(++flakyCalls < 3 ? 503 : 200).end('ok');
      // A reloaded server whose old workers answer for a moment before the new configuration fails.
      else if (path === '/fading') res.writeHead(++fadingCalls <= 2 ? 200 : 503).end();
      else if (path === '/slow') setTimeout(() => res.writeHead(200).end(), 5000).unref();
      else if (path === '/auth') res.writeHead(req.headers.authorization === `Basic ${Buffer.from('hook:p@ss').toString('base64')}` ? 200 : 401).end();
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('when the hook answers 2xx, then postReload resolves after a POST', async () => {
    await postReload(`${base}/ok`, { timeoutMs: 2000 });
    expect(seen.at(-1)).toMatchObject({ method: 'POST', url: '/ok' });
  });

  it('when the hook answers 500, then RELOAD_FAILED with the status', async () => {
    const error = await expectAppError(postReload(`${base}/fail`, { timeoutMs: 2000 }), 'RELOAD_FAILED');
    expect(error.details).toContain('HTTP 500');
    expect(error.data).toMatchObject({ status: 500 });
  });

  it('when the hook redirects, then it is not followed and counts as a failure', async () => {
    const before = seen.length;
    const error = await expectAppError(postReload(`${base}/redirect`, { timeoutMs: 2000 }), 'RELOAD_FAILED');
    expect(error.details).toContain('HTTP 302');
    expect(seen.length).toBe(before + 1);
  });

  it('when the hook does not answer in time, then TIMEOUT at the budget', async () => {
    const error = await expectAppError(postReload(`${base}/slow`, { timeoutMs: 300 }), 'TIMEOUT');
    expect(error.details).toContain('no answer within 300 ms');
  });

  it('when nothing listens, then SERVICE_UNREACHABLE', async () => {
    const port = await closedPort();
    const error = await expectAppError(postReload(`http://127.0.0.1:${port}/reload`, { timeoutMs: 2000 }), 'SERVICE_UNREACHABLE');
    expect(error.details).toContain('ECONNREFUSED');
  });

  it('when the URL carries credentials and a token, then they are sent but never shown', async () => {
    await postReload(`http://hook:p%40ss@127.0.0.1:${new URL(base).port}/auth?token=t0ps3cret`, { timeoutMs: 2000 });
    expect(seen.at(-1)).toMatchObject({ url: '/auth?token=t0ps3cret' });
    const error = await expectAppError(
      postReload(`http://hook:wrong@127.0.0.1:${new URL(base).port}/auth?token=t0ps3cret`, { timeoutMs: 2000 }),
      'RELOAD_FAILED',
    );
    expect(JSON.stringify({ m: error.message, d: error.details, data: error.data })).not.toMatch(/wrong|t0ps3cret/);
    expect(safeUrl('http://u:pw@h:1/p?q=1#f')).toBe('http://h:1/p');
  });

  it('when the health endpoint answers 2xx, then probeHealth resolves; when it gets there after a few 503s, then too, one interval apart', async () => {
    await probeHealth(`${base}/ok`, { timeoutMs: 2000 });
    flakyCalls = 0;
    const clock = createManualClock();
    const start = clock.now();
    await clock.run(probeHealth(`${base}/flaky`, { timeoutMs: 3000, intervalMs: 50, clock }));
    expect(flakyCalls).toBe(3);
    expect(clock.now() - start).toBe(100);
  });

  it('when a stability window is asked for, then the answers must stay 2xx for all of it: probeHealth resolves one window after the first 2xx, probing every third of it', async () => {
    flakyCalls = 0;
    const clock = createManualClock();
    const start = clock.now();
    await clock.run(probeHealth(`${base}/flaky`, { timeoutMs: 5000, intervalMs: 250, stableMs: 300, clock }));
    // 503 at 0 and 250 ms, 2xx at 500, 600, 700 and 800 ms.
    expect(flakyCalls).toBe(6);
    expect(clock.now() - start).toBe(800);
  });

  it('when the endpoint answers 2xx and then stops (old workers of a reloaded server), then the window sees it and HEALTH_FAILED comes at the timeout; the first 2xx alone would have passed', async () => {
    fadingCalls = 0;
    const clock = createManualClock();
    const start = clock.now();
    const error = await expectAppError(clock.run(probeHealth(`${base}/fading`, { timeoutMs: 3000, intervalMs: 250, stableMs: 1000, clock })), 'HEALTH_FAILED');
    expect(error.message).toBe('Health endpoint did not stay 2xx');
    expect(error.details).toBe(`GET ${base}/fading: not 2xx for 1000 ms in a row within 3000 ms; last: HTTP 503`);
    expect(clock.now() - start).toBe(3000);

    fadingCalls = 0;
    await clock.run(probeHealth(`${base}/fading`, { timeoutMs: 3000, stableMs: 0, clock }));
    expect(fadingCalls).toBe(1);
  });

  it('when the window has not passed at the timeout, then HEALTH_FAILED says how long the answers were 2xx, and shows the URL as given', async () => {
    const clock = createManualClock();
    const error = await expectAppError(
      clock.run(probeHealth(`${base}/ok`, { timeoutMs: 1000, intervalMs: 250, stableMs: 2000, clock, shown: 'http://service/ok' })),
      'HEALTH_FAILED',
    );
    expect(error.details).toBe('GET http://service/ok: not 2xx for 2000 ms in a row within 1000 ms; last: 2xx for 1000 ms only');
    expect(error.data).toEqual({ url: 'http://service/ok' });
  });

  it('when the health endpoint keeps answering 500, then it is asked every interval and HEALTH_FAILED comes exactly at the timeout, with the last status', async () => {
    // Each request's own timeout is real time; the numbers leave the last one 2 s of it.
    const clock = createManualClock();
    const start = clock.now();
    const before = calls('/fail');
    const error = await expectAppError(clock.run(probeHealth(`${base}/fail`, { timeoutMs: 10_000, intervalMs: 2000, clock })), 'HEALTH_FAILED');
    expect(error.details).toContain('not 2xx within 10000 ms; last: HTTP 500');
    // Asked at 0, 2, 4, 6 and 8 s; the pause after the last one ends at the timeout.
    expect(calls('/fail') - before).toBe(5);
    expect(clock.now() - start).toBe(10_000);
  });

  it('when the health endpoint hangs or is down, then HEALTH_FAILED once the timeout has passed', async () => {
    const clock = createManualClock();
    let start = clock.now();
    const hung = await expectAppError(clock.run(probeHealth(`${base}/slow`, { timeoutMs: 400, clock })), 'HEALTH_FAILED');
    expect(hung.details).toContain('timed out');
    expect(clock.now() - start).toBe(400);
    // (Not port 1: fetch refuses the spec's "bad ports" before connecting.)
    // Each attempt here gets at least 2 s of real time: the refusal, not a slow machine, is what it reports.
    start = clock.now();
    const down = await expectAppError(
      clock.run(probeHealth(`http://127.0.0.1:${await closedPort()}/health`, { timeoutMs: 4000, intervalMs: 2000, clock })),
      'HEALTH_FAILED',
    );
    expect(down.details).toContain('ECONNREFUSED');
    expect(clock.now() - start).toBe(4000);
  });
});
