/**
 * A request id for every request (the caller's x-request-id when it is sane, else a new one),
 * echoed in the response, and one access-log line per request. The log carries the path only:
 * query strings may hold values (legacy `?key=&value=`), which never reach a log.
 */
import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

export function createRequestContext(logger: Logger): RequestHandler {
  const log = logger.child({ module: 'http' });
  return (req, res, next) => {
    const given = req.get('x-request-id');
    const requestId = given && REQUEST_ID.test(given) ? given : randomUUID();
    res.locals.requestId = requestId;
    res.setHeader('x-request-id', requestId);
    if (log.isLevelEnabled('info')) {
      const started = process.hrtime.bigint();
      res.on('finish', () => {
        log.info({ requestId, method: req.method, path: req.path, status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'request');
      });
    }
    next();
  };
}
