/**
 * node:http floor for bench/pull.ts: a bare node:http server with the same Bearer token check
 * (sha256 of the presented token, timingSafeEqual) answering the tar confhub answered, with
 * confhub's headers for it; no framework at all.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { announceReady, BEARER, loadBundleServerEnv, sha256, UNAUTHORIZED_BODY } from './reference-server-env.js';

const env = loadBundleServerEnv();
const headers = { ...env.headers, 'content-length': String(env.body.length) };
const unauthorized = Buffer.from(UNAUTHORIZED_BODY, 'utf8');
const unauthorizedHeaders = { 'content-type': 'application/json; charset=utf-8', 'content-length': String(unauthorized.length) };
const notFound = Buffer.from('{"error":"Not Found"}', 'utf8');

const server = createServer((req, res) => {
  const bearer = BEARER.exec(req.headers.authorization ?? '');
  if (!bearer || !timingSafeEqual(sha256(bearer[1]!), env.expectedDigest)) {
    res.writeHead(401, unauthorizedHeaders).end(unauthorized);
    return;
  }
  if (req.method !== 'GET' || req.url !== env.path) {
    res.writeHead(404, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(notFound.length) }).end(notFound);
    return;
  }
  res.writeHead(200, headers).end(env.body);
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.listen(env.port, env.host, () => announceReady((server.address() as AddressInfo).port));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
