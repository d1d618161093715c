/**
 * A log destination that fails never ends confhub: stdout on a full disk (ENOSPC, /dev/full) and
 * stdout a pipe whose reader went away (EPIPE). The process keeps answering, counts the lines it
 * dropped in /metrics for each thread, and still stops cleanly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadRuntimeConfig } from '../../src/runtime-config.js';
import { readApiKey } from '../../src/settings/read-api-key.js';
import { CLI, killStartedProcesses, stopProcess } from '../support/confhub-process.js';
import { freePort } from '../support/ports.js';
import { tempDirs } from '../support/temp-dirs.js';
import { eventually } from '../support/wait.js';

const tempDir = tempDirs('confhub-log-');
const children: ChildProcess[] = [];
afterEach(() => {
  killStartedProcesses();
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

interface Started {
  child: ChildProcess;
  url: string;
  env: Record<string, string>;
}

async function start(stdout: number | 'pipe'): Promise<Started> {
  const dataDir = join(tempDir(), 'data');
  mkdirSync(join(dataDir, 'config'), { recursive: true });
  writeFileSync(join(dataDir, 'config', 'system.ini'), '[sync]\ndebounce_min_ms = 0\ndebounce_max_ms = 50\npoll_interval_ms = 200\n');
  const port = await freePort();
  const env = { CONFHUB_DATA_DIR: dataDir, CONFHUB_PORT: String(port), CONFHUB_RATE_LIMIT: '0', CONFHUB_LOG_LEVEL: 'info' };
  const child = spawn(process.execPath, [...CLI, 'serve'], { env: { ...process.env, ...env }, stdio: ['ignore', stdout, 'pipe'] });
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  await eventually('confhub answers /readyz', async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200, 20_000);
  return { child, url, env };
}

async function dropped(url: string): Promise<{ main: number; worker: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const count = (thread: string): number => Number(new RegExp(`^confhub_log_lines_dropped_total\\{thread="${thread}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return { main: count('main'), worker: count('worker') };
}

/** Five requests the access log writes at info (probes are logged at debug): five main-thread lines. */
async function mainLogs({ url, env }: Started): Promise<void> {
  const apiKey = (await readApiKey(loadRuntimeConfig(env)))!;
  for (let i = 0; i < 5; i++) expect((await fetch(`${url}/api/v1/settings/cockpit`, { headers: { 'x-api-key': apiKey } })).status).toBe(200);
}

/** Makes the worker log a warning: a hand edit that breaks config.ini, then the file put back. */
async function workerWarns({ url, env }: Started): Promise<void> {
  const config = loadRuntimeConfig(env);
  const apiKey = (await readApiKey(config))!;
  const text = readFileSync(config.configPath, 'utf8');
  writeFileSync(config.configPath, `${text}\n[broken\n`);
  await eventually('the worker reports config.ini invalid', async () => (await fetch(`${url}/readyz`)).status === 503);
  writeFileSync(config.configPath, text);
  await eventually('config.ini is valid again', async () => (await fetch(`${url}/readyz`)).status === 200);
  expect((await fetch(`${url}/api/v1/settings/cockpit`, { headers: { 'x-api-key': apiKey } })).status).toBe(200);
}

describe('failing log destinations', () => {
  it('when stdout is on a full disk (ENOSPC), then confhub serves, counts the lines of both threads it dropped, and stops with exit code 0', async () => {
    const full = openSync('/dev/full', 'w');
    let started: Started;
    try {
      started = await start(full);
    } finally {
      closeSync(full);
    }
    const { child, url } = started;
    await mainLogs(started);
    await workerWarns(started);
    await eventually('both threads counted dropped lines', async () => {
      const counts = await dropped(url);
      return counts.main >= 5 && counts.worker >= 1;
    });
    expect(await stopProcess(child)).toBe(0);
  });

  it('when the reader of its stdout pipe goes away (EPIPE), then confhub keeps answering and counts the lines it could not write', async () => {
    const started = await start('pipe');
    const { child, url } = started;
    child.stdout!.destroy();
    await mainLogs(started);
    await workerWarns(started);
    await eventually('both threads counted dropped lines', async () => {
      const counts = await dropped(url);
      return counts.main >= 5 && counts.worker >= 1;
    });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect(await stopProcess(child)).toBe(0);
  });
});
