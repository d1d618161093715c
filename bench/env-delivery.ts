/**
 * Environment delivery benchmark (npm run bench): how long an environment change made through the
 * API takes to reach its consumer, against the built server as shipped and a private dockerd
 * (test/support/engines.ts). Results go to bench/results/env-delivery.json, a Markdown summary to
 * stdout, progress to stderr.
 *
 * - `.env file`: PATCH /api/v1/env/files (no wait), then the time until the target's `.env` file
 *   holds the new value, polled every 2 ms.
 * - `container`: PATCH /api/v1/env/box?wait=true, answered once the container was recreated with
 *   the new environment and is healthy (a HEALTHCHECK `true` every 100 ms); then, untimed, its
 *   /proc/1/environ is checked to hold the value.
 *
 * Environment: BENCH_FILE_CHANGES (default 50), BENCH_RECREATES (default 20).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Docker from 'dockerode';
import { pino } from 'pino';
import { createDockerDriver } from '../src/reload/docker.js';
import { readComposeDotenv } from '../src/render/dotenv.js';
import { ensureBusyboxImage } from '../test/support/engines.js';
import { startBenchDockerd } from './lib/dockerd.js';
import { assertBuilt, startConfhub } from './lib/confhub.js';
import { positiveFromEnv } from './lib/env.js';
import { describeMachine, type MachineInfo } from './lib/machine.js';
import { log, makeTempDir, runBench, sleep, stopServer } from './lib/processes.js';
import { fmt, markdownTable, RESULTS_DIR, writeResults } from './lib/report.js';
import { summarize, type Summary } from './lib/stats.js';
import { writeSystemIni } from './lib/system-ini.js';

const RESULTS_PATH = join(RESULTS_DIR, 'env-delivery.json');
const FILE_CHANGES = positiveFromEnv('BENCH_FILE_CHANGES', 50, 'count');
const RECREATES = positiveFromEnv('BENCH_RECREATES', 20, 'count');

interface Report {
  bench: 'env-delivery';
  date: string;
  machine: MachineInfo;
  dockerVersion: string;
  file: { changes: number; latencyMs: Summary };
  container: { changes: number; latencyMs: Summary };
}

function markdown(report: Report): string {
  return [
    '## Environment change through the API → delivered',
    '',
    ...markdownTable(['Consumer', 'Changes', 'p50 ms', 'p99 ms', 'max ms'], 'lrrrr', [
      [
        '.env file written (PATCH → file holds the value)',
        report.file.changes,
        fmt(report.file.latencyMs.p50),
        fmt(report.file.latencyMs.p99),
        fmt(report.file.latencyMs.max),
      ],
      [
        'container recreated and healthy (PATCH ?wait=true answered)',
        report.container.changes,
        fmt(report.container.latencyMs.p50),
        fmt(report.container.latencyMs.p99),
        fmt(report.container.latencyMs.max),
      ],
    ]),
    '',
    `Docker ${report.dockerVersion}, ${report.machine.cpuModel} × ${report.machine.cpuCount}, Node ${report.machine.node}; confhub as shipped (logs, limits).`,
  ].join('\n');
}

async function main(): Promise<void> {
  assertBuilt();
  const machine = describeMachine();
  const { engine, stop } = await startBenchDockerd();
  const dataDir = makeTempDir('confhub-bench-env-');
  try {
    await ensureBusyboxImage(engine.socketPath);
    const docker = new Docker({ socketPath: engine.socketPath });
    const box = await docker.createContainer({
      name: 'box',
      Image: 'local/busybox',
      Cmd: ['sh', '-c', 'trap "exit 0" TERM; sleep 2147483647 & wait'],
      Healthcheck: { Test: ['CMD', 'true'], Interval: 100_000_000, Timeout: 5_000_000_000, Retries: 1, StartPeriod: 0 },
      HostConfig: { NetworkMode: 'none', RestartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 } },
    });
    await box.start();
    const envFile = join(dataDir, 'services', 'files.env');
    writeSystemIni(
      dataDir,
      'env-delivery bench',
      {
        files: { env: 'files', format: 'env', output: envFile },
        box: { env: 'box', format: 'env', output: join(dataDir, 'services', 'box.env'), reload: 'docker:recreate:box', health: 'auto', timeout: '60' },
      },
      { docker_socket: engine.socketPath },
    );
    const confhub = await startConfhub(dataDir, '/readyz', 60_000, { asShipped: { logFile: join(dataDir, 'confhub.log') } });
    try {
      const patch = (scope: string, body: unknown, query = '') =>
        fetch(`${confhub.base}/api/v1/env/${scope}${query}`, {
          method: 'PATCH',
          headers: { 'x-api-key': confhub.apiKey, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });

      const fileLatencies: number[] = [];
      for (let i = 1; i <= FILE_CHANGES; i++) {
        const value = `change ${i}\nwith "quotes" and $dollars`;
        const t0 = performance.now();
        const res = await patch('files', { SETTING: value });
        if (res.status !== 200) throw new Error(`file change ${i}: ${res.status} ${await res.text()}`);
        for (;;) {
          let text = '';
          try {
            text = readFileSync(envFile, 'utf8');
          } catch {
            // not written yet
          }
          if (text !== '' && readComposeDotenv(text).get('SETTING') === value) break;
          await sleep(2);
        }
        fileLatencies.push(performance.now() - t0);
        // Let the run's commit finish before the next change.
        await sleep(100);
      }
      log(`.env file: p50 ${fmt(summarize(fileLatencies).p50)} ms`);

      const driver = createDockerDriver({ socketPath: engine.socketPath, logger: pino({ level: 'silent' }) });
      const containerLatencies: number[] = [];
      for (let i = 1; i <= RECREATES; i++) {
        const value = `recreate ${i} = "x"`;
        const t0 = performance.now();
        const res = await patch('box', { SETTING: value }, '?wait=true');
        const body = (await res.json()) as { sync?: { outcome: string } };
        containerLatencies.push(performance.now() - t0);
        if (res.status !== 200 || body.sync?.outcome !== 'applied') throw new Error(`recreate ${i}: ${res.status} ${JSON.stringify(body)}`);
        const seen = await driver.exec({ by: 'name', name: 'box' }, ['cat', '/proc/1/environ'], { timeoutMs: 10_000 });
        if (!seen.output.split('\0').includes(`SETTING=${value}`)) throw new Error(`recreate ${i}: the process does not have the new value`);
        log(`container: change ${i}/${RECREATES} in ${fmt(containerLatencies[containerLatencies.length - 1])} ms`);
      }
      const report: Report = {
        bench: 'env-delivery',
        date: new Date().toISOString(),
        machine,
        dockerVersion: (await docker.version()).Version,
        file: { changes: FILE_CHANGES, latencyMs: summarize(fileLatencies) },
        container: { changes: RECREATES, latencyMs: summarize(containerLatencies) },
      };
      writeResults(RESULTS_PATH, report, markdown(report), [engine.dir, dataDir]);
    } finally {
      await stopServer(confhub);
    }
  } finally {
    await stop();
  }
}

runBench(main);
