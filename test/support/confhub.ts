/**
 * A whole confhub (main thread + sync worker thread) on a temp data directory, for end-to-end
 * tests: the given system.ini declares the targets, config.ini is the shipped one plus extras.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import { loadRuntimeConfig, type RuntimeConfig } from '../../src/runtime-config.js';
import type { ConfhubOptions } from '../../src/main.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { readApiKey } from '../../src/settings/read-api-key.js';

export { eventually } from './wait.js';

export interface Confhub {
  url: string;
  apiKey: string;
  config: RuntimeConfig;
  dir: string;
  server: RunningServer;
  api(path: string, init?: RequestInit): Promise<Response>;
  readConfig(): string;
  close(): Promise<void>;
}

export interface StartConfhubOptions {
  /** Full text of system.ini; `@DIR@` is replaced by the test's directory. */
  systemIni: string;
  /** Appended to the shipped config.ini. */
  configExtra?: string;
  /** Files put in the config directory before start (templates), by name. */
  files?: Record<string, string>;
  /** More environment for loadRuntimeConfig; `@DIR@` is replaced in the values too. */
  env?: Record<string, string>;
  /** The webhook outbox's clock and resolver. */
  notify?: ConfhubOptions['notify'];
  /** Start on this directory (made by an earlier start) instead of a new one: a restart. */
  restartIn?: string;
}

export async function startConfhub({ systemIni, configExtra = '', files = {}, env = {}, notify, restartIn }: StartConfhubOptions): Promise<Confhub> {
  const dir = restartIn ?? mkdtempSync(join(tmpdir(), 'confhub-e2e-'));
  const dataDir = join(dir, 'data');
  if (restartIn === undefined) {
    mkdirSync(join(dataDir, 'config'), { recursive: true });
    writeFileSync(join(dataDir, 'config', 'system.ini'), systemIni.replaceAll('@DIR@', dir));
    const shipped = readFileSync(new URL('../../config/config.ini', import.meta.url), 'utf8');
    writeFileSync(join(dataDir, 'config', 'config.ini'), shipped + configExtra, { mode: 0o600 });
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(dirname(join(dataDir, 'config', name)), { recursive: true });
      writeFileSync(join(dataDir, 'config', name), content);
    }
  }
  const extra = Object.fromEntries(Object.entries(env).map(([name, value]) => [name, value.replaceAll('@DIR@', dir)]));
  const config = loadRuntimeConfig({ CONFHUB_DATA_DIR: dataDir, CONFHUB_PORT: '0', CONFHUB_RATE_LIMIT: '0', CONFHUB_LOG_LEVEL: 'silent', ...extra }, dir);
  const server = await startServer(config, pino({ level: 'silent' }), notify ? { notify } : {});
  const apiKey = (await readApiKey(config))!;
  return {
    url: server.url,
    apiKey,
    config,
    dir,
    server,
    api: (path, init = {}) =>
      fetch(`${server.url}${path}`, { ...init, headers: { 'x-api-key': apiKey, 'content-type': 'application/json', ...(init.headers ?? {}) } }),
    readConfig: () => readFileSync(config.configPath, 'utf8'),
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
