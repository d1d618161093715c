/**
 * Environment recreation benchmark (not in `npm run bench`: run it with
 * `node --import tsx bench/env-recreate.ts`): how long an environment change takes to reach a
 * container — from the call until the new container runs with the new environment and is healthy
 * and the old one is removed — and how that time splits over the phases (inspect, rename,
 * create, stop, start, healthy, remove). Results go to bench/results/env-recreate.json, a
 * Markdown summary to stdout, progress to stderr.
 *
 * A private dockerd (test/support/engines.ts) runs one busybox container on `--network none` with
 * a bind mount, a named and an anonymous volume, labels and a restart policy, whose PID 1 stops
 * at once on its stop signal (a shell waiting on `wait`, which a trapped signal interrupts), so
 * the stop phase is Docker's, not a service's shutdown. Two scenarios, BENCH_RECREATES changes
 * each (default 20), one value of one variable changing each time:
 * 1. `healthcheck`: a HEALTHCHECK every BENCH_HEALTH_INTERVAL_MS (default 100 ms); Docker runs
 *    the first check one interval after the start, so the healthy phase is at least that long.
 * 2. `stability window`: no HEALTHCHECK; the container must keep running for the window
 *    (BENCH_STABLE_MS, default 1000 ms, confhub's default), which is then most of the time.
 * After each change (not timed) the environment of PID 1 is read back and checked. Budgets are
 * not set; the exit code is 1 only when the run itself failed.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Docker from 'dockerode';
import { pino } from 'pino';
import { createDockerDriver } from '../src/reload/docker.js';
import { createEnvRecreator, type RecreatePhase, type RecreateStep } from '../src/reload/docker-recreate.js';
import { ensureBusyboxImage, type PrivateDockerd } from '../test/support/engines.js';
import { startBenchDockerd } from './lib/dockerd.js';
import { positiveFromEnv } from './lib/env.js';
import { describeMachine, type MachineInfo } from './lib/machine.js';
import { log, makeTempDir, runBench } from './lib/processes.js';
import { disturbedNote, fmt, markdownTable, RESULTS_DIR, writeResults } from './lib/report.js';
import { cpuShares, isDisturbed, sampleCpu, type CpuShares } from './lib/resource-usage.js';
import { summarize, type Summary } from './lib/stats.js';

const RESULTS_PATH = join(RESULTS_DIR, 'env-recreate.json');
const RECREATES = positiveFromEnv('BENCH_RECREATES', 20, 'count');
const HEALTH_INTERVAL_MS = positiveFromEnv('BENCH_HEALTH_INTERVAL_MS', 100, 'count');
const STABLE_MS = positiveFromEnv('BENCH_STABLE_MS', 1000, 'count');
const POLL_MS = 20;
const SILENT = pino({ level: 'silent' });
const PHASES: readonly RecreatePhase[] = ['inspect', 'rename', 'create', 'stop', 'start', 'healthy', 'remove'];
/** The step that ends each phase. */
const PHASE_END: Readonly<Partial<Record<RecreateStep, RecreatePhase>>> = {
  inspected: 'inspect',
  renamed: 'rename',
  created: 'create',
  stopped: 'stop',
  started: 'start',
  healthy: 'healthy',
  removed: 'remove',
};

interface ScenarioResult {
  name: string;
  healthcheck: string;
  total: Summary;
  phases: Record<RecreatePhase, Summary>;
  cpu: CpuShares<'bench' | 'dockerd'> | null;
}

interface Report {
  bench: 'env-recreate';
  date: string;
  machine: MachineInfo;
  dockerVersion: string;
  recreates: number;
  scenarios: ScenarioResult[];
  disturbed: string[];
}

async function runScenario(input: { engine: PrivateDockerd; docker: Docker; confDir: string; name: string; healthcheck: boolean }): Promise<ScenarioResult> {
  const { engine, docker, name } = input;
  const conf = join(input.confDir, name);
  mkdirSync(conf, { recursive: true });
  const container = await docker.createContainer({
    name,
    Image: 'local/busybox',
    Cmd: ['sh', '-c', 'trap "exit 0" TERM; sleep 2147483647 & wait'],
    Env: ['SERVICE_MODE=bench'],
    Labels: { 'com.docker.compose.project': 'bench', 'com.docker.compose.service': name },
    Volumes: { '/anon': {} },
    ...(input.healthcheck
      ? { Healthcheck: { Test: ['CMD', 'true'], Interval: HEALTH_INTERVAL_MS * 1_000_000, Timeout: 5_000_000_000, Retries: 1, StartPeriod: 0 } }
      : {}),
    HostConfig: { NetworkMode: 'none', Binds: [`${conf}:/conf`, `${name}-data:/data`], RestartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 } },
  });
  await container.start();
  const driver = createDockerDriver({ socketPath: engine.socketPath, logger: SILENT, pollIntervalMs: POLL_MS });
  await driver.waitHealthy({ by: 'name', name }, { timeoutMs: 30_000, stableMs: 100 });
  const recreator = createEnvRecreator({ socketPath: engine.socketPath, logger: SILENT, pollIntervalMs: POLL_MS });

  const totals: number[] = [];
  const phases = Object.fromEntries(PHASES.map((p) => [p, [] as number[]])) as Record<RecreatePhase, number[]>;
  const sample = () => sampleCpu({ bench: 'self', dockerd: { pid: engine.pid, children: true } });
  const before = sample();
  for (let i = 1; i <= RECREATES; i++) {
    const value = `change ${i}\nwith = and "quotes"`;
    let last = performance.now();
    const t0 = last;
    const result = await recreator.recreate({
      ref: { by: 'label', label: 'com.docker.compose.service', value: name },
      env: new Map([['APP_SETTING', value]]),
      timeoutMs: 30_000,
      healthTimeoutMs: 30_000,
      stableMs: STABLE_MS,
      onStep(step) {
        const now = performance.now();
        const phase = PHASE_END[step];
        if (phase) phases[phase].push(now - last);
        last = now;
      },
    });
    totals.push(performance.now() - t0);
    if (!result.recreated || result.warnings.length > 0) throw new Error(`change ${i} of ${name}: ${JSON.stringify(result)}`);
    // Not timed: the process really has the value.
    const seen = await driver.exec({ by: 'name', name }, ['cat', '/proc/1/environ'], { timeoutMs: 10_000 });
    if (!seen.output.split('\0').includes(`APP_SETTING=${value}`)) throw new Error(`change ${i} of ${name}: the process does not have the new value`);
    log(`${name}: change ${i}/${RECREATES} in ${fmt(totals[totals.length - 1])} ms`);
  }
  const cpu = cpuShares(before, sample());
  return {
    name,
    healthcheck: input.healthcheck ? `HEALTHCHECK every ${HEALTH_INTERVAL_MS} ms` : `none: ${STABLE_MS} ms stability window`,
    total: summarize(totals),
    phases: Object.fromEntries(PHASES.map((p) => [p, summarize(phases[p])])) as Record<RecreatePhase, Summary>,
    cpu,
  };
}

function markdown(report: Report): string {
  const lines = [
    `## Environment change → container recreated, running and healthy (${report.recreates} changes per scenario)`,
    '',
    ...disturbedNote(report.disturbed),
    ...markdownTable(
      ['Scenario', 'Health', 'p50 ms', 'p99 ms', ...PHASES.map((p) => `${p} p50`)],
      `llrr${'r'.repeat(PHASES.length)}`,
      report.scenarios.map((s) => [s.name, s.healthcheck, fmt(s.total.p50), fmt(s.total.p99), ...PHASES.map((p) => fmt(s.phases[p].p50))]),
    ),
    '',
    `Docker ${report.dockerVersion}, ${report.machine.cpuModel} × ${report.machine.cpuCount}, Node ${report.machine.node}.`,
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  const machine = describeMachine();
  const { engine, stop } = await startBenchDockerd();
  try {
    await ensureBusyboxImage(engine.socketPath);
    const docker = new Docker({ socketPath: engine.socketPath });
    const dockerVersion = (await docker.version()).Version;
    const confDir = makeTempDir('confhub-bench-recreate-');
    const scenarios = [
      await runScenario({ engine, docker, confDir, name: 'healthcheck', healthcheck: true }),
      await runScenario({ engine, docker, confDir, name: 'stability-window', healthcheck: false }),
    ];
    const report: Report = {
      bench: 'env-recreate',
      date: new Date().toISOString(),
      machine,
      dockerVersion,
      recreates: RECREATES,
      scenarios,
      disturbed: scenarios.filter((s) => isDisturbed(s.cpu)).map((s) => `the ${s.name} scenario (${s.cpu!.otherCores} cores)`),
    };
    writeResults(RESULTS_PATH, report, markdown(report), [engine.dir, confDir]);
  } finally {
    await stop();
  }
}

runBench(main);
