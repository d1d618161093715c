/**
 * Express ceiling: a bare Express 5 app answering GET /api/v1/settings/gitea with confhub's own
 * answer body behind the same x-api-key check (sha256 of both keys, timingSafeEqual), nothing
 * else. x-powered-by and Express's body ETag are off, as in confhub, so this is the best an
 * Express app can do for this request on this machine.
 */
import { timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { announceReady, loadReferenceServerEnv, sha256, UNAUTHORIZED_BODY } from './reference-server-env.js';

const env = loadReferenceServerEnv();
const app = express();
app.disable('x-powered-by');
app.set('etag', false);

app.use((req, res, next) => {
  const presented = req.get('x-api-key');
  if (!presented || !timingSafeEqual(sha256(presented), env.expectedDigest)) {
    res.status(401).type('application/json').send(UNAUTHORIZED_BODY);
    return;
  }
  next();
});

app.get(env.path, (_req, res) => {
  res.type('application/json').send(env.body);
});

const server = app.listen(env.port, env.host, (error?: Error) => {
  if (error) throw error;
  announceReady((server.address() as AddressInfo).port);
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
process.on('SIGTERM', () => server.close(() => process.exit(0)));
