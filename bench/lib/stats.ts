export function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** Exact nearest-rank percentile of ascending values (no interpolation, no buckets). */
export function nearestRank(sorted: ArrayLike<number>, percent: number): number {
  const n = sorted.length;
  return sorted[Math.min(n - 1, Math.max(0, Math.ceil((percent / 100) * n) - 1))]!;
}

export interface Summary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Nearest-rank summary, rounded to 0.01; all NaN (null in JSON) when there are no values. */
export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) return { count: 0, min: NaN, mean: NaN, p50: NaN, p90: NaN, p99: NaN, max: NaN };
  const sorted = [...values].sort((a, b) => a - b);
  return {
    count: sorted.length,
    min: round(sorted[0]!, 2),
    mean: round(sorted.reduce((a, b) => a + b, 0) / sorted.length, 2),
    p50: round(nearestRank(sorted, 50), 2),
    p90: round(nearestRank(sorted, 90), 2),
    p99: round(nearestRank(sorted, 99), 2),
    max: round(sorted[sorted.length - 1]!, 2),
  };
}

export function countBy<T>(items: Iterable<T>, key: (item: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const item of items) out[key(item)] = (out[key(item)] ?? 0) + 1;
  return out;
}
