/**
 * x-api-key authentication of the HTTP API, through the key verifier it shares with the
 * WebSocket channel (api-key.ts: constant-time, the last acceptable key). The configured key is
 * read from config.ini on each request (through the store's snapshot cache), so a key rotated
 * through the API or by hand takes effect at once.
 */
import type { Request, RequestHandler, Response } from 'express';
import type { Actor } from '../core/actor.js';
import { AppError } from '../core/errors.js';
import type { KeyVerifier } from './api-key.js';

/** apphub's own words: legacy clients show `details` to their users, so they stay the same. */
const LEGACY_DETAILS = { API_KEY_MISSING: 'No API Key provided', API_KEY_INVALID: 'Invalid API Key' } as const;

export interface ApiKeyAuthOptions {
  keys: KeyVerifier;
  /** The configured key; undefined or '' refuses every request until an acceptable key was seen. */
  currentKey(res: Response): string | undefined;
  /** Told about every request refused for a missing or wrong key (the failed-authentication limit). */
  onRefused?: (req: Request, res: Response) => void;
}

export function createApiKeyAuth({ keys, currentKey, onRefused }: ApiKeyAuthOptions): RequestHandler {
  return (req, res, next) => {
    const presented = req.get('x-api-key');
    // A request without a key does not need config.ini read for it.
    const verdict = keys.verify(presented, presented ? currentKey(res) : undefined);
    if (!verdict.ok) {
      onRefused?.(req, res);
      next(new AppError(verdict.code, { details: LEGACY_DETAILS[verdict.code] }));
      return;
    }
    res.locals.actor = {
      type: 'api',
      id: verdict.actorId,
      remoteAddress: req.ip,
      userAgent: req.get('user-agent'),
      requestId: res.locals.requestId,
    } satisfies Actor;
    next();
  };
}
