/**
 * The GET load of the HTTP benches and its budget: autocannon in the bench process, 16
 * connections, no pipelining, every 2xx answer's time kept for exact percentiles. bench/run.ts
 * measures confhub's GET with it against the Express ceiling; other benches that judge a GET by
 * the same budget use the same load, so their numbers compare.
 */
import autocannon from 'autocannon';
import type { Starting } from './processes.js';
import { nearestRank, round, type Summary } from './stats.js';

export const GET_CONNECTIONS = 16;
export const PIPELINING = 1;

/** The GET budget (README, Benchmark): against the Express ceiling serving the same body, and its p99. */
export const GET_BUDGET = { vsCeilingMin: 0.75, p99MaxMs: 20 } as const;

export type Latency = Omit<Summary, 'count' | 'min'>;

/** Response times of 2xx answers, kept whole so percentiles are exact rather than bucketed. */
export class LatencySamples {
  private values = new Float64Array(1 << 16);
  private count = 0;

  add(ms: number): void {
    if (this.count === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2);
      bigger.set(this.values);
      this.values = bigger;
    }
    this.values[this.count++] = ms;
  }

  get size(): number {
    return this.count;
  }

  summary(): Latency {
    const sorted = this.values.slice(0, this.count).sort();
    const n = sorted.length;
    if (n === 0) return { mean: NaN, p50: NaN, p90: NaN, p99: NaN, max: NaN };
    let sum = 0;
    for (const v of sorted) sum += v;
    const ms = (v: number): number => round(v, 3);
    return { mean: ms(sum / n), p50: ms(nearestRank(sorted, 50)), p90: ms(nearestRank(sorted, 90)), p99: ms(nearestRank(sorted, 99)), max: ms(sorted[n - 1]!) };
  }
}

export function runAutocannon(options: autocannon.Options, samples?: LatencySamples): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(options, (error, result) => (error ? reject(error) : resolve(result)));
    if (samples) {
      instance.on('response', (_client, statusCode, _bytes, responseTime) => {
        if (statusCode >= 200 && statusCode < 300) samples.add(responseTime);
      });
    }
  });
}

/** The reference servers print "READY <port>" once they listen on the port they chose. */
export async function readyLine({ stdoutLines }: Starting): Promise<number> {
  for await (const line of stdoutLines) {
    const match = /^READY (\d+)$/.exec(line.trim());
    if (match) return Number(match[1]);
  }
  throw new Error('stdout closed before the READY line');
}
