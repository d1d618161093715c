/**
 * A confhub app on a real temp data directory with real SQLite, for supertest: the composition
 * root of the server (src/main.ts) without the sync worker thread. Logs are captured in memory so
 * tests can assert what never reaches them.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Database } from 'better-sqlite3';
import type { Express } from 'express';
import type { AuditLog } from '../../src/audit/audit-log.js';
import type { EventLog } from '../../src/events/event-log.js';
import { createLogger } from '../../src/log.js';
import { createConfhub } from '../../src/main.js';
import { loadRuntimeConfig, type RuntimeConfig } from '../../src/runtime-config.js';
import type { Keyring } from '../../src/secrets/secret-box.js';
import type { SettingsStore } from '../../src/settings/store.js';

export interface Harness {
  app: Express;
  apiKey: string;
  config: RuntimeConfig;
  settings: SettingsStore;
  keyring: Keyring;
  audit: AuditLog;
  events: EventLog;
  db: Database;
  logs: () => string;
  readConfig: () => string;
  writeConfig: (text: string) => void;
  close: () => Promise<void>;
}

export interface HarnessOptions {
  rateLimitPerMinute?: number;
  authFailuresPer15Min?: number;
  bodyLimitBytes?: number;
  /** Replaces the shipped config.ini before start. */
  configText?: string;
  logLevel?: string;
}

export async function createHarness(options: HarnessOptions = {}): Promise<Harness> {
  const dataDir = mkdtempSync(join(tmpdir(), 'confhub-test-'));
  const config = loadRuntimeConfig(
    {
      CONFHUB_DATA_DIR: dataDir,
      CONFHUB_RATE_LIMIT: String(options.rateLimitPerMinute ?? 0),
      CONFHUB_AUTH_FAILURE_LIMIT: String(options.authFailuresPer15Min ?? 0),
      CONFHUB_BODY_LIMIT: String(options.bodyLimitBytes ?? 64 * 1024),
    },
    dataDir,
  );
  if (options.configText !== undefined) {
    mkdirSync(config.configDir, { recursive: true });
    writeFileSync(config.configPath, options.configText);
  }
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  const logger = createLogger({ level: options.logLevel ?? 'debug', destination });
  const confhub = await createConfhub({ config, logger, syncWorker: 'none' });
  const apiKey = confhub.settings.read().doc.byName.get('api_key')!.byKey.get('key')!.value;
  return {
    app: confhub.app,
    apiKey,
    config,
    settings: confhub.settings,
    keyring: confhub.keyring,
    audit: confhub.audit,
    events: confhub.events,
    db: confhub.db,
    logs: () => chunks.join(''),
    readConfig: () => readFileSync(config.configPath, 'utf8'),
    writeConfig: (text) => writeFileSync(config.configPath, text),
    async close() {
      await confhub.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
