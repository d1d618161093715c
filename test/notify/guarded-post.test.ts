/**
 * The guarded POST of webhook deliveries against real receivers on loopback (127.0.0.1 and
 * 127.0.0.2): what is answered, what is refused before any connection, what fails and how.
 * Time is a manual clock: nothing times out unless a test moves it.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAddressPolicy, parseAllowHosts } from '../../src/notify/address-policy.js';
import { createGuardedPost, type HostLookup, type PostResult } from '../../src/notify/guarded-post.js';
import { createManualClock } from '../support/manual-clock.js';
import { freePort } from '../support/ports.js';
import { tempDirs } from '../support/temp-dirs.js';
import { eventually } from '../support/wait.js';

interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
  readonly localAddress: string;
}

interface Receiver {
  readonly server: Server;
  readonly port: number;
  readonly requests: SeenRequest[];
  /** TCP connections accepted (a refused delivery must not even connect). */
  connections: number;
  base(host?: string): string;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

const receivers: Receiver[] = [];

async function startReceiver(host: string, handler: Handler): Promise<Receiver> {
  const requests: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, localAddress: req.socket.localAddress ?? '' });
      handler(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  const receiver: Receiver = { server, port, requests, connections: 0, base: (h = host) => `http://${h.includes(':') ? `[${h}]` : h}:${port}` };
  server.on('connection', () => {
    receiver.connections++;
  });
  receivers.push(receiver);
  return receiver;
}

afterAll(async () => {
  for (const { server } of receivers) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

const strict = createAddressPolicy({ allow: [] });
const allowing = (text: string) => createAddressPolicy({ allow: parseAllowHosts(text) });

/** A resolver that answers fixed records and counts its calls. */
function fixedLookup(records: Record<string, string[]>): HostLookup & { calls: string[] } {
  const calls: string[] = [];
  const lookup = async (hostname: string) => {
    calls.push(hostname);
    const addresses = records[hostname];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return Object.assign(lookup, { calls });
}

function expectKind<K extends PostResult['kind']>(result: PostResult, kind: K): Extract<PostResult, { kind: K }> {
  expect(result, JSON.stringify(result)).toMatchObject({ kind });
  return result as Extract<PostResult, { kind: K }>;
}

describe('guarded POST: answers', () => {
  let receiver: Receiver;
  let target: Receiver;
  /** Per streamed answer: how many bytes were written before the socket closed, and whether it finished. */
  const streams: { written: number; finished: boolean; closed: boolean }[] = [];
  const post = createGuardedPost({ policy: allowing('127.0.0.1'), clock: createManualClock() });

  beforeAll(async () => {
    target = await startReceiver('127.0.0.1', (_req, res) => res.writeHead(200).end('followed'));
    receiver = await startReceiver('127.0.0.1', (req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (path === '/ok') res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      else if (path === '/busy') res.writeHead(429, { 'retry-after': '120', 'content-type': 'text/plain' }).end('slow down');
      else if (path === '/redirect') res.writeHead(302, { location: `${target.base()}/target` }).end();
      else if (path === '/exact') res.writeHead(200).end('x'.repeat(4096));
      else if (path === '/utf8') res.writeHead(200).end(`${'a'.repeat(4095)}é and more`);
      else if (path === '/huge') {
        // 50 MB, slowly: 64 KiB every 5 ms. Reading it all would take seconds and buffer it all.
        const stream = { written: 0, finished: false, closed: false };
        streams.push(stream);
        res.writeHead(200, { 'content-type': 'text/plain' });
        const chunk = Buffer.alloc(64 * 1024, 'y');
        const tick = (): void => {
          if (res.destroyed) return;
          if (stream.written >= 50 * 1024 * 1024) {
            res.end(() => {
              stream.finished = true;
            });
            return;
          }
          res.write(chunk);
          stream.written += chunk.length;
          setTimeout(tick, 5);
        };
        res.on('close', () => {
          stream.closed = true;
        });
        tick();
      } else res.writeHead(404).end();
    });
  });

  it('when the receiver answers 200 with a small body, then the answer carries status, body, headers and the address', async () => {
    const result = expectKind(
      await post.post({ url: `${receiver.base()}/ok`, headers: { 'content-type': 'application/json', 'x-test': 'yes' }, body: '{"a":1}' }),
      'answered',
    );
    expect(result).toMatchObject({ status: 200, body: '{"ok":true}', truncated: false, address: '127.0.0.1', headers: { contentType: 'application/json' } });
    expect(receiver.requests.at(-1)).toMatchObject({ method: 'POST', url: '/ok', body: '{"a":1}', headers: { 'x-test': 'yes', 'content-length': '7' } });
  });

  it('when the caller passes a wrong Content-Length, then the body length is sent', async () => {
    expectKind(await post.post({ url: `${receiver.base()}/ok`, headers: { 'Content-Length': '999' }, body: 'héllo' }), 'answered');
    expect(receiver.requests.at(-1)?.headers['content-length']).toBe('6');
  });

  it('when the receiver answers 429 with Retry-After, then the header is in the answer', async () => {
    const result = expectKind(await post.post({ url: `${receiver.base()}/busy`, body: '' }), 'answered');
    expect(result).toMatchObject({ status: 429, body: 'slow down', headers: { retryAfter: '120', contentType: 'text/plain' } });
  });

  it('when the receiver answers 302, then that is the answer and the Location is never requested', async () => {
    const result = expectKind(await post.post({ url: `${receiver.base()}/redirect`, body: 'x' }), 'answered');
    expect(result.status).toBe(302);
    // Give a follow-up request every chance to arrive before saying none did.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(target.connections).toBe(0);
    expect(target.requests).toHaveLength(0);
  });

  it('when the body is exactly 4096 bytes, then it is whole and not truncated', async () => {
    const result = expectKind(await post.post({ url: `${receiver.base()}/exact`, body: '' }), 'answered');
    expect(result.body).toHaveLength(4096);
    expect(result.truncated).toBe(false);
  });

  it('when the limit cuts a character in two, then the half character is left out', async () => {
    const result = expectKind(await post.post({ url: `${receiver.base()}/utf8`, body: '' }), 'answered');
    expect(result.body).toBe('a'.repeat(4095));
    expect(result.truncated).toBe(true);
  });

  it('when the receiver streams 50 MB, then 4096 bytes are kept and the socket is closed long before the end', async () => {
    const result = expectKind(await post.post({ url: `${receiver.base()}/huge`, body: '' }), 'answered');
    expect(result).toMatchObject({ status: 200, truncated: true });
    expect(result.body).toBe('y'.repeat(4096));
    const stream = streams.at(-1)!;
    await eventually('the receiver saw its answer closed', () => stream.closed);
    expect(stream.finished).toBe(false);
    expect(stream.written).toBeLessThan(50 * 1024 * 1024);
  });
});

describe('guarded POST: failures', () => {
  let receiver: Receiver;
  const held: ServerResponse[] = [];
  let closedHangs = 0;

  beforeAll(async () => {
    receiver = await startReceiver('127.0.0.1', (req, res) => {
      if (req.url === '/hang') {
        held.push(res);
        res.on('close', () => {
          closedHangs++;
        });
      } else if (req.url === '/drop') req.socket.destroy();
      else if (req.url === '/half') {
        res.writeHead(200, { 'content-length': '100' });
        res.write('only part', () => req.socket.destroy());
      } else res.writeHead(200).end('ok');
    });
  });

  afterEach(() => {
    for (const res of held.splice(0)) res.destroy();
  });

  it('when the receiver never answers, then the attempt fails with timeout at timeoutMs and the connection is closed', async () => {
    const clock = createManualClock();
    const post = createGuardedPost({ policy: allowing('127.0.0.1'), clock });
    const pending = post.post({ url: `${receiver.base()}/hang`, body: 'x', timeoutMs: 200 });
    await eventually('the receiver holds the request', () => held.length === 1);
    await clock.advance(199);
    await clock.advance(1);
    const result = expectKind(await pending, 'failed');
    expect(result).toMatchObject({ code: 'timeout', durationMs: 200 });
    expect(result.message).toContain('no answer within 200 ms');
    await eventually('the receiver saw the connection close', () => closedHangs === 1);
  });

  it('when the name never resolves, then the attempt fails with timeout', async () => {
    const clock = createManualClock();
    const post = createGuardedPost({ policy: strict, clock, lookup: () => new Promise(() => {}) });
    const pending = post.post({ url: 'http://hooks.example.test/x', body: '', timeoutMs: 500 });
    await clock.advance(500);
    expect(expectKind(await pending, 'failed').code).toBe('timeout');
  });

  it('when the receiver drops the connection, then the attempt fails with reset', async () => {
    const post = createGuardedPost({ policy: allowing('127.0.0.1'), clock: createManualClock() });
    expect(expectKind(await post.post({ url: `${receiver.base()}/drop`, body: 'x' }), 'failed').code).toBe('reset');
  });

  it('when the connection drops in the middle of the body, then the attempt fails with reset', async () => {
    const post = createGuardedPost({ policy: allowing('127.0.0.1'), clock: createManualClock() });
    const result = expectKind(await post.post({ url: `${receiver.base()}/half`, body: 'x' }), 'failed');
    expect(result.code).toBe('reset');
    expect(result.message).toContain('the answer (HTTP 200) broke off');
  });

  it('when nothing listens, then the attempt fails with connect', async () => {
    const post = createGuardedPost({ policy: allowing('127.0.0.1'), clock: createManualClock() });
    const port = await freePort();
    expect(expectKind(await post.post({ url: `http://127.0.0.1:${port}/x`, body: 'x' }), 'failed').code).toBe('connect');
  });

  it('when the name does not resolve, then the attempt fails with dns', async () => {
    const post = createGuardedPost({ policy: strict, clock: createManualClock(), lookup: fixedLookup({}) });
    const result = expectKind(await post.post({ url: 'http://nowhere.example.test/x', body: 'x' }), 'failed');
    expect(result.code).toBe('dns');
    expect(result.message).toContain('ENOTFOUND');
  });

  it('when the URL carries credentials and a query, then messages show neither (and the credentials are sent as basic auth)', async () => {
    const post = createGuardedPost({ policy: allowing('127.0.0.1'), clock: createManualClock() });
    const port = await freePort();
    const failed = expectKind(await post.post({ url: `http://hook:s3cret@127.0.0.1:${port}/x?token=abc`, body: '' }), 'failed');
    const blocked = expectKind(
      await createGuardedPost({ policy: strict }).post({ url: `http://hook:s3cret@127.0.0.1:${port}/x?token=abc`, body: '' }),
      'blocked',
    );
    for (const text of [failed.message, blocked.reason]) {
      expect(text).toContain(`127.0.0.1:${port}/x`);
      expect(text).not.toContain('s3cret');
      expect(text).not.toContain('token');
    }
    expectKind(await post.post({ url: `http://hook:s3cret@${receiver.base().slice('http://'.length)}/auth?token=abc`, body: '' }), 'answered');
    expect(receiver.requests.at(-1)).toMatchObject({
      url: '/auth?token=abc',
      headers: { authorization: `Basic ${Buffer.from('hook:s3cret').toString('base64')}` },
    });
  });
});

describe('guarded POST: the address guard', () => {
  let receiver: Receiver;
  let pinnedReceiver: Receiver;

  beforeAll(async () => {
    receiver = await startReceiver('127.0.0.1', (_req, res) => res.writeHead(200).end('ok'));
    pinnedReceiver = await startReceiver('127.0.0.2', (_req, res) => res.writeHead(200).end('pinned'));
  });

  it('when the URL is loopback and not listed, then it is blocked and the receiver sees no connection', async () => {
    const before = receiver.connections;
    const result = expectKind(await createGuardedPost({ policy: strict }).post({ url: `${receiver.base()}/x`, body: '' }), 'blocked');
    expect(result.reason).toContain('127.0.0.1 is a loopback address; list 127.0.0.1 in system.ini [notify] allow_hosts');
    expect(receiver.connections).toBe(before);
  });

  it('when localhost is used by name (the system resolver), then it is blocked too', async () => {
    const before = receiver.connections;
    const result = expectKind(await createGuardedPost({ policy: strict }).post({ url: `http://localhost:${receiver.port}/x`, body: '' }), 'blocked');
    expect(result.reason).toMatch(/localhost resolves to (127\.0\.0\.1|::1), a loopback address/);
    expect(receiver.connections).toBe(before);
  });

  it.each([
    ['the address', '127.0.0.1', undefined],
    ['a CIDR', '127.0.0.0/8', undefined],
    ['the host name', 'hooks.example.test', 'hooks.example.test'],
  ])('when loopback is listed by %s, then the delivery is answered', async (_what, allow, name) => {
    const lookup = fixedLookup({ 'hooks.example.test': ['127.0.0.1'] });
    const post = createGuardedPost({ policy: allowing(allow), lookup, clock: createManualClock() });
    const url = name ? `http://${name}:${receiver.port}/x` : `${receiver.base()}/x`;
    expect(expectKind(await post.post({ url, body: '' }), 'answered').body).toBe('ok');
  });

  it('when a name resolves to an allowed address and to loopback, then it is blocked (every record is checked)', async () => {
    const lookup = fixedLookup({ 'rebind.example.test': ['93.184.216.34', '127.0.0.1'] });
    const result = expectKind(await createGuardedPost({ policy: strict, lookup }).post({ url: 'http://rebind.example.test/x', body: '' }), 'blocked');
    expect(result.reason).toContain('rebind.example.test resolves to 127.0.0.1, a loopback address');
  });

  it('when the first record is allowed and reachable but another is refused, then nothing connects', async () => {
    const lookup = fixedLookup({ 'rebind.example.test': ['127.0.0.2', '127.0.0.1'] });
    const before = pinnedReceiver.connections;
    const post = createGuardedPost({ policy: allowing('127.0.0.2'), lookup });
    expectKind(await post.post({ url: `http://rebind.example.test:${pinnedReceiver.port}/x`, body: '' }), 'blocked');
    expect(pinnedReceiver.connections).toBe(before);
  });

  it('when a name resolves to an allowed address, then the connection goes to that address, resolved once per attempt, never reused', async () => {
    const lookup = fixedLookup({ 'hooks.example.test': ['127.0.0.2'] });
    const post = createGuardedPost({ policy: allowing('127.0.0.2'), lookup, clock: createManualClock() });
    const url = `http://hooks.example.test:${pinnedReceiver.port}/pinned`;
    const before = pinnedReceiver.connections;
    const first = expectKind(await post.post({ url, body: 'one' }), 'answered');
    const second = expectKind(await post.post({ url, body: 'two' }), 'answered');
    expect(first).toMatchObject({ body: 'pinned', address: '127.0.0.2' });
    expect(second).toMatchObject({ body: 'pinned', address: '127.0.0.2' });
    expect(lookup.calls).toEqual(['hooks.example.test', 'hooks.example.test']);
    expect(pinnedReceiver.connections - before).toBe(2);
    expect(pinnedReceiver.requests.slice(-2).map((r) => [r.body, r.localAddress, r.headers.host])).toEqual([
      ['one', '127.0.0.2', `hooks.example.test:${pinnedReceiver.port}`],
      ['two', '127.0.0.2', `hooks.example.test:${pinnedReceiver.port}`],
    ]);
  });

  it('when the URL is an IPv4-mapped loopback address, then it is blocked and the receiver sees no connection', async () => {
    const before = receiver.connections;
    const result = expectKind(await createGuardedPost({ policy: strict }).post({ url: `http://[::ffff:127.0.0.1]:${receiver.port}/x`, body: '' }), 'blocked');
    expect(result.reason).toContain('::ffff:7f00:1 (IPv4 127.0.0.1) is a loopback address');
    expect(receiver.connections).toBe(before);
  });

  it('when the URL is 0.0.0.0, then it is blocked and the receiver sees no connection', async () => {
    const listening = await startReceiver('0.0.0.0', (_req, res) => res.writeHead(200).end());
    const result = expectKind(await createGuardedPost({ policy: strict }).post({ url: `http://0.0.0.0:${listening.port}/x`, body: '' }), 'blocked');
    expect(result.reason).toContain('0.0.0.0 is the unspecified address');
    expect(listening.connections).toBe(0);
  });

  it('when the URL is the metadata address, then it is blocked as metadata, not merely link-local', async () => {
    const result = expectKind(await createGuardedPost({ policy: strict }).post({ url: 'http://169.254.169.254/latest/meta-data/', body: '' }), 'blocked');
    expect(result.reason).toContain('169.254.169.254 is a cloud metadata service address');
  });

  it.each(['ftp://127.0.0.1/x', 'file:///etc/passwd', 'gopher://example.com/', 'not a url'])('when the URL is %j, then it is blocked', async (url) => {
    expectKind(await createGuardedPost({ policy: allowing('127.0.0.1') }).post({ url, body: '' }), 'blocked');
  });
});

describe('guarded POST over TLS', () => {
  const tempDir = tempDirs('confhub-guard-tls-');
  let server: HttpsServer;
  let port: number;
  const serverNames: (string | undefined)[] = [];
  let dir: string;

  beforeAll(async () => {
    dir = tempDir();
    await promisify(execFile)('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=hooks.example.test',
      '-addext',
      'subjectAltName=DNS:hooks.example.test,IP:127.0.0.1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ]);
    server = createHttpsServer(
      {
        key: readFileSync(join(dir, 'key.pem')),
        cert: readFileSync(join(dir, 'cert.pem')),
        SNICallback: (name, done) => {
          serverNames.push(name);
          done(null);
        },
      },
      (_req, res) => res.writeHead(200).end('tls ok'),
    );
    server.on('tlsClientError', () => {});
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('when the certificate is self-signed, then the attempt fails with tls', async () => {
    const post = createGuardedPost({ policy: allowing('127.0.0.1'), clock: createManualClock() });
    const result = expectKind(await post.post({ url: `https://127.0.0.1:${port}/x`, body: '' }), 'failed');
    expect(result.code).toBe('tls');
  });

  it('when the URL names a host pinned to an address, then TLS asks for the host name (SNI) and still fails on the self-signed certificate', async () => {
    const lookup = fixedLookup({ 'hooks.example.test': ['127.0.0.1'] });
    const post = createGuardedPost({ policy: allowing('hooks.example.test'), lookup, clock: createManualClock() });
    const result = expectKind(await post.post({ url: `https://hooks.example.test:${port}/x`, body: '' }), 'failed');
    expect(result.code).toBe('tls');
    expect(serverNames.at(-1)).toBe('hooks.example.test');
  });
});
