import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../src/core/backoff.js';

describe('backoff with full jitter', () => {
  it('when the draw spans [0, 1), then the delay spans [0, base·2^attempt), capped at max', () => {
    const at = (attempt: number, draw: number) => backoffDelay({ attempt, baseMs: 100, maxMs: 1000, random: () => draw });
    expect([at(0, 0), at(0, 0.5), at(0, 0.999)]).toEqual([0, 50, 99]);
    expect([at(2, 0.5), at(3, 0.5), at(4, 0.5)]).toEqual([200, 400, 500]);
    expect(at(10_000, 0.999)).toBe(999);
  });

  it('when a floor is given, then no draw goes below it; a negative attempt counts as the first', () => {
    expect(backoffDelay({ attempt: 0, baseMs: 100, maxMs: 1000, minMs: 25, random: () => 0 })).toBe(25);
    expect(backoffDelay({ attempt: -3, baseMs: 100, maxMs: 1000, random: () => 0.5 })).toBe(50);
  });
});
