import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loopbackServers } from '../support/loopback-servers.js';
import { CONSOLE_DEFAULTS, consolePage, createConsoleServer, parseConsoleSettings } from '../../src/console/console-server.js';
import { freePort } from '../support/ports.js';
import { tempDirs } from '../support/temp-dirs.js';
import { eventually } from '../support/wait.js';

const tempDir = tempDirs('confhub-console-');
const { listen, closeAll } = loopbackServers();
afterEach(() => closeAll());

describe('console settings', () => {
  it('when confhub rendered the [console] section, then its values are used, the port as a number', () => {
    expect(parseConsoleSettings('{"console": {"title": "Ours", "bind": "0.0.0.0", "port": "9181"}}')).toEqual({ title: 'Ours', bind: '0.0.0.0', port: 9181 });
  });

  it('when keys are missing, then the defaults fill them', () => {
    expect(parseConsoleSettings('{"console": {}}')).toEqual(CONSOLE_DEFAULTS);
  });

  it.each([
    ['not JSON', '{', 'not JSON'],
    ['no console object', '{"other": {}}', 'no "console" object'],
    ['a host name as bind', '{"console": {"bind": "localhost"}}', 'console.bind'],
    ['port 0', '{"console": {"port": "0"}}', 'console.port'],
    ['port 70000', '{"console": {"port": "70000"}}', 'console.port'],
    ['a port with a sign', '{"console": {"port": "+80"}}', 'console.port'],
    ['a numeric title', '{"console": {"title": 5}}', 'console.title'],
  ])('when the file has %s, then it is refused naming the problem', (_what, text, problem) => {
    expect(() => parseConsoleSettings(text)).toThrow(problem);
  });

  it('when the title holds markup, then the page shows it as text', () => {
    const page = consolePage({ ...CONSOLE_DEFAULTS, title: '<script>alert("x")</script> & co' }, '2026-01-01T00:00:00.000Z');
    expect(page).not.toContain('<script>');
    expect(page).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co');
  });
});

describe('console server', () => {
  it('when /api/ is asked, then the request goes to confhub with its method, path, headers and body, and the answer comes back', async () => {
    const seen: { method?: string; url?: string; key?: string; body?: string; forwardedFor?: string }[] = [];
    const upstream = await listen(
      createHttpServer((req: IncomingMessage, res) => {
        let body = '';
        req.on('data', (chunk: Buffer) => (body += chunk.toString()));
        req.on('end', () => {
          seen.push({
            method: req.method,
            url: req.url,
            key: req.headers['x-api-key'] as string,
            body,
            forwardedFor: req.headers['x-forwarded-for'] as string,
          });
          res.writeHead(201, { 'content-type': 'application/json', etag: '"r1"' }).end('{"ok":true}');
        });
      }),
    );
    const consoleUrl = await listen(createConsoleServer({ settings: CONSOLE_DEFAULTS, upstream: new URL(upstream) }));
    const res = await fetch(`${consoleUrl}/api/v1/settings/gitea?wait=true`, {
      method: 'PUT',
      headers: { 'x-api-key': 'k'.repeat(40), 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('etag')).toBe('"r1"');
    expect(await res.json()).toEqual({ ok: true });
    expect(seen).toEqual([{ method: 'PUT', url: '/api/v1/settings/gitea?wait=true', key: 'k'.repeat(40), body: '{"a":1}', forwardedFor: '127.0.0.1' }]);
  });

  it('when a GET carries a chunked body, then it reaches confhub as that one request, still chunked; headers Connection names stay behind', async () => {
    const seen: { method?: string; url?: string; body: string; te?: string; secret?: string }[] = [];
    const upstream = await listen(
      createHttpServer((req, res) => {
        let body = '';
        req.on('data', (chunk: Buffer) => (body += chunk.toString()));
        req.on('end', () => {
          seen.push({ method: req.method, url: req.url, body, te: req.headers['transfer-encoding'] as string, secret: req.headers['x-hop'] as string });
          res.end('{}');
        });
      }),
    );
    const consoleUrl = new URL(await listen(createConsoleServer({ settings: CONSOLE_DEFAULTS, upstream: new URL(upstream) })));
    // A raw request: a smuggling attempt hides a second request in the body of a GET.
    const hidden = 'GET /api/v1/hidden HTTP/1.1\r\nHost: x\r\n\r\n';
    const raw = `GET /api/v1/settings HTTP/1.1\r\nHost: x\r\nConnection: close, x-hop\r\nX-Hop: drop-me\r\nTransfer-Encoding: chunked\r\n\r\n${hidden.length.toString(16)}\r\n${hidden}\r\n0\r\n\r\n`;
    const { connect } = await import('node:net');
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(consoleUrl.port), '127.0.0.1', () => socket.write(raw));
      let text = '';
      socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(seen).toEqual([{ method: 'GET', url: '/api/v1/settings', body: hidden, te: 'chunked', secret: undefined }]);
  });

  it('when the client goes away during a long answer, then the request to confhub is ended too', async () => {
    let upstreamClosed = false;
    const upstream = await listen(
      createHttpServer((req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(': open\n\n');
        req.socket.on('close', () => (upstreamClosed = true));
      }),
    );
    const consoleUrl = await listen(createConsoleServer({ settings: CONSOLE_DEFAULTS, upstream: new URL(upstream) }));
    const controller = new AbortController();
    const res = await fetch(`${consoleUrl}/api/v1/settings/events`, { signal: controller.signal });
    expect(res.status).toBe(200);
    controller.abort();
    await eventually('the upstream request is closed', () => upstreamClosed, 5000);
  });

  it('when confhub does not answer, then /api/ answers 502 with a JSON error', async () => {
    const consoleUrl = await listen(createConsoleServer({ settings: CONSOLE_DEFAULTS, upstream: new URL(`http://127.0.0.1:${await freePort()}`) }));
    const res = await fetch(`${consoleUrl}/api/v1/settings`);
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ details: 'the console could not reach the confhub API' });
  });

  it('when the page, the health check, another path or another method is asked, then 200, 200, 404 and 405', async () => {
    const consoleUrl = await listen(createConsoleServer({ settings: { ...CONSOLE_DEFAULTS, title: 'Status' }, upstream: new URL('http://127.0.0.1:1') }));
    const page = await fetch(`${consoleUrl}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<h1>Status</h1>');
    // Compressed for a client that takes gzip (fetch asks for it and unpacks it), as it is for one that does not.
    expect(page.headers.get('content-encoding')).toBe('gzip');
    expect(page.headers.get('vary')).toBe('accept-encoding');
    const script = await fetch(`${consoleUrl}/assets/console.js`, { headers: { 'accept-encoding': 'identity' } });
    expect(script.headers.get('content-encoding')).toBeNull();
    expect(await script.text()).toBe(readFileSync(new URL('../../web/console.js', import.meta.url), 'utf8'));
    const zipped = await fetch(`${consoleUrl}/assets/console.js`);
    expect(zipped.headers.get('content-encoding')).toBe('gzip');
    expect(Number(zipped.headers.get('content-length'))).toBeLessThan(readFileSync(new URL('../../web/console.js', import.meta.url)).length / 3);
    expect(await zipped.text()).toBe(readFileSync(new URL('../../web/console.js', import.meta.url), 'utf8'));
    // Revalidated, not fetched again: 304 for the ETag of the encoding asked for, 200 for the other's.
    const etag = zipped.headers.get('etag')!;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{22}-gz"$/);
    const again = await fetch(`${consoleUrl}/assets/console.js`, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect(again.headers.get('etag')).toBe(etag);
    const plainAgain = await fetch(`${consoleUrl}/assets/console.js`, { headers: { 'if-none-match': etag, 'accept-encoding': 'identity' } });
    expect(plainAgain.status).toBe(200);
    expect(plainAgain.headers.get('etag')).toBe(etag.replace('-gz', ''));
    const pageAgain = await fetch(`${consoleUrl}/`, { headers: { 'if-none-match': page.headers.get('etag')! } });
    expect(pageAgain.status).toBe(304);
    // gzip refused (q=0) or not named: sent as it is; `*` takes it.
    for (const [accept, encoding] of [
      ['gzip;q=0, identity', null],
      ['br', null],
      ['*', 'gzip'],
      ['identity, GZIP;q=0.5', 'gzip'],
      ['gzip;q=0, *', null],
    ] as const) {
      const answer = await fetch(`${consoleUrl}/assets/console.css`, { headers: { 'accept-encoding': accept } });
      expect(answer.headers.get('content-encoding'), accept).toBe(encoding);
    }
    const health = await fetch(`${consoleUrl}/healthz`);
    expect(await health.json()).toMatchObject({ status: 'ok', pid: process.pid, title: 'Status' });
    expect((await fetch(`${consoleUrl}/other`)).status).toBe(404);
    expect((await fetch(`${consoleUrl}/`, { method: 'POST' })).status).toBe(405);
  });
});

describe('console program', () => {
  const runConsole = (args: string[]) => spawn(process.execPath, ['--import', 'tsx', 'src/console/console.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });

  it('when its settings file names a free port, then it listens there and ends with 0 on SIGTERM', async () => {
    const port = await freePort();
    const config = join(tempDir(), 'console.json');
    writeFileSync(config, JSON.stringify({ console: { title: 'From file', bind: '127.0.0.1', port: String(port) } }));
    const child = runConsole(['--config', config, '--upstream', 'http://127.0.0.1:8080']);
    try {
      await eventually(
        'the console answers',
        () =>
          fetch(`http://127.0.0.1:${port}/healthz`).then(
            (r) => r.ok,
            () => false,
          ),
        15_000,
      );
      expect(await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()).toMatchObject({ title: 'From file', pid: child.pid });
    } finally {
      child.kill('SIGTERM');
    }
    expect(await new Promise((resolve) => child.once('exit', (code) => resolve(code)))).toBe(0);
  });

  it.each([
    [
      'an invalid settings file',
      (dir: string) => {
        const f = join(dir, 'c.json');
        writeFileSync(f, '{"console": {"port": "nope"}}');
        return ['--config', f, '--upstream', 'http://127.0.0.1:8080'];
      },
      'console.port',
    ],
    ['no --upstream', (dir: string) => ['--config', join(dir, 'c.json')], 'usage'],
    ['an https upstream', (dir: string) => ['--config', join(dir, 'c.json'), '--upstream', 'https://127.0.0.1:8080'], 'http://'],
  ])('when started with %s, then it exits 2 saying why', async (_what, args, message) => {
    const child = runConsole(args(tempDir()));
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise((resolve) => child.once('exit', (c) => resolve(c)));
    expect(code).toBe(2);
    expect(stderr).toContain(message);
  });
});
