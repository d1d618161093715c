/**
 * The API key check, one implementation for every way a key is presented: the `x-api-key` header
 * of the HTTP API and the `key.<key>` subprotocol of the WebSocket channel. The presented key and
 * the configured key are both hashed with sha256 and compared with timingSafeEqual, so neither
 * the content nor the length of the key leaks through timing. A configured key that may not guard
 * the API (a publicly known one, or none) never takes effect: the last acceptable key seen keeps
 * working. One verifier is shared by both doors, so they always agree on which key that is.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

export type KeyVerdict =
  /** `actorId`: a short, non-reversible name of the key for the audit log. */
  { readonly ok: true; readonly actorId: string } | { readonly ok: false; readonly code: 'API_KEY_MISSING' | 'API_KEY_INVALID' };

export interface KeyVerifierOptions {
  /** Whether a configured key may guard the API (not a publicly known one); default any non-empty key. */
  acceptable?: (key: string) => boolean;
  /** The key config.ini held at start: the one that keeps working if the first key seen is not acceptable. */
  initialKey?: string | undefined;
}

export interface KeyVerifier {
  /** `configured`: the key config.ini holds now (undefined or '' refuses every key until an acceptable one was seen). */
  verify(presented: string | undefined, configured: string | undefined): KeyVerdict;
}

export function createKeyVerifier({ acceptable = () => true, initialKey }: KeyVerifierOptions = {}): KeyVerifier {
  /** The key config.ini held when last looked at; the digest is of the last acceptable one. */
  let seenKey: string | undefined;
  let cachedDigest: Buffer | undefined;
  // Named after the configured key, which is the presented one whenever authentication succeeds.
  let cachedActorId = '';
  const adopt = (key: string | undefined): void => {
    if (key && acceptable(key)) {
      cachedDigest = digest(key);
      cachedActorId = `key:${cachedDigest.toString('hex').slice(0, 12)}`;
    }
  };
  adopt(initialKey);
  return {
    verify(presented, configured) {
      if (!presented) return { ok: false, code: 'API_KEY_MISSING' };
      if (configured !== seenKey) {
        seenKey = configured;
        adopt(configured);
      }
      const presentedDigest = digest(presented);
      // Compare even when no key is configured, so that case takes the same time.
      const expected = cachedDigest ?? digest('\u0000no key configured');
      if (!timingSafeEqual(presentedDigest, expected) || !cachedDigest) return { ok: false, code: 'API_KEY_INVALID' };
      return { ok: true, actorId: cachedActorId };
    },
  };
}
