/**
 * Exponential backoff with full jitter: a delay drawn uniformly from [0, min(max, base·2^attempt)).
 * Full jitter spreads retries of many callers that failed together (a restarted Docker engine,
 * a remote that came back) instead of letting them return in waves.
 */
export interface BackoffInput {
  /** 0 for the first retry. */
  readonly attempt: number;
  readonly baseMs: number;
  readonly maxMs: number;
  /** A floor under the drawn delay (a crash loop must not spin); default 0. */
  readonly minMs?: number;
  /** 0 <= x < 1; injected so tests choose the draw. */
  readonly random?: () => number;
}

export function backoffDelay({ attempt, baseMs, maxMs, minMs = 0, random = Math.random }: BackoffInput): number {
  // Capped exponent: 2 ** 1024 is Infinity, and any attempt past ~30 is at the ceiling anyway.
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.max(minMs, Math.floor(random() * ceiling));
}
