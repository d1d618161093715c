/**
 * Who may use the API, one set per confhub shared by every way in (the HTTP routes and the
 * WebSocket channel): one key verifier, so both always accept the same key (the last acceptable
 * one while config.ini holds one that may not guard the API), and one pair of rate limits, so a
 * key guessed through the WebSocket counts toward the same failed-authentication limit as one
 * guessed over HTTP.
 */
import type { ReadOnlyIniStore, Snapshot } from '../settings/store.js';
import { isUsableApiKey } from '../settings/field-kinds.js';
import { createKeyVerifier, type KeyVerifier } from './api-key.js';
import { createRateLimits, type RateLimits } from './rate-limits.js';

export interface ApiAccessOptions {
  settings: ReadOnlyIniStore;
  /** Requests per minute per client address; 0 disables. */
  rateLimitPerMinute: number;
  /** Failed authentications per 15 minutes per client address; 0 disables. */
  authFailuresPer15Min: number;
}

export interface ApiAccess {
  readonly keys: KeyVerifier;
  readonly limits: RateLimits;
  /** The key `snapshot` holds; without one (config.ini does not parse now), the last that parsed. */
  configuredKey(snapshot: Snapshot | undefined): string | undefined;
}

export function createApiAccess({ settings, rateLimitPerMinute, authFailuresPer15Min }: ApiAccessOptions): ApiAccess {
  const keyOf = (snapshot: Snapshot | undefined): string | undefined => snapshot?.resolved.doc.byName.get('api_key')?.byKey.get('key')?.value;
  return {
    keys: createKeyVerifier({ acceptable: isUsableApiKey, initialKey: keyOf(settings.lastGood()) }),
    limits: createRateLimits({ perMinute: rateLimitPerMinute, authFailuresPer15Min }),
    // A broken config.ini must not lock the operator out: the last key that parsed still works.
    configuredKey: (snapshot) => keyOf(snapshot ?? settings.lastGood()),
  };
}
