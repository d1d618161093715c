/**
 * node:http floor: a bare node:http server with the same x-api-key check (sha256 of both keys,
 * timingSafeEqual) answering confhub's GET /api/v1/settings/gitea body; no framework at all.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { announceReady, loadReferenceServerEnv, sha256, UNAUTHORIZED_BODY } from './reference-server-env.js';

const env = loadReferenceServerEnv();
const body = Buffer.from(env.body, 'utf8');
const headers = { 'content-type': 'application/json; charset=utf-8', 'content-length': String(body.length) };
const unauthorized = Buffer.from(UNAUTHORIZED_BODY, 'utf8');
const unauthorizedHeaders = { 'content-type': 'application/json; charset=utf-8', 'content-length': String(unauthorized.length) };
const notFound = Buffer.from('{"error":"Not Found"}', 'utf8');

const server = createServer((req, res) => {
  const presented = req.headers['x-api-key'];
  if (typeof presented !== 'string' || presented === '' || !timingSafeEqual(sha256(presented), env.expectedDigest)) {
    res.writeHead(401, unauthorizedHeaders).end(unauthorized);
    return;
  }
  if (req.method !== 'GET' || req.url !== env.path) {
    res.writeHead(404, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(notFound.length) }).end(notFound);
    return;
  }
  res.writeHead(200, headers).end(body);
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.listen(env.port, env.host, () => announceReady((server.address() as AddressInfo).port));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
