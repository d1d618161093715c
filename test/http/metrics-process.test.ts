/** The process's own series: what /metrics shows of the event loop, and what costs nothing idle. */
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics.js';

function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('process metrics', () => {
  it('when scraped, then the event loop shows as the lag taken at the scrape and its busy time, without the sampled-delay series', async () => {
    const metrics = createMetrics();
    const first = await metrics.text();
    // Busy for a moment between two scrapes.
    const until = performance.now() + 30;
    while (performance.now() < until);
    const text = await metrics.text();
    for (const series of ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99']) {
      expect(first).not.toContain(`nodejs_eventloop_lag_${series}_seconds`);
    }
    expect(sample(text, 'nodejs_eventloop_lag_seconds')).toBeTypeOf('number');
    // The 30 ms of work between the scrapes is counted.
    const busyFirst = sample(first, 'confhub_event_loop_busy_seconds_total')!;
    const busy = sample(text, 'confhub_event_loop_busy_seconds_total')!;
    expect(busy - busyFirst).toBeGreaterThanOrEqual(0.03);
    expect(sample(text, 'process_cpu_seconds_total')).toBeGreaterThan(0);
  });
});
