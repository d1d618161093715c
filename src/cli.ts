#!/usr/bin/env node
/**
 * confhub command line: what each command does. The commands, their arguments, options and help
 * are in one table (cli/command-table.ts); a usage error is one line and exit code 2, any other
 * refusal one line and exit code 1.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { printable } from './core/names.js';
import { createAuditLog } from './audit/audit-log.js';
import { generateApiKey } from './bootstrap/first-boot-secrets.js';
import { openDatabase } from './db/database.js';
import { createTargetTokens } from './pull/target-tokens.js';
import { targetNotFound } from './pull/bundle-source.js';

import { AppError, ERROR_CATALOGUE, isAppError } from './core/errors.js';
import { unusableDirectory } from './fs/write-failure.js';
import { startIdleGc } from './idle-gc.js';
import { createLogDestination, createLogger, resolveLogFormat } from './log.js';
import { loadRuntimeConfig, type RuntimeConfig } from './runtime-config.js';
import { loadKeyring } from './secrets/master-key.js';
import type { Keyring } from './secrets/secret-box.js';
import { rotateMasterKey } from './secrets/rekey.js';
import { resealWebhooks } from './notify/webhook-store.js';
import { CONFIG_SCHEMA, SYSTEM_SCHEMA } from './settings/schema.js';
import { apiKeySource, readApiKey } from './settings/read-api-key.js';
import { createSettingsStore, toSnapshot } from './settings/store.js';
import { createHistoryReader, createHistoryWriter } from './history/history-repo.js';
import { createHistoryQueries, MAX_HISTORY_LIMIT } from './history/history-queries.js';
import { historyConfigOf } from './history/push.js';
import { validationFailed } from './settings/plan-changes.js';
import { decodeText } from './settings/revision.js';
import { checkDocument } from './settings/check-document.js';
import { validateDocument } from './settings/validate.js';
import { NO_RESOLVE, resolveDocument, type ResolveSettings } from './settings/resolve.js';
import { resolveSettingsOf } from './settings/resolve-settings.js';
import { environmentNameProblem } from './settings/overlays.js';
import { loadTemplates, SHIPPED_TEMPLATES_DIR } from './templates/template-catalog.js';
import { findTemplate, planTemplate, previewTemplate, templateJson } from './templates/template-preview.js';
import { parseAllowedOrigins } from './events/websocket-origins.js';
import { checkTargetPaths } from './fs/contained-path.js';
import { syncConfigOf } from './targets/target-spec.js';
import { planTargets } from './sync/plan.js';
import { buildReconciler, repairInterruptedRecreates } from './sync/build-reconciler.js';
import { createRunLog } from './sync/run-log.js';
import { createAnnouncements } from './sync/announcements.js';
import { actorRef, FILE_ACTOR } from './core/actor.js';
import { auditSyncRun, publishSyncRun } from './sync/dispatcher.js';
import { createRevisionRecorder } from './sync/revision-recorder.js';
import { maskText } from './core/mask.js';
import { maskedSpellingsOf } from './settings/mask-secrets.js';
import { parseIni } from './ini/document.js';
import { openDocument } from './secrets/sealed-document.js';
import { acquireInstanceLock } from './bootstrap/instance-lock.js';
import { startServer, VERSION, type RunningServer } from './server.js';
import { createConfhub } from './main.js';
import type { Database } from 'better-sqlite3';
import { editConfig, editorCommand, runEditorProcess } from './settings/edit-session.js';
import { createInterface } from 'node:readline/promises';
import { parseCommandLine, type CommandName, type ParsedCommandLine } from './cli/command-table.js';

/** Beyond CONFHUB_STOP_TIMEOUT_MS: HTTP draining (up to 2 s) and closing the database. */
const SHUTDOWN_GRACE_MS = 2500;

const API_KEY_HINT =
  'generated a random API key (first start). Read it with "confhub apikey show" (in the container: docker exec CONTAINER confhub apikey show; from a checkout: npm run --silent apikey) and send it as the x-api-key header';

async function serve(config: RuntimeConfig): Promise<void> {
  // Node itself writes warnings to stderr: a reader that went away must not end the service.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  const destination = createLogDestination({ format: resolveLogFormat(config.logFormat) });
  const logger = createLogger({ level: config.logLevel, destination });
  // Handlers first: a SIGTERM that arrives while starting still ends in a clean shutdown.
  let stopping = false;
  let started: Promise<RunningServer> | undefined;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // The worker is ended after CONFHUB_STOP_TIMEOUT_MS; should anything else hang, the process
    // still ends before a process manager has to kill it.
    setTimeout(() => {
      logger.error({ afterMs: config.stopTimeoutMs + SHUTDOWN_GRACE_MS }, 'shutdown did not finish; exiting');
      process.exit(1);
    }, config.stopTimeoutMs + SHUTDOWN_GRACE_MS).unref();
    (started ?? Promise.reject(new Error('not started')))
      .then((server) => server.close())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  started = startServer(config, logger, { logLinesDropped: () => destination.dropped() });
  const server = await started;
  startIdleGc({ logger });
  if (server.secrets.apiKeyFromEnvironment) logger.info('API key set from CONFHUB_API_KEY (first start)');
  if (server.secrets.passwordsGenerated.length > 0)
    logger.info({ keys: server.secrets.passwordsGenerated }, 'generated random service passwords (first start)');
  logger.info({ url: server.url, dataDir: config.dataDir, configDir: config.configDir }, `confhub ${VERSION} listening on ${server.url}`);
  // Said once, on the start that made the key; the key itself never reaches a log.
  if (server.secrets.apiKeyGenerated) logger.info(API_KEY_HINT);
}

async function showApiKey(config: RuntimeConfig): Promise<void> {
  if (!existsSync(config.configPath))
    throw new AppError('INVALID_REQUEST', {
      message: 'no config.ini',
      details: `no config.ini at ${config.configPath} yet; run confhub once (or start confhub) to create it`,
    });
  const key = await readApiKey(config);
  if (!key)
    throw new AppError('INVALID_REQUEST', {
      message: 'no API key',
      details: `no API key in ${config.configPath} yet; run confhub once (or start confhub) to generate it`,
    });
  process.stdout.write(`${key}\n`);
}

/** How config.ini's values resolve here: system.ini's [confhub] and CONFHUB_ENVIRONMENT, as a start reads them. */
function resolveSettingsFor(config: RuntimeConfig): ResolveSettings {
  const system = toSnapshot({ text: readText(config.systemPath, 'system.ini'), label: 'system.ini', schema: SYSTEM_SCHEMA }).doc;
  return resolveSettingsOf({ system, environment: config.environment });
}

/** Runs a command that writes config.ini from this process: through a settings store, audited. */
async function withStore<T>(config: RuntimeConfig, task: (store: ReturnType<typeof createSettingsStore>) => Promise<T>): Promise<T> {
  const { keyring } = await loadKeyring({ ...config.masterKey, createFile: false });
  const db = openDatabase({ path: config.databasePath });
  try {
    const logger = createLogger({ level: 'silent' });
    const announcements = createAnnouncements({ db, logger });
    const store = createSettingsStore({
      path: config.configPath,
      label: 'config.ini',
      schema: CONFIG_SCHEMA,
      keyring,
      resolve: resolveSettingsFor(config),
      audit: createAuditLog({ db }),
      logger,
      // A running confhub sees the new file like a hand edit; this tells it who wrote it.
      beforeCommit: (announcement) => {
        // Best effort: without it the running confhub records the write as a hand edit.
        try {
          announcements.record({ ...announcement, actor: actorRef(announcement.actor) });
        } catch (error) {
          logger.warn({ err: error }, 'the author of this write could not be announced to a running confhub');
        }
      },
    });
    try {
      return await task(store);
    } finally {
      // Follow-up writes (a hand edit merged back) land, audited, before the database closes.
      await store.idle();
      store.close();
    }
  } finally {
    db.close();
  }
}

async function rotateApiKey(config: RuntimeConfig): Promise<void> {
  // The key clients send comes from where the running environment resolves it: rotate that one.
  const source = await apiKeySource(config);
  if (source.raw) {
    throw new AppError('INVALID_REQUEST', {
      message: 'the API key is a reference',
      details: `api_key.key refers to another key in ${source.section}; rotate that key, or write the key itself`,
    });
  }
  const key = generateApiKey();
  // A running confhub sees this like a hand edit: the new key works at once.
  await withStore(config, (store) =>
    store.update({ changes: [{ section: source.section, key: 'key', value: key }], actor: { type: 'system', id: 'cli' }, source: 'cli' }),
  );
  process.stdout.write(`${key}\n`);
}

async function rotateKey(config: RuntimeConfig): Promise<void> {
  // Held while rotating: a confhub starting meanwhile would load the old key.
  const lock = await acquireInstanceLock(config.dataDir).catch((cause: unknown) => {
    if (!isAppError(cause) || cause.data.busy !== true) throw cause;
    throw new AppError('INVALID_REQUEST', {
      message: 'confhub is running',
      details: `confhub is running with the data directory ${config.dataDir}; stop it, rotate, and start it again`,
      cause,
    });
  });
  const db = openDatabase({ path: config.databasePath });
  try {
    const result = await rotateMasterKey({
      source: config.masterKey,
      configPath: config.configPath,
      audit: createAuditLog({ db }),
      logger: createLogger({ level: 'silent' }),
    });
    // The old key stays among the retired ones, so this can come after: an interruption leaves them readable.
    const webhooks = resealWebhooks({ db, keyring: (await loadKeyring({ ...config.masterKey, createFile: false })).keyring });
    process.stdout.write(`master key rotated: ${result.from} -> ${result.to}; ${result.resealed + webhooks} value(s) sealed again\n`);
  } finally {
    db.close();
    await lock.release();
  }
}

/** Every problem of config.ini and system.ini, as `confhub validate` prints them. */
async function validate(config: RuntimeConfig): Promise<void> {
  const problems: string[] = [];
  const attempt = (label: string, check: () => void): void => {
    try {
      check();
    } catch (error) {
      if (!isAppError(error)) throw error;
      const errors = error.data.errors ?? [];
      problems.push(...(errors.length > 0 ? errors.map((e) => `${label}: ${e.message}`) : [`${label}: ${error.details}`]));
    }
  };
  const { keyring } = await loadKeyring({ ...config.masterKey, createFile: false });
  let resolve: ResolveSettings = NO_RESOLVE;
  attempt('system.ini', () => {
    resolve = resolveSettingsFor(config);
  });
  attempt('config.ini', () => {
    const { doc } = toSnapshot({ text: readText(config.configPath, 'config.ini'), label: 'config.ini', schema: CONFIG_SCHEMA, keyring });
    const { issues } = checkDocument({ doc, schema: CONFIG_SCHEMA, resolve });
    if (issues.length > 0) throw validationFailed(issues);
  });
  attempt('system.ini', () => {
    const { doc } = toSnapshot({ text: readText(config.systemPath, 'system.ini'), label: 'system.ini', schema: SYSTEM_SCHEMA });
    const issues = validateDocument({ doc, schema: SYSTEM_SCHEMA });
    if (issues.length > 0) throw validationFailed(issues);
    checkTargetPaths(syncConfigOf(doc, config));
    historyConfigOf(doc, { configDir: config.configDir });
    parseAllowedOrigins(doc);
  });
  if (problems.length > 0) {
    process.stderr.write(`${problems.map((p) => `confhub: ${p}`).join('\n')}\n`);
    process.exitCode = 1;
    return;
  }
  // Env sections that system.ini's declarations leave unused or in doubt: confhub runs with them
  // (an upgrade may drop a consumer), but what they hold does not reach anyone as written.
  for (const issue of envWarnings(config, keyring)) process.stdout.write(`warning: config.ini: ${issue}\n`);
  process.stdout.write('config.ini and system.ini are valid\n');
}

function envWarnings(config: RuntimeConfig, keyring: Keyring | undefined): string[] {
  const { doc } = toSnapshot({ text: readText(config.configPath, 'config.ini'), label: 'config.ini', schema: CONFIG_SCHEMA, keyring });
  const system = toSnapshot({ text: readText(config.systemPath, 'system.ini'), label: 'system.ini', schema: SYSTEM_SCHEMA }).doc;
  const resolve = resolveSettingsOf({ system, environment: config.environment });
  return checkDocument({ doc, schema: CONFIG_SCHEMA, resolve, envDeclarations: syncConfigOf(system, config).env }).issues.map((issue) => issue.message);
}

async function plan(config: RuntimeConfig): Promise<void> {
  const { keyring } = await loadKeyring({ ...config.masterKey, createFile: false });
  const system = toSnapshot({ text: readText(config.systemPath, 'system.ini'), label: 'system.ini', schema: SYSTEM_SCHEMA });
  const resolve = resolveSettingsOf({ system: system.doc, environment: config.environment });
  // The values the targets would get: resolved, as the worker resolves them.
  const { doc } = toSnapshot({ text: readText(config.configPath, 'config.ini'), label: 'config.ini', schema: CONFIG_SCHEMA, keyring, resolve }).resolved;
  const { targets, paths, env } = syncConfigOf(system.doc, config);
  // The files on disk hold the values of the last applied revision: the newest commit's secrets are masked too.
  const reader = historyReader(config);
  const head = await reader.head().catch(() => null);
  const earlier = head
    ? [
        resolveDocument({
          doc: openDocument({ stored: parseIni(await reader.contentAt(head)), schema: CONFIG_SCHEMA, keyring, tolerate: true }).doc,
          schema: CONFIG_SCHEMA,
          settings: resolve,
        }).doc,
      ]
    : [];
  const plans = await planTargets({ targets, paths, doc, schema: CONFIG_SCHEMA, earlier, env });
  const mode = (m: number | null): string => (m === null ? '-' : `0${m.toString(8)}`);
  for (const p of plans) {
    const what = p.change === 'none' ? 'unchanged' : p.change === 'mode' ? `mode ${mode(p.mode.from)} -> ${mode(p.mode.to)}` : p.change;
    process.stdout.write(`== ${p.target} (${p.output}): ${what}\n`);
    if (p.error) process.stdout.write(`   ${p.error.code}: ${p.error.details}\n`);
    if (p.diff) process.stdout.write(p.diff.endsWith('\n') ? p.diff : `${p.diff}\n`);
  }
  if (plans.some((p) => p.error)) process.exitCode = 1;
}

/**
 * `once` logs to stderr. Unless CONFHUB_LOG_LEVEL says otherwise, only errors: its steps and each
 * target's outcome are its output, and the warnings of a service found unreachable speak of
 * retries `once` does not make.
 */
function onceLogger(config: RuntimeConfig, { levelSet }: { levelSet: boolean }) {
  const destination = createLogDestination({ fd: 2, format: resolveLogFormat(config.logFormat, process.stderr.isTTY === true) });
  return createLogger({ level: levelSet ? config.logLevel : 'error', destination });
}

/** What a start does (the same composition as serve, without HTTP and worker), one reconcile in this thread, exit. */
async function once(config: RuntimeConfig): Promise<void> {
  const say = (line: string): void => void process.stdout.write(`${line}\n`);
  // Whether the level was chosen, which the parsed config cannot tell.
  const logger = onceLogger(config, { levelSet: process.env.CONFHUB_LOG_LEVEL !== undefined });
  const confhub = await createConfhub({ config, logger, syncWorker: 'none' }).catch((cause: unknown) => {
    if (!isAppError(cause) || cause.data.busy !== true) throw cause;
    throw new AppError('INVALID_REQUEST', {
      message: 'confhub is running',
      details: `confhub is running with the data directory ${config.dataDir}; ask it with POST /api/v1/settings/reload instead`,
    });
  });
  try {
    for (const path of confhub.installed) say(`installed ${path} from the shipped defaults`);
    if (confhub.masterKeyCreated) say(`generated the master key ${config.masterKey.file} (back it up)`);
    if (confhub.secrets.apiKeyGenerated) say('generated the API key (print it with: confhub apikey show)');
    if (confhub.secrets.apiKeyFromEnvironment) say('set the API key from CONFHUB_API_KEY');
    else if (config.initialApiKey !== undefined) say('ignored CONFHUB_API_KEY: config.ini already holds an API key (it is only used on first start)');
    const passwords = [...confhub.secrets.passwordsGenerated, ...confhub.upgrade.generated];
    if (passwords.length > 0) say(`generated passwords: ${passwords.join(', ')}`);
    const added = confhub.upgrade.added.filter((key) => !passwords.includes(key));
    if (added.length > 0) say(`added keys new in this version: ${added.join(', ')}`);
    const { keyring, db } = confhub;
    const snapshot = confhub.settings.read();
    const systemDoc = toSnapshot({ text: readText(config.systemPath, 'system.ini'), label: 'system.ini', schema: SYSTEM_SCHEMA }).doc;
    const resolve = resolveSettingsOf({ system: systemDoc, environment: config.environment });
    const { issues, resolved } = checkDocument({ doc: snapshot.doc, schema: CONFIG_SCHEMA, resolve });
    if (issues.length > 0) throw validationFailed(issues);
    const applied = await lastAppliedText(config, db);
    const sync = syncConfigOf(systemDoc, config);
    await repairInterruptedRecreates({ sync, logger });
    const reconciler = buildReconciler({ sync, logger, ...(applied ? { applied: { text: applied, keyring, resolve } } : {}) });
    const recorder = createRevisionRecorder({
      writer: createHistoryWriter({ gitDir: config.historyDir, workTree: config.configDir, logger }),
      schema: CONFIG_SCHEMA,
      keyring,
      resolve,
      logger,
      onStatus: () => undefined,
    });
    // The author the start's own writes announced (first boot, upgrade, sealing); a revision nobody
    // announced was written by hand, as a running confhub's start records it.
    const author = createAnnouncements({ db, logger }).take(snapshot.revision) ?? { actor: FILE_ACTOR, source: 'startup' as const };
    const head = await historyReader(config)
      .head()
      .catch(() => null);
    const commit = await recorder.record({ text: snapshot.text, revision: snapshot.revision, doc: resolved.doc, raw: snapshot.doc }, author);
    const revision = snapshot.revision.slice(0, 12);
    if (commit === null) say(`revision ${revision} could not be committed to the history (the warning above says why)`);
    else if (commit === head) say(`revision ${revision} is already in the history`);
    else say(`committed revision ${revision} to the history as ${author.actor.type}:${author.actor.id} (${author.source})`);
    const startedAt = Date.now();
    const result = await reconciler.reconcile({ revision: snapshot.revision, doc: resolved.doc, force: false });
    await recorder.idle();
    const secrets = maskedSpellingsOf({ docs: [resolved.doc], schema: CONFIG_SCHEMA });
    const maskedTargets = result.targets.map((t) =>
      t.error ? { ...t, error: { ...t.error, message: maskText(t.error.message, secrets), details: maskText(t.error.details, secrets) } } : t,
    );
    // The history shows the outcome of the commit this made, as it does for a running confhub's.
    createRunLog({ db, logger }).record({
      revision: snapshot.revision,
      commit,
      source: 'once',
      actor: author.actor,
      outcome: result.outcome,
      startedAt,
      finishedAt: Date.now(),
      targets: maskedTargets,
    });
    // The audit log and the event log tell of it as they do of a running confhub's runs.
    if (result.outcome !== 'unchanged') {
      auditSyncRun({ audit: confhub.audit, log: logger }, { result: { ...result, targets: maskedTargets }, finishedAt: Date.now(), actor: author.actor });
      publishSyncRun(confhub.events, { result: { ...result, targets: maskedTargets }, source: 'once', actor: author.actor }, sync.targets);
    }
    say(`revision ${revision} (commit ${commit?.slice(0, 12) ?? '-'}): ${result.outcome}`);
    for (const t of maskedTargets) say(`  ${t.target}: ${t.state}${t.error ? ` (${t.error.code}: ${t.error.details})` : ''}`);
    if (result.outcome === 'failed' || result.outcome === 'rolled_back') {
      const failed = maskedTargets.find((t) => t.error && t.error.code !== 'SERVICE_UNREACHABLE') ?? maskedTargets.find((t) => t.error);
      const where = failed?.error ? ` at ${failed.target}: ${failed.error.code}: ${failed.error.details}` : '';
      process.stderr.write(`confhub: once: revision ${revision} ${result.outcome === 'rolled_back' ? 'was rolled back' : 'failed'}${where}\n`);
      process.exitCode = 1;
    }
  } finally {
    await confhub.close();
  }
}

/** config.ini as the targets last applied it, from the history; undefined when that is not known. */
async function lastAppliedText(config: RuntimeConfig, db: Database): Promise<string | undefined> {
  try {
    const commit = createRunLog({ db, logger: createLogger({ level: 'silent' }) }).lastAppliedCommit();
    if (!commit) return undefined;
    const text = await historyReader(config).contentAt(commit);
    parseIni(text);
    return text;
  } catch {
    // Files a failure puts back are then checked at the URLs of the failing revision.
    return undefined;
  }
}

function readText(path: string, label: string): string {
  if (!existsSync(path))
    throw new AppError('CONFIG_INVALID', {
      message: `${label} is invalid`,
      details: `${path} does not exist; run confhub once (or start confhub) to install it from the shipped defaults`,
    });
  return decodeText(readFileSync(path), label);
}

async function history(config: RuntimeConfig, limitText: string): Promise<void> {
  const limit = Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_HISTORY_LIMIT) {
    throw new AppError('INVALID_REQUEST', {
      details: `history: --limit must be a whole number from 1 to ${MAX_HISTORY_LIMIT}, got "${limitText}"; see confhub history --help`,
    });
  }
  const { keyring } = await loadKeyring({ ...config.masterKey, createFile: false });
  const db = openDatabase({ path: config.databasePath });
  try {
    const service = createHistoryQueries({ reader: historyReader(config), db, schema: CONFIG_SCHEMA, keyring });
    const { commits } = await service.list({ limit });
    for (const c of commits) {
      process.stdout.write(
        `${c.id.slice(0, 12)}  ${c.time}  ${`${c.actor.type}:${c.actor.id}`.padEnd(22)}  ${c.source.padEnd(13)}  ${(c.sync?.outcome ?? '-').padEnd(11)}  ${c.summary}\n`,
      );
    }
  } finally {
    db.close();
  }
}

function historyReader(config: RuntimeConfig) {
  return createHistoryReader({ gitDir: config.historyDir, workTree: config.configDir });
}

/** After a refused copy: asks on a terminal whether to edit again; elsewhere there is nobody to ask. */
async function askToEditAgain(problems: readonly string[]): Promise<boolean> {
  process.stderr.write(`config.ini was not saved:\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
  if (!process.stdin.isTTY) return false;
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await prompt.question('Edit again? [Y/n] ');
    return !/^\s*n/i.test(answer);
  } finally {
    prompt.close();
  }
}

async function edit(config: RuntimeConfig): Promise<void> {
  const outcome = await withStore(config, (store) =>
    editConfig({ store, actor: { type: 'system', id: 'cli' }, runEditor: runEditorProcess(editorCommand(process.env)), again: askToEditAgain }),
  );
  if (outcome.kind === 'unchanged') process.stdout.write('config.ini unchanged\n');
  else if (outcome.kind === 'abandoned') {
    process.stderr.write('edit given up; config.ini unchanged\n');
    process.exitCode = 1;
  } else {
    const changed = outcome.result.changes.filter((c) => c.changed).map((c) => `${c.section}.${c.key.toLowerCase()}`);
    if (!outcome.result.written) process.stdout.write('config.ini unchanged: it changed meanwhile, and the edit changed no value of it\n');
    else process.stdout.write(`config.ini saved${changed.length > 0 ? `: ${changed.join(', ')} changed` : ' (comments or layout only)'}\n`);
  }
}

async function rollback(config: RuntimeConfig, commitish: string): Promise<void> {
  const reader = historyReader(config);
  const commit = await reader.resolve(commitish);
  const content = { commit, text: await reader.contentAt(commit) };
  const result = await withStore(config, (store) =>
    store.restore({ text: content.text, actor: { type: 'system', id: 'cli' }, source: 'rollback', rollbackOf: content.commit }),
  );
  const changed = result.changes.filter((c) => c.changed).map((c) => `${c.section}.${c.key.toLowerCase()}`);
  process.stdout.write(
    `config.ini restored to ${content.commit.slice(0, 12)}${changed.length > 0 ? `: ${changed.join(', ')} changed` : ': no value changed'}\n`,
  );
}

/** The templates as a start finds them: shipped, and the administrator's own in the config directory. */
function templateCatalog(config: RuntimeConfig): ReturnType<typeof loadTemplates> {
  return loadTemplates({ shippedDir: SHIPPED_TEMPLATES_DIR, customDir: resolvePath(config.configDir, 'templates') });
}

/** `VAR=VALUE` arguments; a variable given twice or without `=` is a usage error. */
function templateVariables(args: readonly string[]): Record<string, string> {
  const variables: Record<string, string> = Object.create(null);
  for (const arg of args) {
    const eq = arg.indexOf('=');
    if (eq <= 0) throw new AppError('INVALID_REQUEST', { message: 'bad variable', details: `"${printable(arg)}" is not VAR=VALUE` });
    const name = arg.slice(0, eq);
    if (name in variables) throw new AppError('INVALID_REQUEST', { message: 'bad variable', details: `${printable(name)} is given twice` });
    variables[name] = arg.slice(eq + 1);
  }
  return variables;
}

async function template(config: RuntimeConfig, { args, rest = [], options }: Extract<ParsedCommandLine, { kind: 'run' }>): Promise<void> {
  const say = (line: string): void => void process.stdout.write(`${line}\n`);
  const { templates, problems } = templateCatalog(config);
  if (args.action === 'list') {
    for (const t of templates) say(`${t.name.padEnd(24)} ${t.origin.padEnd(8)} ${t.title}`);
    for (const problem of problems) process.stderr.write(`confhub: ${problem.details}\n`);
    return;
  }
  const [name, ...given] = rest;
  if (name === undefined)
    throw new AppError('INVALID_REQUEST', {
      message: 'no template',
      details: `template ${args.action} needs a template name; confhub template list shows them`,
    });
  const chosen = findTemplate({ templates, problems }, name);
  if (args.action === 'show') {
    if (given.length > 0) throw new AppError('INVALID_REQUEST', { message: 'too many arguments', details: 'template show takes only the name' });
    process.stdout.write(`${JSON.stringify(templateJson(chosen, { sections: true, schema: CONFIG_SCHEMA }), null, 2)}\n`);
    return;
  }
  const variables = templateVariables(given);
  const environment = typeof options.environment === 'string' ? options.environment : undefined;
  if (environment !== undefined && environmentNameProblem(environment)) {
    throw new AppError('INVALID_NAME', { details: `--environment ${printable(environment)}: ${environmentNameProblem(environment)}` });
  }
  const { keyring } = await loadKeyring({ ...config.masterKey, createFile: false });
  const system = toSnapshot({ text: readText(config.systemPath, 'system.ini'), label: 'system.ini', schema: SYSTEM_SCHEMA }).doc;
  const resolve = resolveSettingsOf({ system, environment: config.environment });
  const { doc } = toSnapshot({ text: readText(config.configPath, 'config.ini'), label: 'config.ini', schema: CONFIG_SCHEMA, keyring });
  const input = { template: chosen, variables, environment, doc, schema: CONFIG_SCHEMA, resolve };
  if (args.action === 'preview') {
    const sync = syncConfigOf(system, config);
    const preview = await previewTemplate(input, { targets: sync.targets, paths: sync.paths, env: sync.env });
    say(`template ${chosen.name}${environment ? ` in environment ${environment}` : ''}: ${preview.valid ? 'would be accepted' : 'would be refused'}`);
    for (const variable of preview.unresolved) say(`  missing variable: ${variable}`);
    for (const issue of preview.errors) say(`  ${issue.code}: ${issue.message}`);
    for (const key of preview.changes)
      say(`  ${key.key}: ${key.change === 'added' ? 'added' : key.change}${key.change === 'unchanged' ? '' : ` -> ${key.after}`}`);
    if (preview.diff) process.stdout.write(preview.diff.endsWith('\n') ? preview.diff : `${preview.diff}\n`);
    for (const target of preview.targets) say(`== target ${target.target}: ${target.change}${target.service ? ` (reloads ${target.service})` : ''}`);
    if (!preview.valid) process.exitCode = 1;
    return;
  }
  const plan = planTemplate(input);
  const missing = plan.unresolved.map((v) => ({ field: `variable.${v}`, code: 'REQUIRED', message: `variable.${v} is required` }));
  if (missing.length > 0 || plan.errors.length > 0) throw validationFailed([...missing, ...plan.errors]);
  const result = await withStore(config, (store) =>
    store.update({ changes: plan.changes, actor: { type: 'system', id: 'cli' }, source: 'template', template: chosen.name, masked: plan.secretKeys }),
  );
  const changed = result.changes.filter((c) => c.changed).map((c) => `${c.section}.${c.key.toLowerCase()}`);
  say(`template ${chosen.name} applied${changed.length > 0 ? `: ${changed.join(', ')} changed` : ': no value changed'}`);
}

/** `confhub token create|list|revoke TARGET [ID]`: a target's read-only tokens, in the database a running confhub shares. */
async function token(config: RuntimeConfig, { args, rest = [], options }: Extract<ParsedCommandLine, { kind: 'run' }>): Promise<void> {
  const [target, id, ...extra] = rest;
  const wanted = args.action === 'revoke' ? 2 : 1;
  if (target === undefined || (wanted === 2 && id === undefined) || rest.length > wanted) {
    throw new AppError('INVALID_REQUEST', {
      message: 'bad arguments',
      details: `token ${args.action} takes ${wanted === 2 ? 'the target and the token id' : 'the target'}${extra.length > 0 || rest.length > wanted ? ', nothing more' : ''}`,
    });
  }
  const system = toSnapshot({ text: readText(config.systemPath, 'system.ini'), label: 'system.ini', schema: SYSTEM_SCHEMA }).doc;
  if (!syncConfigOf(system, config).targets.some((t) => t.name === target)) throw targetNotFound(target);
  const db = openDatabase({ path: config.databasePath });
  try {
    const tokens = createTargetTokens({ db });
    const audit = (action: string, key: string): void =>
      createAuditLog({ db }).record([
        {
          at: Date.now(),
          actor: { type: 'system', id: 'cli' },
          action,
          section: `target:${target}`,
          key,
          oldValue: null,
          newValue: null,
          result: 'applied',
          errorCode: null,
          revision: null,
        },
      ]);
    if (args.action === 'list') {
      for (const t of tokens.list(target))
        process.stdout.write(
          `${t.id}  ${new Date(t.createdAt).toISOString()}  ${t.lastUsedAt === null ? 'never used' : `used ${new Date(t.lastUsedAt).toISOString()}`}  ${t.description}\n`,
        );
      return;
    }
    if (args.action === 'revoke') {
      tokens.revoke(target, id!);
      audit('target.token.revoke', id!);
      process.stderr.write(`confhub: token ${id} of target ${target} revoked\n`);
      return;
    }
    const made = tokens.create(target, { description: typeof options.description === 'string' ? options.description : undefined, now: Date.now() });
    audit('target.token.create', made.record.id);
    // The token alone on stdout (for a file); what it is on stderr.
    process.stdout.write(`${made.token}\n`);
    process.stderr.write(`confhub: token ${made.record.id} of target ${target} made; it is shown only now\n`);
  } finally {
    db.close();
  }
}

/** One line: a start-up refusal's details are a whole sentence; other codes' short message says what failed. */
function refusal(error: AppError): string {
  if (error.code === 'STARTUP_CONFIG_INVALID' || error.message === ERROR_CATALOGUE[error.code].message || error.details.startsWith(error.message))
    return error.details;
  return error.details === error.message ? error.message : `${error.message}: ${error.details}`;
}

type Handler = (config: RuntimeConfig, input: Extract<ParsedCommandLine, { kind: 'run' }>) => Promise<void>;

const HANDLERS: Record<Exclude<CommandName, 'version'>, Handler> = {
  serve: (config) => serve(config),
  once: (config) => once(config),
  validate: (config) => validate(config),
  plan: (config) => plan(config),
  history: (config, { options }) => history(config, String(options.limit)),
  rollback: (config, { args }) => rollback(config, args.commit!),
  edit: (config) => edit(config),
  apikey: (config, { args }) => (args.action === 'rotate' ? rotateApiKey(config) : showApiKey(config)),
  masterkey: (config) => rotateKey(config),
  template: (config, input) => template(config, input),
  token: (config, input) => token(config, input),
};

async function main(argv: string[]): Promise<void> {
  const parsed = parseCommandLine(argv, { version: VERSION });
  if (parsed.kind === 'print') process.stdout.write(parsed.text);
  else if (parsed.kind === 'version') process.stdout.write(`confhub ${VERSION}\n`);
  else if (parsed.kind === 'usage-error') {
    process.stderr.write(`${parsed.message}\n`);
    process.exitCode = 2;
  } else await HANDLERS[parsed.command](loadRuntimeConfig(), parsed);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  // A known refusal is one line; anything else is a defect, and its stack helps to find it.
  const known = isAppError(error) ? error : unusableDirectory(error);
  const message = known ? refusal(known) : String((error as Error)?.stack ?? error);
  process.stderr.write(`confhub: ${message}\n`);
  process.exit(1);
});
