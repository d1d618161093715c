/**
 * The outbox across a kill -9: confhub as its own process, a receiver that is down while a message
 * waits for its retry, the process killed, the receiver back, confhub started again.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadRuntimeConfig } from '../../src/runtime-config.js';
import { readApiKey } from '../../src/settings/read-api-key.js';
import { killStartedProcesses, startProcess, stopProcess } from '../support/confhub-process.js';
import { eventually } from '../support/wait.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  killStartedProcesses();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

describe('the webhook outbox', () => {
  it('when confhub is killed with -9 while a message waits for its retry, then after a restart it is delivered, once the receiver is back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'confhub-outbox-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const dataDir = join(dir, 'data');
    mkdirSync(join(dataDir, 'config'), { recursive: true });
    writeFileSync(join(dataDir, 'config', 'system.ini'), '[notify]\nallow_hosts = 127.0.0.1\n');
    // A port nothing listens on yet: the receiver comes up on it later.
    const probe = createServer();
    const port = await listen(probe, 0);
    await new Promise((resolve) => probe.close(resolve));

    const env = { CONFHUB_DATA_DIR: dataDir, CONFHUB_LOG_LEVEL: 'info', CONFHUB_RATE_LIMIT: '0' };
    const first = await startProcess(env);
    const apiKey = (await readApiKey(loadRuntimeConfig(env, dir)))!;
    const api = (url: string, path: string, init: RequestInit = {}) =>
      fetch(`${url}${path}`, { ...init, headers: { 'x-api-key': apiKey, 'content-type': 'application/json' } });
    const created = await api(first.url, '/api/v1/webhooks', {
      method: 'POST',
      body: JSON.stringify({ url: `http://127.0.0.1:${port}/hook`, events: ['settings.changed'] }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    expect((await api(first.url, '/api/v1/settings/gitea', { method: 'PUT', body: JSON.stringify({ user_name: 'quinn' }) })).status).toBe(200);
    const waiting = async (url: string) =>
      ((await (await api(url, `/api/v1/webhooks/${id}/deliveries`)).json()) as { deliveries: { state: string; attempts: unknown[] }[] }).deliveries;
    await eventually('the first attempt found nobody listening', async () => (await waiting(first.url))[0]?.attempts.length === 1, 30_000);
    await stopProcess(first.child, 'SIGKILL');

    const received: IncomingMessage['headers'][] = [];
    const receiver = createServer((req, res) => {
      received.push(req.headers);
      req.resume();
      res.statusCode = 204;
      res.end();
    });
    await listen(receiver, port);
    cleanups.push(() => new Promise((resolve) => receiver.close(resolve)));

    const second = await startProcess(env);
    await eventually('delivered after the restart', () => received.length === 1, 30_000);
    expect(received[0]!['webhook-id']).toMatch(/^evt_[\w-]{16}_\d+$/);
    await eventually('the log says delivered', async () => (await waiting(second.url))[0]?.state === 'delivered', 10_000);
    expect(received).toHaveLength(1);
    await stopProcess(second.child);
  }, 90_000);
});
