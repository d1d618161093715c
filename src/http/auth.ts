/**
 * x-api-key authentication. The presented key and the configured key are both hashed with
 * sha256 and compared with timingSafeEqual, so neither the content nor the length of the key
 * leaks through timing. The configured key is read from config.ini on each request (through the
 * store's snapshot cache), so a key rotated through the API or by hand takes effect at once. A key
 * that may not guard the API (a publicly known one, or none) never takes effect: a hand edit that
 * writes one leaves the last acceptable key working (the sync status reports a known key invalid).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import type { Actor } from '../core/actor.js';
import { AppError } from '../core/errors.js';

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** apphub's own words: legacy clients show `details` to their users, so they stay the same. */
const LEGACY_DETAILS = { missing: 'No API Key provided', invalid: 'Invalid API Key' } as const;

export interface ApiKeyAuthOptions {
  /** The configured key; undefined or '' refuses every request until an acceptable key was seen. */
  currentKey(res: Response): string | undefined;
  /** Whether a configured key may guard the API (not a publicly known one); default any non-empty key. */
  acceptable?: (key: string) => boolean;
  /** The key config.ini held when the app was made: the one that keeps working if the first key seen is not acceptable. */
  initialKey?: string | undefined;
  /** Told about every request refused for a missing or wrong key (the failed-authentication limit). */
  onRefused?: (req: Request, res: Response) => void;
}

export function createApiKeyAuth({ currentKey, onRefused, acceptable = () => true, initialKey }: ApiKeyAuthOptions): RequestHandler {
  /** The key config.ini held when last looked at; the digest is of the last acceptable one. */
  let seenKey: string | undefined;
  let cachedDigest: Buffer | undefined;
  // A short, non-reversible name of the key for the audit log: of the configured key, which is
  // the presented one whenever authentication succeeds.
  let cachedActorId = '';
  const adopt = (key: string | undefined): void => {
    if (key && acceptable(key)) {
      cachedDigest = digest(key);
      cachedActorId = `key:${cachedDigest.toString('hex').slice(0, 12)}`;
    }
  };
  adopt(initialKey);
  return (req, res, next) => {
    const presented = req.get('x-api-key');
    if (!presented) {
      onRefused?.(req, res);
      next(new AppError('API_KEY_MISSING', { details: LEGACY_DETAILS.missing }));
      return;
    }
    const key = currentKey(res);
    if (key !== seenKey) {
      seenKey = key;
      adopt(key);
    }
    const presentedDigest = digest(presented);
    // Compare even when no key is configured, so that case takes the same time.
    const expected = cachedDigest ?? digest('\u0000no key configured');
    if (!timingSafeEqual(presentedDigest, expected) || !cachedDigest) {
      onRefused?.(req, res);
      next(new AppError('API_KEY_INVALID', { details: LEGACY_DETAILS.invalid }));
      return;
    }
    res.locals.actor = {
      type: 'api',
      id: cachedActorId,
      remoteAddress: req.ip,
      userAgent: req.get('user-agent'),
      requestId: res.locals.requestId,
    } satisfies Actor;
    next();
  };
}
