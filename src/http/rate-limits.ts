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
 * Each limit is a fixed window per address that starts with its first counted request. Both are
 * checked by one middleware, and the per-request work is a Map lookup or two: a busy client with
 * the right key pays next to nothing for the failure limit. WebSocket upgrades, which never reach
 * Express, are counted against the same windows by address (admitAddress, authenticationRefusedFrom).
 */
import { createHash } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import { ipKeyGenerator } from 'express-rate-limit';
import { AppError } from '../core/errors.js';
import { sendError } from './errors.js';

export interface RateLimitOptions {
  /** Requests per minute; 0 disables. */
  perMinute: number;
  /** Failed authentications per 15 minutes; 0 disables. */
  authFailuresPer15Min: number;
  /** Epoch milliseconds (tests move it). */
  now?: () => number;
}

/** Why a request that never reaches Express (a WebSocket upgrade) is refused: as the 429 of `check`. */
export interface LimitRefusal {
  readonly error: AppError;
  readonly retryAfterSeconds: number;
}

export interface RateLimits {
  /** Mounted before authentication; undefined when both limits are off. */
  readonly check: RequestHandler | undefined;
  /** Authentication calls this for every request it refuses (a missing or wrong key). */
  authenticationRefused(req: Request, res: Response): void;
  /**
   * `check` for a request Express does not see (a WebSocket upgrade), by its client address:
   * counted against the same windows; a refusal when over either limit.
   */
  admitAddress(address: string): LimitRefusal | undefined;
  /** `authenticationRefused` for such a request. */
  authenticationRefusedFrom(address: string): void;
}

const MINUTE_MS = 60_000;
const TOO_MANY_REQUESTS = 'Too many requests; try again later';
const TOO_MANY_FAILURES = 'Too many failed authentications; try again later';
const AUTH_FAILURE_WINDOW_MS = 15 * MINUTE_MS;
/** Distinct client addresses whose keys are remembered before the memo starts over. */
const MAX_REMEMBERED_ADDRESSES = 10_000;

interface Window {
  count: number;
  /** Epoch ms when the window ends. */
  readonly resetAt: number;
  /** This window's `RateLimit-Policy` member (with the draft-8 `pk`, a short hash of the client key). */
  readonly policy: string;
}

interface FixedWindowOptions {
  readonly name: string;
  readonly limit: number;
  readonly windowMs: number;
}

function secondsUntil(window: Window, time: number): number {
  return Math.max(0, Math.ceil((window.resetAt - time) / 1000));
}

function partitionKeyOf(key: string): string {
  return Buffer.from(createHash('sha256').update(key).digest('hex').slice(0, 12)).toString('base64');
}

/** Each limit adds one member to the header's list. */
function addToList(res: Response, { name, member }: { name: string; member: string }): void {
  const previous = res.getHeader(name);
  res.setHeader(name, previous === undefined ? member : `${String(previous)}, ${member}`);
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
    limit,
    current,
    /** Counts one request; returns its window. */
    hit(key: string, time: number): Window {
      let window = current(key, time);
      if (window === undefined) {
        if (windows.size >= sweepAbove) sweep(time);
        window = { count: 0, resetAt: time + windowMs, policy: `${policy}; pk=:${partitionKeyOf(key)}:` };
        windows.set(key, window);
      }
      window.count += 1;
      return window;
    },
    /** Adds this limit's draft-8 headers. */
    headers(res: Response, window: Window, time: number): void {
      addToList(res, { name: 'RateLimit', member: `"${name}"; r=${Math.max(limit - window.count, 0)}; t=${secondsUntil(window, time)}` });
      addToList(res, { name: 'RateLimit-Policy', member: window.policy });
    },
    /** The 429 answer. */
    refuse(res: Response, { window, time, details }: { window: Window; time: number; details: string }): void {
      res.setHeader('Retry-After', String(secondsUntil(window, time)));
      sendError(res, new AppError('RATE_LIMITED', { details }));
    },
    /** The same refusal, for a request answered outside Express. */
    refusal({ window, time, details }: { window: Window; time: number; details: string }): LimitRefusal {
      return { error: new AppError('RATE_LIMITED', { details }), retryAfterSeconds: secondsUntil(window, time) };
    },
  };
}

type FixedWindows = ReturnType<typeof createFixedWindows>;

const addressOf = (req: Request): string => req.ip ?? req.socket.remoteAddress ?? '';

export function createRateLimits({ perMinute, authFailuresPer15Min, now = Date.now }: RateLimitOptions): RateLimits {
  const minute = perMinute > 0 ? createFixedWindows({ name: `${perMinute}-in-1min`, limit: perMinute, windowMs: MINUTE_MS }) : undefined;
  const failures: FixedWindows | undefined =
    authFailuresPer15Min > 0 ? createFixedWindows({ name: 'auth-failures', limit: authFailuresPer15Min, windowMs: AUTH_FAILURE_WINDOW_MS }) : undefined;

  // The client key as express-rate-limit makes it (the address; an IPv6 address by its /56
  // network), remembered per address: working out an IPv6 network parses the address twice.
  const keyOfAddress = new Map<string, string>();
  function clientKey(address: string): string {
    let key = keyOfAddress.get(address);
    if (key === undefined) {
      if (keyOfAddress.size >= MAX_REMEMBERED_ADDRESSES) keyOfAddress.clear();
      key = ipKeyGenerator(address);
      keyOfAddress.set(address, key);
    }
    return key;
  }

  const check: RequestHandler | undefined =
    minute || failures
      ? (req, res, next) => {
          const time = now();
          const key = clientKey(addressOf(req));
          if (minute) {
            const window = minute.hit(key, time);
            minute.headers(res, window, time);
            if (window.count > minute.limit) {
              minute.refuse(res, { window, time, details: TOO_MANY_REQUESTS });
              return;
            }
          }
          const locked = failures?.current(key, time);
          if (failures && locked && locked.count >= failures.limit) {
            failures.headers(res, locked, time);
            failures.refuse(res, { window: locked, time, details: TOO_MANY_FAILURES });
            return;
          }
          next();
        }
      : undefined;

  return {
    check,
    authenticationRefused(req, res) {
      if (!failures) return;
      const time = now();
      failures.headers(res, failures.hit(clientKey(addressOf(req)), time), time);
    },
    admitAddress(address) {
      if (!minute && !failures) return undefined;
      const time = now();
      const key = clientKey(address);
      if (minute) {
        const window = minute.hit(key, time);
        if (window.count > minute.limit) return minute.refusal({ window, time, details: TOO_MANY_REQUESTS });
      }
      const locked = failures?.current(key, time);
      if (failures && locked && locked.count >= failures.limit) return failures.refusal({ window: locked, time, details: TOO_MANY_FAILURES });
      return undefined;
    },
    authenticationRefusedFrom(address) {
      failures?.hit(clientKey(address), now());
    },
  };
}
