/**
 * A request id for every request (the caller's x-request-id when it is sane, else a new one),
 * echoed in the response, and one `finish` listener per request that writes the access-log line
 * and reports the answer (metrics). The log carries the path only: query strings may hold values
 * (legacy `?key=&value=`), which never reach a log.
 */
import { randomUUID } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import type { AnsweredRequest } from '../metrics.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * Asked by health checks and scrapers all day (the image's own health check alone made about
 * 8,600 lines a day): their answers are logged at `debug`, and at `info` only when they fail.
 */
const PROBE_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics']);

export interface RequestContextOptions {
  logger: Logger;
  /** Told about every answered request. */
  onAnswered?: (answered: AnsweredRequest) => void;
}

export function createRequestContext({ logger, onAnswered }: RequestContextOptions): RequestHandler {
  // The access line has fixed fields (request id, method, path, status, ms), none of which the
  // redaction list names, so it skips redaction: on a busy server that check was a sizeable
  // share of every request.
  const log = logger.child({ module: 'http' }, { redact: [] });
  // The level is set once at start-up; one shared listener, no closure per request.
  const logRequests = log.isLevelEnabled('info');
  const logProbes = log.isLevelEnabled('debug');
  function finished(this: Response): void {
    const { req } = this;
    const seconds = Number(process.hrtime.bigint() - (this.locals.startedAt as bigint)) / 1e9;
    if (logRequests) {
      // The whole path: inside a router `req.path` is relative to where it is mounted.
      const path = req.baseUrl + req.path;
      const line = { requestId: this.locals.requestId, method: req.method, path, status: this.statusCode, ms: seconds * 1000 };
      if (!PROBE_PATHS.has(path) || this.statusCode >= 500) log.info(line, 'request');
      else if (logProbes) log.debug(line, 'request');
    }
    onAnswered?.({ req, res: this, seconds });
  }
  const listen = logRequests || onAnswered !== undefined;
  return (req, res, next) => {
    const given = req.get('x-request-id');
    const requestId = given && REQUEST_ID.test(given) ? given : randomUUID();
    res.locals.requestId = requestId;
    res.setHeader('x-request-id', requestId);
    if (listen) {
      res.locals.startedAt = process.hrtime.bigint();
      res.on('finish', finished);
    }
    next();
  };
}
