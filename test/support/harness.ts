/**
 * A confhub app on a real temp data directory with real SQLite, for supertest. Logs are captured
 * in memory so tests can assert what never reaches them.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Database } from 'better-sqlite3';
import type { Express } from 'express';
import { createAuditLog, type AuditLog } from '../../src/audit/audit-log.js';
import { fillMissingSecrets } from '../../src/bootstrap/first-boot-secrets.js';
import { installShippedDefaults } from '../../src/bootstrap/shipped-defaults.js';
import { openDatabase } from '../../src/db/database.js';
import { createApp } from '../../src/http/app.js';
import { createLogger } from '../../src/log.js';
import { loadRuntimeConfig, type RuntimeConfig } from '../../src/runtime-config.js';
import { CONFIG_SCHEMA, SYSTEM_SCHEMA } from '../../src/settings/schema.js';
import { createReadOnlyIniStore, createSettingsStore, type SettingsStore } from '../../src/settings/store.js';
import { loadKeyring } from '../../src/secrets/master-key.js';
import type { Keyring } from '../../src/secrets/secret-box.js';

export interface Harness {
  app: Express;
  apiKey: string;
  config: RuntimeConfig;
  settings: SettingsStore;
  keyring: Keyring;
  audit: AuditLog;
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
  const config = loadRuntimeConfig({ CONFHUB_DATA_DIR: dataDir }, dataDir);
  await installShippedDefaults(config);
  if (options.configText !== undefined) writeFileSync(config.configPath, options.configText);
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  const logger = createLogger({ level: options.logLevel ?? 'debug', destination });
  const db = openDatabase({ path: config.databasePath });
  const audit = createAuditLog({ db });
  const { keyring } = await loadKeyring(config.masterKey);
  const settings = createSettingsStore({ path: config.configPath, label: 'config.ini', schema: CONFIG_SCHEMA, keyring, audit, logger });
  const system = createReadOnlyIniStore({ path: config.systemPath, label: 'system.ini', schema: SYSTEM_SCHEMA });
  await fillMissingSecrets({ store: settings, schema: CONFIG_SCHEMA });
  const apiKey = settings.read().doc.byName.get('api_key')!.byKey.get('key')!.value;
  const app = createApp({
    settings,
    system,
    audit,
    logger,
    version: '0.0.0-test',
    rateLimitPerMinute: options.rateLimitPerMinute ?? 0,
    authFailuresPer15Min: options.authFailuresPer15Min ?? 0,
    bodyLimitBytes: options.bodyLimitBytes ?? 64 * 1024,
  });
  return {
    app,
    apiKey,
    config,
    settings,
    keyring,
    audit,
    db,
    logs: () => chunks.join(''),
    readConfig: () => readFileSync(config.configPath, 'utf8'),
    writeConfig: (text) => writeFileSync(config.configPath, text),
    async close() {
      await settings.idle();
      db.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
