/** GET /metrics of a whole confhub: what a Prometheus scrape sees after a few changes. */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startConfhub, type Confhub } from '../support/confhub.js';

let hook: Server;
let hookUrl: string;
beforeAll(async () => {
  hook = createServer((_req, res) => {
    res.statusCode = 204;
    res.end();
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/reload`;
});
afterAll(() => new Promise<void>((resolve) => hook.close(() => resolve())));

let ch: Confhub;
afterEach(async () => {
  await ch?.close();
});

/** The value of one sample, by metric name and exact label text (`{a="b"}`, or '' for none). */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/**
 * What Prometheus's own linter says of a scrape: `promtool check metrics` reads it on stdin, prints
 * one line per problem and exits non-zero on any. promtool is Debian's `prometheus` package, which
 * test/run.sh installs; without it this fails rather than skips, so the check cannot go quiet.
 */
function promtoolCheck(text: string): Promise<{ exitCode: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile('promtool', ['check', 'metrics'], { timeout: 60_000 }, (error, stdout, stderr) => {
      const output = `${stdout}${stderr}`.trim();
      if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new Error('promtool is not installed (Debian: apt-get install prometheus, as bash test/run.sh does)'));
      } else if (error && typeof error.code !== 'number') reject(error);
      else resolve({ exitCode: error ? Number(error.code) : 0, output });
    });
    child.stdin?.end(text);
  });
}

describe('GET /metrics', () => {
  it('when changes, a rollback and requests happened, then they are counted by route pattern, outcome, target and kind, without any value, in a scrape promtool accepts', async () => {
    ch = await startConfhub({
      systemIni: `[sync]\noutput_roots = @DIR@\ndebounce_min_ms = 30\n\n[target:app]\nsections = cockpit\nformat = ini\noutput = @DIR@/out/app.ini\nreload = http:POST:${hookUrl}\nhealth = none\n`,
    });
    await eventually('ready', async () => (await fetch(`${ch.url}/readyz`)).status === 200);
    const first = (await (await ch.api('/api/v1/settings/cockpit?key=port&value=9201&wait=true', { method: 'PUT' })).json()) as { sync: { commit: string } };
    await ch.api('/api/v1/settings/cockpit?key=port&value=9202&wait=true', { method: 'PUT' });
    expect((await ch.api('/api/v1/settings/rollback?wait=true', { method: 'POST', body: JSON.stringify({ commit: first.sync.commit }) })).status).toBe(200);
    await ch.api('/api/v1/no/such/route');
    expect((await fetch(`${ch.url}/api/v1/settings`)).status).toBe(401);

    const res = await fetch(`${ch.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(sample(text, 'confhub_http_requests_total', '{method="PUT",route="/api/v1/settings/:section",status="200"}')).toBe(2);
    expect(sample(text, 'confhub_http_requests_total', '{method="GET",route="unmatched",status="404"}')).toBe(1);
    expect(sample(text, 'confhub_sync_runs_total', '{source="change",outcome="applied"}')).toBeGreaterThanOrEqual(3);
    expect(sample(text, 'confhub_propagation_seconds_count')).toBeGreaterThanOrEqual(3);
    expect(sample(text, 'confhub_reloads_total', '{target="app",result="ok"}')).toBeGreaterThanOrEqual(3);
    expect(sample(text, 'confhub_rollbacks_total', '{kind="requested"}')).toBe(1);
    expect(sample(text, 'confhub_source_valid')).toBe(1);
    expect(sample(text, 'confhub_worker_restarts_total')).toBe(0);
    // Series that have seen no event yet are there at 0, so rate() works from the start.
    expect(sample(text, 'confhub_rollbacks_total', '{kind="automatic"}')).toBe(0);
    expect(sample(text, 'confhub_reloads_total', '{target="app",result="timeout"}')).toBe(0);
    expect(text).toContain('# TYPE confhub_worker_restarts_total counter');
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(text).not.toContain(ch.apiKey);
    expect(text).not.toContain('9202');
    // Every family (confhub's and the process's) passes Prometheus's naming and help rules, each of
    // confhub's with samples, so none escapes the check for lack of traffic.
    const families = [...text.matchAll(/^# TYPE (confhub_\w+) /gm)].map((m) => m[1]!);
    expect(families.length).toBeGreaterThanOrEqual(11);
    for (const family of families) expect(text, family).toMatch(new RegExp(`^${family}(_bucket|_count|_sum)?[{ ]`, 'm'));
    expect(text).not.toMatch(/^nodejs_active_\w+_total/m);
    expect(await promtoolCheck(text)).toEqual({ exitCode: 0, output: '' });

    // A duplicate section: config.ini is invalid until fixed.
    writeFileSync(ch.config.configPath, `${ch.readConfig()}\n[cockpit]\nport = 1\n`);
    let broken = '';
    await eventually('the broken file is seen', async () => {
      broken = await (await fetch(`${ch.url}/metrics`)).text();
      return sample(broken, 'confhub_source_valid') === 0;
    });
    expect(await promtoolCheck(broken)).toEqual({ exitCode: 0, output: '' });
  });
});
