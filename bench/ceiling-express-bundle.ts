/**
 * Express ceiling for bench/pull.ts: a bare Express 5 app answering a target's bundle route with
 * the tar confhub answered and confhub's headers for it, behind a Bearer token check (sha256 of the
 * presented token, timingSafeEqual against the expected one's), nothing else: no database lookup
 * of the token, no audit, no rate limit, no access log. x-powered-by and Express's body ETag are
 * off, as in confhub.
 */
import { timingSafeEqual } from 'node:crypto';
import express from 'express';
import { listenExpress, BEARER, loadBundleServerEnv, sha256, UNAUTHORIZED_BODY } from './reference-server-env.js';

const env = loadBundleServerEnv();
const app = express();
app.disable('x-powered-by');
app.set('etag', false);

app.use((req, res, next) => {
  const bearer = BEARER.exec(req.get('authorization') ?? '');
  if (!bearer || !timingSafeEqual(sha256(bearer[1]!), env.expectedDigest)) {
    res.status(401).type('application/json').send(UNAUTHORIZED_BODY);
    return;
  }
  next();
});

app.get(env.path, (_req, res) => {
  for (const [name, value] of Object.entries(env.headers)) res.setHeader(name, value);
  res.setHeader('Content-Length', env.body.length);
  res.end(env.body);
});

listenExpress(app, env);
