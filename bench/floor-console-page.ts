/**
 * node:http floor for bench/console.ts: the console's page, script and styles, the bytes and
 * headers the console program answered (gzip when the browser takes it, as the console does),
 * and nothing else: no session, no API, no WebSocket. Every other path is a bare 404, so the
 * page's own `fetch('/session')` finds nobody signed in and the page stops at its sign-in form.
 *
 * BENCH_FLOOR_FILES names a JSON file written by bench/console.ts:
 * `{"<path>": {"headers": {…}, "raw": "<base64>", "gzip": "<base64>"}}`.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { announceReady } from './reference-server-env.js';

interface StoredFile {
  readonly headers: Record<string, string>;
  readonly raw: string;
  readonly gzip: string;
}

interface Served {
  readonly headers: Record<string, string>;
  readonly raw: Buffer;
  readonly gzip: Buffer;
}

const manifest = process.env.BENCH_FLOOR_FILES;
if (!manifest) {
  process.stderr.write('console page floor: BENCH_FLOOR_FILES must be set (bench/console.ts sets it)\n');
  process.exit(2);
}
const stored = JSON.parse(readFileSync(manifest, 'utf8')) as Record<string, StoredFile>;
const files = new Map<string, Served>(
  Object.entries(stored).map(([path, file]) => [path, { headers: file.headers, raw: Buffer.from(file.raw, 'base64'), gzip: Buffer.from(file.gzip, 'base64') }]),
);
const notFound = Buffer.from('not found\n');

const server = createServer((req, res) => {
  const file = files.get((req.url ?? '/').split('?')[0] ?? '/');
  if (req.method !== 'GET' || file === undefined) {
    res.writeHead(404, { 'content-type': 'text/plain', 'content-length': notFound.length }).end(notFound);
    return;
  }
  const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  const body = gzip ? file.gzip : file.raw;
  res.writeHead(200, { ...file.headers, vary: 'accept-encoding', 'content-length': body.length, ...(gzip ? { 'content-encoding': 'gzip' } : {}) });
  res.end(body);
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.listen(Number(process.env.BENCH_PORT ?? '0'), '127.0.0.1', () => announceReady((server.address() as AddressInfo).port));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
