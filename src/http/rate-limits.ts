/**
 * Two per-client-address limits, in memory, both answering 429 RATE_LIMITED with the IETF draft-8
 * `RateLimit` / `RateLimit-Policy` headers (the format express-rate-limit writes) and
 * `Retry-After`:
 *
 * - requests per minute on every /api request, before authentication;
 * - failed authentications per 15 minutes. Only a request that authentication refused counts,
 *   once its refusal is decided; a request that authenticates never touches the counter, however
 *   long it runs and however it ends (a closed event stream, a slow upload, a client that hangs
 *   up). An address over the limit gets 429 for every /api request until its window ends, the
 *   right key included, so guessing keys stays slow.
 *
 * Each limit is a fixed window per address that starts with its first counted request. The
 * per-request work is a Map lookup: a busy client with the right key pays nothing for the
 * failure limit, and the per-minute limit's headers reuse the window's partition key.
 */
import { createHash } from 'node:crypto';
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import { ipKeyGenerator } from 'express-rate-limit';
import { AppError, isAppError } from '../core/errors.js';
import { sendError } from './errors.js';

export interface RateLimitOptions {
  /** Requests per minute; 0 disables. */
  perMinute: number;
  /** Failed authentications per 15 minutes; 0 disables. */
  authFailuresPer15Min: number;
  /** Epoch milliseconds (tests move it). */
  now?: () => number;
}

export interface RateLimits {
  /** Mounted before authentication, in order; a disabled limit adds no layer. */
  readonly beforeAuth: RequestHandler[];
  /** Mounted right after authentication: counts the refusals it passes on (none when disabled). */
  readonly afterAuth: ErrorRequestHandler[];
}

const MINUTE_MS = 60_000;
const AUTH_FAILURE_WINDOW_MS = 15 * MINUTE_MS;
const AUTH_FAILURE_CODES = new Set(['API_KEY_MISSING', 'API_KEY_INVALID']);

interface Window {
  count: number;
  /** Epoch ms when the window ends. */
  readonly resetAt: number;
  /** The draft-8 `pk` parameter: a short hash of the client key, computed once per window. */
  readonly partitionKey: string;
}

interface FixedWindowOptions {
  readonly name: string;
  readonly limit: number;
  readonly windowMs: number;
}

/** Client key as express-rate-limit makes it: the address, an IPv6 address by its /56 network. */
function clientKey(req: Request): string {
  return ipKeyGenerator(req.ip ?? req.socket.remoteAddress ?? '');
}

function secondsUntil(window: Window, time: number): number {
  return Math.max(0, Math.ceil((window.resetAt - time) / 1000));
}

function partitionKeyOf(key: string): string {
  return Buffer.from(createHash('sha256').update(key).digest('hex').slice(0, 12)).toString('base64');
}

/** Counters per client key; expired windows are dropped as the map grows, so it stays bounded by the active clients. */
function createFixedWindows({ name, limit, windowMs }: FixedWindowOptions) {
  const windows = new Map<string, Window>();
  let sweepAbove = 1024;
  const policy = `"${name}"; q=${limit}; w=${Math.ceil(windowMs / 1000)}`;

  function sweep(time: number): void {
    for (const [key, window] of windows) if (window.resetAt <= time) windows.delete(key);
    sweepAbove = Math.max(1024, windows.size * 2);
  }

  /** The client's current window, if it has one. */
  function current(key: string, time: number): Window | undefined {
    const window = windows.get(key);
    if (window === undefined || window.resetAt > time) return window;
    windows.delete(key);
    return undefined;
  }

  return {
    current,
    /** Counts one request; returns its window. */
    hit(key: string, time: number): Window {
      let window = current(key, time);
      if (window === undefined) {
        if (windows.size >= sweepAbove) sweep(time);
        window = { count: 0, resetAt: time + windowMs, partitionKey: partitionKeyOf(key) };
        windows.set(key, window);
      }
      window.count += 1;
      return window;
    },
    /** Appends this limit's draft-8 headers (several limits add one list member each). */
    headers(res: Response, window: Window, time: number): void {
      res.append('RateLimit', `"${name}"; r=${Math.max(limit - window.count, 0)}; t=${secondsUntil(window, time)}`);
      res.append('RateLimit-Policy', `${policy}; pk=:${window.partitionKey}:`);
    },
    /** The 429 answer. */
    refuse(res: Response, { window, time, details }: { window: Window; time: number; details: string }): void {
      res.setHeader('Retry-After', String(secondsUntil(window, time)));
      sendError(res, new AppError('RATE_LIMITED', { details }));
    },
  };
}

function perMinuteLimit(limit: number, now: () => number): RequestHandler {
  const windows = createFixedWindows({ name: `${limit}-in-1min`, limit, windowMs: MINUTE_MS });
  return (req, res, next) => {
    const time = now();
    const window = windows.hit(clientKey(req), time);
    windows.headers(res, window, time);
    if (window.count > limit) {
      windows.refuse(res, { window, time, details: 'Too many requests; try again later' });
      return;
    }
    next();
  };
}

function authFailureLimit(limit: number, now: () => number): { guard: RequestHandler; count: ErrorRequestHandler } {
  const windows = createFixedWindows({ name: 'auth-failures', limit, windowMs: AUTH_FAILURE_WINDOW_MS });
  return {
    guard: (req, res, next) => {
      const time = now();
      const window = windows.current(clientKey(req), time);
      if (window === undefined || window.count < limit) {
        next();
        return;
      }
      windows.headers(res, window, time);
      windows.refuse(res, { window, time, details: 'Too many failed authentications; try again later' });
    },
    // biome-ignore lint/complexity/useMaxParams: Express tells an error handler by its four parameters.
    count: (error, req, res, next) => {
      if (isAppError(error) && AUTH_FAILURE_CODES.has(error.code)) {
        const time = now();
        windows.headers(res, windows.hit(clientKey(req), time), time);
      }
      next(error);
    },
  };
}

export function createRateLimits({ perMinute, authFailuresPer15Min, now = Date.now }: RateLimitOptions): RateLimits {
  const beforeAuth: RequestHandler[] = [];
  const afterAuth: ErrorRequestHandler[] = [];
  if (perMinute > 0) beforeAuth.push(perMinuteLimit(perMinute, now));
  if (authFailuresPer15Min > 0) {
    const failures = authFailureLimit(authFailuresPer15Min, now);
    beforeAuth.push(failures.guard);
    afterAuth.push(failures.count);
  }
  return { beforeAuth, afterAuth };
}
