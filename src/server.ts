/**
 * The composition root of the main thread: data directory, shipped defaults, database, stores,
 * first-boot secrets, the app, and the listening server with a clean shutdown.
 */
import { readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { createAuditLog } from './audit/audit-log.js';
import { fillMissingSecrets, type FillSecretsResult } from './bootstrap/first-boot-secrets.js';
import { acquireInstanceLock, type InstanceLock } from './bootstrap/instance-lock.js';
import { installShippedDefaults, SHIPPED_CONFIG_DIR } from './bootstrap/shipped-defaults.js';
import { mergeShippedTemplate, type MergeTemplateResult } from './bootstrap/template-merge.js';
import { openDatabase } from './db/database.js';
import { removeStaleTempFiles } from './fs/atomic-write.js';
import { createApp } from './http/app.js';
import type { RuntimeConfig } from './runtime-config.js';
import { loadKeyring } from './secrets/master-key.js';
import { AppError, isAppError } from './core/errors.js';
import { CONFIG_SCHEMA, SYSTEM_SCHEMA } from './settings/schema.js';
import { createReadOnlyIniStore, createSettingsStore, type RevisionAnnouncement } from './settings/store.js';
import { createSyncService, type SyncService } from './sync/sync-service.js';
import { describeAction, syncConfigOf } from './targets/target-spec.js';
import { createWorkerHost } from './sync/worker-host.js';
import { createMetrics } from './metrics.js';
import { createHistoryReader } from './history/history-repo.js';
import { createDockerDriver } from './reload/docker.js';
import { createSupervisorDriver } from './reload/supervisor.js';
import { createHttpProbe } from './probes/http-probe.js';
import { createConnectionChecks } from './probes/connection-checks.js';
import { createHistoryQueries } from './history/history-queries.js';
import { historyConfigOf } from './history/push.js';

export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly installed: readonly string[];
  readonly secrets: FillSecretsResult;
  /** Keys the shipped template added to config.ini at this start, and keys it no longer has. */
  readonly upgrade: MergeTemplateResult;
  close(): Promise<void>;
}

export async function startServer(config: RuntimeConfig, logger: Logger): Promise<RunningServer> {
  const installed = await installShippedDefaults(config);
  const lock = await acquireInstanceLock(config.dataDir);
  try {
    return await startLocked(config, logger, installed, lock);
  } catch (error) {
    await lock.release();
    throw error;
  }
}

async function startLocked(config: RuntimeConfig, logger: Logger, installed: string[], lock: InstanceLock): Promise<RunningServer> {
  for (const path of installed) logger.info({ path }, 'installed shipped default');
  for (const name of await removeStaleTempFiles(config.configPath)) logger.warn({ name }, 'removed a temp file left by an interrupted write');
  const keys = await loadKeyring(config.masterKey);
  if (keys.created) logger.info({ path: config.masterKey.file }, 'generated the master key that seals secrets in config.ini (first start); back it up');
  for (const warning of keys.warnings) logger.warn(warning);
  const { keyring } = keys;
  const db = openDatabase({ path: config.databasePath });
  const audit = createAuditLog({ db });
  // The sync service is created after the store, which announces each revision to it just before writing.
  let announce: (announcement: RevisionAnnouncement) => void = () => undefined;
  const settings = createSettingsStore({
    path: config.configPath,
    label: 'config.ini',
    schema: CONFIG_SCHEMA,
    keyring,
    audit,
    logger,
    beforeCommit: (announcement) => announce(announcement),
  });
  const system = createReadOnlyIniStore({ path: config.systemPath, label: 'system.ini', schema: SYSTEM_SCHEMA });
  // Fail fast on a file that cannot be read at all, on secrets this master key cannot open, and on bad target declarations.
  try {
    settings.read();
  } catch (error) {
    if (isAppError(error) && error.code === 'SECRET_UNREADABLE') {
      throw new AppError('STARTUP_CONFIG_INVALID', {
        message: 'config.ini holds secrets the master key cannot open',
        details: `config.ini holds secrets the master key (${keys.origin}) cannot open: ${error.details}`,
        cause: error,
      });
    }
    throw error;
  }
  const systemDoc = system.read().doc;
  const syncConfig = syncConfigOf(systemDoc, config);
  const { targets, settings: syncSettings } = syncConfig;
  const historyPush = historyConfigOf(systemDoc, { configDir: config.configDir });
  const metrics = createMetrics();
  let sync: SyncService | undefined;
  const workerHost = createWorkerHost({
    init: {
      configPath: config.configPath,
      dataDir: config.dataDir,
      configDir: config.configDir,
      logLevel: config.logLevel,
      historyDir: config.historyDir,
      sync: syncConfig,
      ...(historyPush ? { historyPush } : {}),
      masterKeys: [keyring.current, ...[...keyring.byId.values()].filter((key) => key !== keyring.current)].map((key) => new Uint8Array(key.key)),
    },
    initAtStart: () => {
      const commit = sync?.lastAppliedCommit();
      return commit ? { lastAppliedCommit: commit } : {};
    },
    logger,
    stopTimeoutMs: config.stopTimeoutMs,
    onMessage: (message) => sync?.onWorkerMessage(message),
    onExit: () => sync?.onWorkerExit(),
  });
  sync = createSyncService({
    metrics,
    targets,
    describeReload: (target) => describeAction(target.reload),
    db,
    audit,
    settings,
    logger,
    send: (message) => workerHost.send(message),
    workerAlive: () => workerHost.alive(),
    workerRestarts: () => workerHost.restarts(),
  });
  const syncService = sync;
  metrics.observe({ sourceValid: () => syncService.status().source.valid, workerRestarts: () => workerHost.restarts() });
  announce = (announcement) => syncService.announce(announcement);
  // Written before the worker starts; their announcements wait for it, so the history names them.
  const upgrade = await mergeShippedTemplate({
    store: settings,
    templateText: readFileSync(resolve(SHIPPED_CONFIG_DIR, 'config.ini'), 'utf8'),
    recordPath: resolve(config.dataDir, 'shipped-template.json'),
    schema: CONFIG_SCHEMA,
    logger,
  });
  const secrets = await fillMissingSecrets({ store: settings, schema: CONFIG_SCHEMA, initialApiKey: config.initialApiKey });
  // An installation from before sealing (or a hand edit made while confhub was stopped) holds plain text secrets.
  if (settings.read().unsealed.length > 0) await settings.seal({ actor: { type: 'file', id: 'file' } });
  if (config.initialApiKey !== undefined && !secrets.apiKeyFromEnvironment) {
    logger.warn('CONFHUB_API_KEY is ignored: config.ini already holds an API key (it is only used on first start)');
  }
  workerHost.start();

  // The main thread's own drivers (the worker has its own): building them connects to nothing,
  // so an absent Docker engine or supervisord only shows in the check results.
  const services = createConnectionChecks({
    targets,
    configDoc: () => {
      try {
        return settings.read().doc;
      } catch {
        return settings.lastGood()?.doc;
      }
    },
    docker: createDockerDriver({ socketPath: syncSettings.dockerSocket, logger }),
    supervisor: createSupervisorDriver({ url: syncSettings.supervisorUrl, logger }),
    http: createHttpProbe(),
    logger,
  });

  const app = createApp({
    settings,
    system,
    audit,
    logger,
    version: VERSION,
    rateLimitPerMinute: config.rateLimitPerMinute,
    authFailuresPer15Min: config.authFailuresPer15Min,
    bodyLimitBytes: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
    sync,
    metrics,
    services,
    startup: {
      installed: installed.map((path) => basename(path)),
      apiKeyGenerated: secrets.apiKeyGenerated || secrets.apiKeyFromEnvironment,
      passwordsGenerated: [...secrets.passwordsGenerated, ...upgrade.generated],
      masterKeyCreated: keys.created,
      upgrade,
    },
    history: createHistoryQueries({ reader: createHistoryReader({ gitDir: config.historyDir, workTree: config.configDir }), db, schema: CONFIG_SCHEMA, keyring }),
  });
  const server: Server = createServer(app);
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    installed,
    secrets,
    upgrade,
    close() {
      // Stop taking requests, let the writes in flight land, then let the worker finish its apply.
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          // Event streams never end on their own.
          setTimeout(() => server.closeAllConnections(), 2000).unref();
        });
        await settings.idle();
        // Checks in flight end within their probe timeout; waited for beside the worker, so they
        // add nothing to the shutdown budget, and no probe's socket outlives the server.
        await Promise.all([workerHost.stop(), services.idle()]);
        // A rollback the worker asked for while stopping is written before the database closes.
        await settings.idle();
        db.close();
        await lock.release();
      })();
      return closing;
    },
  };
}
