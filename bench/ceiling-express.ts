/**
 * Express ceiling: a bare Express 5 app answering GET /api/v1/settings/gitea with confhub's own
 * answer body behind the same x-api-key check (sha256 of both keys, timingSafeEqual), nothing
 * else. x-powered-by and Express's body ETag are off, as in confhub, so this is the best an
 * Express app can do for this request on this machine.
 */
import { timingSafeEqual } from 'node:crypto';
import express from 'express';
import { listenExpress, loadReferenceServerEnv, sha256, UNAUTHORIZED_BODY } from './reference-server-env.js';

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

listenExpress(app, env);
