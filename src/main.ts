/**
 * The composition root of the main thread, used by the server and by the test harness alike:
 * data directory and shipped defaults, the instance lock, the master key, the database, the
 * stores, the event log, the sync dispatcher and its worker thread, the connection checks, the
 * history, first-boot secrets and template upgrades, and the Express app. Nothing listens here.
 */
import { readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { basename, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Database } from 'better-sqlite3';
import type { Express } from 'express';
import type { Logger } from 'pino';
import { createAuditLog, type AuditLog } from './audit/audit-log.js';
import { resolveLogFormat } from './log.js';
import { fillMissingSecrets, type FillSecretsResult } from './bootstrap/first-boot-secrets.js';
import { acquireInstanceLock } from './bootstrap/instance-lock.js';
import { installShippedDefaults, SHIPPED_CONFIG_DIR } from './bootstrap/shipped-defaults.js';
import { mergeShippedTemplate, type MergeTemplateResult } from './bootstrap/template-merge.js';
import { actorRef, FILE_ACTOR } from './core/actor.js';
import type { Clock } from './core/clock.js';
import { AppError, isAppError } from './core/errors.js';
import { openDatabase } from './db/database.js';
import { ANNOUNCED_BY_WORKER, publishChanges } from './events/change-events.js';
import { createEventLog, type EventLog } from './events/event-log.js';
import { createWebSocketChannel, type WebSocketChannel } from './events/websocket.js';
import { createOriginCheck, parseAllowedOrigins } from './events/websocket-origins.js';
import { removeStaleTempFiles } from './fs/atomic-write.js';
import { checkTargetPaths } from './fs/contained-path.js';
import { createHistoryQueries } from './history/history-queries.js';
import { createHistoryReader } from './history/history-repo.js';
import { historyConfigOf } from './history/push.js';
import { createApiAccess } from './http/api-access.js';
import { createApp } from './http/app.js';
import { createUpgradeListener, createWebSocketAuthentication, createConnectedKeyCheck } from './http/websocket-gate.js';
import { createMetrics } from './metrics.js';
import { createAddressPolicy } from './notify/address-policy.js';
import { createDeliveryFormat } from './notify/delivery-format.js';
import { createGuardedPost, endpointUrlProblem, parseRetryAfter, type HostLookup } from './notify/guarded-post.js';
import { notifyConfigOf } from './notify/notify-config.js';
import { createOutbox, type Outbox } from './notify/outbox.js';
import { createWebhookStore, type WebhookStore } from './notify/webhook-store.js';
import { createConnectionChecks } from './probes/connection-checks.js';
import { createHttpProbe } from './probes/http-probe.js';
import { createDockerDriver } from './reload/docker.js';
import { createSupervisorDriver } from './reload/supervisor.js';
import type { RuntimeConfig } from './runtime-config.js';
import { loadKeyring } from './secrets/master-key.js';
import type { Keyring } from './secrets/secret-box.js';
import { resolveSettingsOf } from './settings/resolve-settings.js';
import { loadTemplates, SHIPPED_TEMPLATES_DIR } from './templates/template-catalog.js';
import { CONFIG_SCHEMA, SYSTEM_SCHEMA } from './settings/schema.js';
import { createReadOnlyIniStore, createSettingsStore, type RevisionAnnouncement, type SettingsStore } from './settings/store.js';
import { createAnnouncements } from './sync/announcements.js';
import { createSyncDispatcher, type SyncDispatcher } from './sync/dispatcher.js';
import { createRunLog } from './sync/run-log.js';
import { createWorkerHost } from './sync/worker-host.js';
import { syncConfigOf } from './targets/target-spec.js';
import { createBundleSource } from './pull/bundle-source.js';
import { createCheckins } from './pull/checkins.js';
import { createInitScriptReader } from './pull/init-script.js';
import { createRevisionDocuments } from './pull/revision-documents.js';
import { createTargetTokens } from './pull/target-tokens.js';

export { answerClientError } from './http/errors.js';

export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export interface ConfhubOptions {
  config: RuntimeConfig;
  logger: Logger;
  /**
   * `thread`: the sync worker runs (confhub as shipped). `none`: no worker thread (the HTTP tests):
   * a reload request answers WORKER_UNAVAILABLE, readiness says the worker is not running, and a
   * write made with `?wait=true` waits for a worker that never comes (it times out).
   */
  syncWorker: 'thread' | 'none';
  /** Lines the main thread's log destination dropped so far (the worker reports its own). */
  logLinesDropped?: () => number;
  /**
   * Webhook deliveries: how host names resolve (tests give names their own addresses; default the
   * system resolver) and the clock of their debounce, backoff and retry window.
   */
  notify?: { lookup?: HostLookup; clock?: Clock };
}

export interface Confhub {
  readonly app: Express;
  readonly config: RuntimeConfig;
  readonly settings: SettingsStore;
  readonly audit: AuditLog;
  readonly events: EventLog;
  readonly webhooks: WebhookStore;
  readonly outbox: Outbox;
  readonly sync: SyncDispatcher;
  readonly db: Database;
  readonly keyring: Keyring;
  /** Shipped defaults installed at this start (full paths). */
  readonly installed: readonly string[];
  /** This start generated the master key file. */
  readonly masterKeyCreated: boolean;
  readonly secrets: FillSecretsResult;
  /** Keys the shipped template added to config.ini at this start, and keys it no longer has. */
  readonly upgrade: MergeTemplateResult;
  /** The live channel of the event log; its clients are closed (1001) by close(). */
  readonly websocket: WebSocketChannel;
  /** The listening server's `upgrade` listener: the WebSocket channel, 404 for any other path. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Lets the writes and the apply in flight land, stops the worker, closes the database, releases the lock. */
  close(): Promise<void>;
}

export async function createConfhub(options: ConfhubOptions): Promise<Confhub> {
  const { config, logger } = options;
  const installed = await installShippedDefaults(config);
  const lock = await acquireInstanceLock(config.dataDir);
  /** What a start that fails half-way has opened, closed in reverse order. */
  const opened: (() => unknown)[] = [];
  try {
    return await compose(options, { installed, opened, release: async () => lock.release() });
  } catch (error) {
    for (const undo of opened.reverse())
      await Promise.resolve(undo()).catch((cause: unknown) => logger.error({ err: cause }, 'closing after a failed start failed'));
    await lock.release();
    throw error;
  }
}

interface CompositionState {
  readonly installed: string[];
  readonly opened: (() => unknown)[];
  readonly release: () => Promise<void>;
}

async function compose(
  { config, logger, syncWorker, logLinesDropped, notify: notifyOptions = {} }: ConfhubOptions,
  { installed, opened, release }: CompositionState,
): Promise<Confhub> {
  for (const path of installed) logger.info({ path }, 'installed shipped default');
  for (const name of await removeStaleTempFiles(config.configPath)) logger.warn({ name }, 'removed a temp file left by an interrupted write');
  const keys = await loadKeyring(config.masterKey);
  if (keys.created) logger.info({ path: config.masterKey.file }, 'generated the master key that seals secrets in config.ini (first start); back it up');
  for (const warning of keys.warnings) logger.warn(warning);
  const { keyring } = keys;
  const db = openDatabase({ path: config.databasePath });
  opened.push(() => db.close());
  const audit = createAuditLog({ db });
  const events = createEventLog({ db, logger });
  // The dispatcher is created after the store, which announces each revision to it just before writing.
  let announce: (announcement: RevisionAnnouncement) => void = () => undefined;
  let landed: (revision: string) => void = () => undefined;
  const announcements = createAnnouncements({ db, logger });
  /**
   * On disk first: killed after the rename and before the worker committed the revision, the
   * next start still names its author. Best effort: a write is not refused for its announcement.
   */
  const persistAnnouncement = (announcement: RevisionAnnouncement): void => {
    try {
      announcements.recordOwn({ ...announcement, actor: actorRef(announcement.actor) });
    } catch (error) {
      logger.warn({ err: error, revision: announcement.revision }, 'the author of this write could not be kept for a restart');
    }
  };
  // system.ini first: it says how config.ini's values are resolved.
  const system = createReadOnlyIniStore({ path: config.systemPath, label: 'system.ini', schema: SYSTEM_SCHEMA });
  const systemDoc = system.read().doc;
  const resolveSettings = resolveSettingsOf({ system: systemDoc, environment: config.environment });
  const settings = createSettingsStore({
    path: config.configPath,
    label: 'config.ini',
    schema: CONFIG_SCHEMA,
    keyring,
    resolve: resolveSettings,
    audit,
    logger,
    beforeCommit: (announcement) => {
      persistAnnouncement(announcement);
      announce(announcement);
    },
    // A hand edit's seal is announced with the hand edit, by the worker, with every key it changed.
    landed: (revision) => landed(revision),
    afterCommit: (committed) => {
      if (!ANNOUNCED_BY_WORKER.has(committed.source)) publishChanges(events, committed);
    },
    // Every API request reads config.ini: it is checked only when its directory reports a change.
    watch: {},
  });
  opened.push(() => settings.close());
  // Fail fast on a file that cannot be read at all, on secrets this master key cannot open, and on bad declarations.
  try {
    settings.read();
  } catch (error) {
    if (isAppError(error) && error.code === 'SECRET_UNREADABLE') {
      // Nothing is sealed with a key made now: removed, the next start says the same instead of naming that key.
      if (keys.created) rmSync(config.masterKey.file, { force: true });
      throw new AppError('STARTUP_CONFIG_INVALID', {
        message: 'config.ini holds secrets the master key cannot open',
        details: `config.ini holds secrets the master key (${keys.origin}) cannot open: ${error.details}${
          // A key made now cannot open what an earlier start sealed: the usual cause is a lost key file.
          keys.created ? `; ${config.masterKey.file} did not exist: put the master key that sealed them back from a backup` : ''
        }`,
        cause: error,
      });
    }
    throw error;
  }
  const syncConfig = syncConfigOf(systemDoc, config);
  checkTargetPaths(syncConfig);
  const historyPush = historyConfigOf(systemDoc, { configDir: config.configDir });
  const notify = notifyConfigOf(systemDoc);
  const addressPolicy = createAddressPolicy({ allow: notify.allow });
  const allowedOrigins = parseAllowedOrigins(systemDoc);
  const metrics = createMetrics();
  const runLog = createRunLog({ db, logger });
  let websocket: WebSocketChannel | undefined;
  let dispatcher: SyncDispatcher | undefined;
  const workerHost = createWorkerHost({
    init: {
      configPath: config.configPath,
      dataDir: config.dataDir,
      configDir: config.configDir,
      logLevel: config.logLevel,
      // The worker's stdout is not the terminal: main tells it how its lines are shown.
      logFormat: resolveLogFormat(config.logFormat),
      historyDir: config.historyDir,
      sync: syncConfig,
      resolve: resolveSettings,
      ...(historyPush ? { historyPush } : {}),
      masterKeys: [keyring.current, ...[...keyring.byId.values()].filter((key) => key !== keyring.current)].map((key) => new Uint8Array(key.key)),
    },
    initAtStart: () => {
      const commit = runLog.lastAppliedCommit();
      return commit ? { lastAppliedCommit: commit } : {};
    },
    logger,
    stopTimeoutMs: config.stopTimeoutMs,
    onMessage: (message) => dispatcher?.onWorkerMessage(message),
    onExit: () => dispatcher?.onWorkerExit(),
  });
  opened.push(() => workerHost.stop());
  const sync = createSyncDispatcher({
    targets: syncConfig.targets,
    announcements,
    runLog,
    audit,
    settings,
    events,
    metrics,
    logger,
    worker: { send: (message) => workerHost.send(message), alive: () => workerHost.alive(), restarts: () => workerHost.restarts() },
  });
  dispatcher = sync;
  const webhooks = createWebhookStore({ db, keyring, urlProblem: (url) => endpointUrlProblem(url, addressPolicy), maxWebhooks: notify.maxWebhooks });
  const guarded = createGuardedPost({ policy: addressPolicy, ...(notifyOptions.lookup ? { lookup: notifyOptions.lookup } : {}) });
  const outbox = createOutbox({
    db,
    events,
    store: webhooks,
    config: notify,
    logger,
    post: (input) => guarded.post(input),
    format: createDeliveryFormat({ userAgent: `confhub/${VERSION}` }),
    parseRetryAfter: (value, now) => parseRetryAfter(value, now),
    metrics: { delivery: (input) => metrics.webhookDelivery(input) },
    ...(notifyOptions.clock ? { clock: notifyOptions.clock } : {}),
  });
  opened.push(() => outbox.stop());
  metrics.observe({
    webhookQueue: () => outbox.depth(),
    sourceValid: () => sync.status().source.valid,
    workerRestarts: () => workerHost.restarts(),
    logLinesDropped: logLinesDropped ?? (() => 0),
    websocketClients: () => websocket?.clients().length ?? 0,
    targets: syncConfig.targets.map((target) => target.name),
  });
  announce = (announcement) => sync.announce(announcement);
  landed = (revision) => sync.landed(revision);
  // Written before the worker starts; their announcements wait for it, so the history names them.
  const upgrade = await mergeShippedTemplate({
    store: settings,
    templateText: readFileSync(resolve(SHIPPED_CONFIG_DIR, 'config.ini'), 'utf8'),
    recordPath: config.templateRecordPath,
    schema: CONFIG_SCHEMA,
    logger,
  });
  const secrets = await fillMissingSecrets({ store: settings, schema: CONFIG_SCHEMA, initialApiKey: config.initialApiKey });
  // An installation from before sealing (or a hand edit made while confhub was stopped) holds plain text secrets.
  if (settings.read().unsealed.length > 0) await settings.seal({ actor: FILE_ACTOR });
  if (config.initialApiKey !== undefined && !secrets.apiKeyFromEnvironment) {
    logger.warn('CONFHUB_API_KEY is ignored: config.ini already holds an API key (it is only used on first start)');
  }
  if (syncWorker === 'thread') workerHost.start();

  // The main thread's own drivers (the worker has its own): building them connects to nothing,
  // so an absent Docker engine or supervisord only shows in the check results.
  const services = createConnectionChecks({
    targets: syncConfig.targets,
    configDoc: () => {
      try {
        return settings.read().resolved.doc;
      } catch {
        return settings.lastGood()?.resolved.doc;
      }
    },
    docker: createDockerDriver({ socketPath: syncConfig.settings.dockerSocket, logger }),
    supervisor: createSupervisorDriver({ url: syncConfig.settings.supervisorUrl, logger }),
    http: createHttpProbe(),
    logger,
  });

  const history = createHistoryQueries({
    reader: createHistoryReader({ gitDir: config.historyDir, workTree: config.configDir }),
    db,
    schema: CONFIG_SCHEMA,
    keyring,
    resolve: resolveSettings,
  });
  const tokens = createTargetTokens({ db });
  const checkins = createCheckins({ db });
  const declared = syncConfig.targets.map((target) => target.name);
  const forgotten = tokens.forgetOtherTargets(declared);
  if (forgotten > 0) logger.warn({ tokens: forgotten }, 'removed the read-only tokens of targets system.ini no longer declares');
  checkins.forgetOtherTargets(declared);
  const bundles = createBundleSource({
    targets: syncConfig.targets,
    paths: syncConfig.paths,
    env: syncConfig.env,
    filesOnDisk: () => sync.filesOnDisk(),
    documentAt: createRevisionDocuments({
      db,
      textAt: async (commit) => (await history.contentAt(commit)).text,
      current: () => {
        try {
          return settings.read();
        } catch {
          return undefined;
        }
      },
      keyring,
      schema: CONFIG_SCHEMA,
      resolve: resolveSettings,
    }),
  });

  // After the first-start secrets: the key they made is the one in force.
  const access = createApiAccess({ settings, rateLimitPerMinute: config.rateLimitPerMinute, authFailuresPer15Min: config.authFailuresPer15Min });
  const app = createApp({
    resolve: resolveSettings,
    templates: {
      catalog: () => loadTemplates({ shippedDir: SHIPPED_TEMPLATES_DIR, customDir: resolve(config.configDir, 'templates') }),
      context: { targets: syncConfig.targets, paths: syncConfig.paths, env: syncConfig.env },
    },
    settings,
    system,
    audit,
    logger,
    version: VERSION,
    access,
    bodyLimitBytes: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
    sync,
    events,
    metrics,
    services,
    env: { declarations: syncConfig.env, targets: syncConfig.targets },
    notify: { store: webhooks, outbox },
    ...(notifyOptions.clock ? { clock: notifyOptions.clock } : {}),
    startup: {
      installed: installed.map((path) => basename(path)),
      apiKeyGenerated: secrets.apiKeyGenerated || secrets.apiKeyFromEnvironment,
      passwordsGenerated: [...secrets.passwordsGenerated, ...upgrade.generated],
      masterKeyCreated: keys.created,
      upgrade,
    },
    history,
    pull: {
      targets: syncConfig.targets,
      bundles,
      tokens,
      checkins,
      initScript: createInitScriptReader(),
    },
  });

  // Deliveries the last run left (and events it did not get to) go out now.
  outbox.start();
  const channel = createWebSocketChannel({
    log: events,
    logger,
    authenticate: createWebSocketAuthentication({ app, access, settings }),
    stillAuthorized: createConnectedKeyCheck({ access, settings }),
    originAllowed: createOriginCheck({ allowed: allowedOrigins }),
  });
  websocket = channel;
  opened.push(() => channel.close());

  let closing: Promise<void> | undefined;
  return {
    app,
    websocket: channel,
    handleUpgrade: createUpgradeListener({ app, access, channel }),
    config,
    settings,
    audit,
    events,
    webhooks,
    outbox,
    sync,
    db,
    keyring,
    installed,
    masterKeyCreated: keys.created,
    secrets,
    upgrade,
    close() {
      closing ??= (async () => {
        // Live clients are told at once (1001); their closing (up to its grace) runs beside the
        // rest, and ends before the event log they read closes with the database.
        const clientsClosed = channel.close();
        // Stopping: a late write into a replaced file is still read and merged back, without
        // waiting out the watch.
        settings.hurry();
        await settings.idle();
        // Checks in flight end within their probe timeout; waited for beside the worker, so they
        // add nothing to the shutdown budget, and no probe's socket outlives the process.
        await Promise.all([workerHost.stop(), services.idle(), outbox.stop(), clientsClosed]);
        // A rollback the worker asked for while stopping is written before the database closes.
        settings.hurry();
        await settings.idle();
        settings.close();
        db.close();
        await release();
      })();
      return closing;
    },
  };
}
