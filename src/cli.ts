#!/usr/bin/env node
/**
 * confhub command line: `serve` (default) runs the service; `apikey show|rotate` prints or
 * replaces the API key (as the legacy `apphub getkey` did); `masterkey rotate` seals every secret
 * of config.ini with a new master key.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createAuditLog } from './audit/audit-log.js';
import { generateApiKey } from './bootstrap/first-boot-secrets.js';
import { openDatabase } from './db/database.js';
import { AppError, isAppError } from './core/errors.js';
import { startIdleGc } from './idle-gc.js';
import { createLogDestination, createLogger, resolveLogFormat } from './log.js';
import { loadRuntimeConfig, type RuntimeConfig } from './runtime-config.js';
import { loadKeyring } from './secrets/master-key.js';
import { rotateMasterKey } from './secrets/rekey.js';
import { CONFIG_SCHEMA, SYSTEM_SCHEMA } from './settings/schema.js';
import { readApiKey } from './settings/read-api-key.js';
import { createSettingsStore, toSnapshot } from './settings/store.js';
import { createHistoryReader, createHistoryWriter } from './history/history-repo.js';
import { createHistoryQueries, MAX_HISTORY_LIMIT } from './history/history-queries.js';
import { historyConfigOf } from './history/push.js';
import { validationFailed } from './settings/plan-changes.js';
import { decodeText } from './settings/revision.js';
import { validateDocument } from './settings/validate.js';
import { checkTargetPaths } from './fs/contained-path.js';
import { syncConfigOf } from './targets/target-spec.js';
import { planTargets } from './sync/plan.js';
import { buildReconciler } from './sync/build-reconciler.js';
import { createRunLog } from './sync/run-log.js';
import { createAnnouncements } from './sync/announcements.js';
import { actorRef } from './core/actor.js';
import { createRevisionRecorder } from './sync/revision-recorder.js';
import { maskText } from './core/mask.js';
import { secretsOf } from './settings/mask-secrets.js';
import { parseIni } from './ini/document.js';
import { openDocument } from './secrets/sealed-document.js';
import { acquireInstanceLock } from './bootstrap/instance-lock.js';
import { startServer, VERSION, type RunningServer } from './server.js';
import { editConfig, editorCommand, runEditorProcess } from './settings/edit-session.js';
import { createInterface } from 'node:readline/promises';

interface Command {
  readonly name: string;
  readonly synopsis: string;
  readonly text: string;
}

const COMMANDS: readonly Command[] = [
  {
    name: 'serve',
    synopsis: 'confhub [serve]',
    text: 'run the REST API and the sync worker (environment: CONFHUB_DATA_DIR, CONFHUB_CONFIG_DIR, CONFHUB_HOST, CONFHUB_PORT, CONFHUB_API_KEY, CONFHUB_RATE_LIMIT, CONFHUB_LOG_LEVEL, CONFHUB_MASTER_KEY_FILE; see README.md)',
  },
  {
    name: 'apikey',
    synopsis: 'confhub apikey show|rotate',
    text: 'show: print the API key clients send in the x-api-key header; rotate: replace it with a new random one and print it',
  },
  {
    name: 'masterkey',
    synopsis: 'confhub masterkey rotate',
    text: 'seal every secret of config.ini with a new master key (confhub must be stopped; the old key is kept to open older history)',
  },
  {
    name: 'plan',
    synopsis: 'confhub plan',
    text: 'what a sync would change, writing nothing: per target create, update, mode or unchanged, with a unified diff whose secrets are masked (exit 1 when a target cannot be rendered)',
  },
  {
    name: 'once',
    synopsis: 'confhub once',
    text: 'one reconcile of every target and exit (init containers, CI): commits config.ini to the history, writes and reloads what changed; exit 1 when a target failed (unreachable services are reported, not failures); refuses to run beside a running confhub',
  },
  { name: 'version', synopsis: 'confhub version | --version', text: 'print the version' },
  { name: 'validate', synopsis: 'confhub validate', text: 'check config.ini and system.ini: exit 0 when both are valid, 1 with every problem on stderr' },
  {
    name: 'history',
    synopsis: 'confhub history [--limit N]',
    text: 'the newest commits of config.ini (default 20): id, time, actor, source, sync outcome, summary',
  },
  {
    name: 'edit',
    synopsis: 'confhub edit',
    text: 'edit config.ini in $VISUAL or $EDITOR (default vi) on a private copy: on save it is validated like an API write and applied, audited, merged with writes made meanwhile; a copy that is not valid is opened again with the reasons on top (exit 1 when given up)',
  },
  {
    name: 'rollback',
    synopsis: 'confhub rollback <commit>',
    text: "restore config.ini to a commit's content (validated, audited; a running confhub applies it like a hand edit)",
  },
];

/** Wraps `text` into lines of at most `width` characters, each prefixed by `indent`. */
function wrap(text: string, width: number, indent: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines.map((l) => `${indent}${l}`).join('\n');
}

const USAGE = `confhub ${VERSION}: configuration center for all-in-one container deployments

Usage:
${COMMANDS.map((c) => `  ${c.synopsis}\n${wrap(c.text, 72, '      ')}`).join('\n')}
  confhub --help, confhub <command> --help
`;

function commandHelp(command: Command): string {
  return `Usage: ${command.synopsis}\n\n${wrap(command.text, 78, '')}\n`;
}

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
    throw new AppError('INVALID_REQUEST', { message: 'no config.ini', details: `no config.ini at ${config.configPath} yet; start confhub once to create it` });
  const key = await readApiKey(config);
  if (!key)
    throw new AppError('INVALID_REQUEST', { message: 'no API key', details: `no API key in ${config.configPath} yet; start confhub once to generate it` });
  process.stdout.write(`${key}\n`);
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
  const key = generateApiKey();
  // A running confhub sees this like a hand edit: the new key works at once.
  await withStore(config, (store) =>
    store.update({ changes: [{ section: 'api_key', key: 'key', value: key }], actor: { type: 'system', id: 'cli' }, source: 'cli' }),
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
    process.stdout.write(`master key rotated: ${result.from} -> ${result.to}; ${result.resealed} value(s) sealed again\n`);
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
  attempt('config.ini', () => {
    const { doc } = toSnapshot({ text: readText(config.configPath, 'config.ini'), label: 'config.ini', schema: CONFIG_SCHEMA, keyring });
    const issues = validateDocument({ doc, schema: CONFIG_SCHEMA });
    if (issues.length > 0) throw validationFailed(issues);
  });
  attempt('system.ini', () => {
    const { doc } = toSnapshot({ text: readText(config.systemPath, 'system.ini'), label: 'system.ini', schema: SYSTEM_SCHEMA });
    const issues = validateDocument({ doc, schema: SYSTEM_SCHEMA });
    if (issues.length > 0) throw validationFailed(issues);
    checkTargetPaths(syncConfigOf(doc, config));
    historyConfigOf(doc, { configDir: config.configDir });
  });
  if (problems.length > 0) {
    process.stderr.write(`${problems.map((p) => `confhub: ${p}`).join('\n')}\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write('config.ini and system.ini are valid\n');
}

async function plan(config: RuntimeConfig): Promise<void> {
  const { keyring } = await loadKeyring({ ...config.masterKey, createFile: false });
  const { doc } = toSnapshot({ text: readText(config.configPath, 'config.ini'), label: 'config.ini', schema: CONFIG_SCHEMA, keyring });
  const system = toSnapshot({ text: readText(config.systemPath, 'system.ini'), label: 'system.ini', schema: SYSTEM_SCHEMA });
  const { targets, paths } = syncConfigOf(system.doc, config);
  // The files on disk hold the values of the last applied revision: the newest commit's secrets are masked too.
  const reader = historyReader(config);
  const head = await reader.head().catch(() => null);
  const earlier = head ? [openDocument({ stored: parseIni(await reader.contentAt(head)), schema: CONFIG_SCHEMA, keyring, tolerate: true }).doc] : [];
  const plans = await planTargets({ targets, paths, doc, schema: CONFIG_SCHEMA, earlier });
  const mode = (m: number | null): string => (m === null ? '-' : `0${m.toString(8)}`);
  for (const p of plans) {
    const what = p.change === 'none' ? 'unchanged' : p.change === 'mode' ? `mode ${mode(p.mode.from)} -> ${mode(p.mode.to)}` : p.change;
    process.stdout.write(`== ${p.target} (${p.output}): ${what}\n`);
    if (p.error) process.stdout.write(`   ${p.error.code}: ${p.error.details}\n`);
    if (p.diff) process.stdout.write(p.diff.endsWith('\n') ? p.diff : `${p.diff}\n`);
  }
  if (plans.some((p) => p.error)) process.exitCode = 1;
}

async function once(config: RuntimeConfig): Promise<void> {
  const lock = await acquireInstanceLock(config.dataDir).catch((cause: unknown) => {
    if (!isAppError(cause) || cause.data.busy !== true) throw cause;
    throw new AppError('INVALID_REQUEST', {
      message: 'confhub is running',
      details: `confhub is running with the data directory ${config.dataDir}; ask it with POST /api/v1/settings/reload instead`,
    });
  });
  try {
    const logger = createLogger({ level: 'silent' });
    const { keyring } = await loadKeyring({ ...config.masterKey, createFile: false });
    // Values typed in plain text are sealed first, as a running confhub would.
    if (toSnapshot({ text: readText(config.configPath, 'config.ini'), label: 'config.ini', schema: CONFIG_SCHEMA, keyring }).unsealed.length > 0) {
      await withStore(config, (store) => store.seal({ actor: { type: 'file', id: 'file' } }));
    }
    const snapshot = toSnapshot({ text: readText(config.configPath, 'config.ini'), label: 'config.ini', schema: CONFIG_SCHEMA, keyring });
    const issues = validateDocument({ doc: snapshot.doc, schema: CONFIG_SCHEMA });
    if (issues.length > 0) throw validationFailed(issues);
    const systemDoc = toSnapshot({ text: readText(config.systemPath, 'system.ini'), label: 'system.ini', schema: SYSTEM_SCHEMA }).doc;
    const applied = await lastAppliedText(config);
    const sync = syncConfigOf(systemDoc, config);
    checkTargetPaths(sync);
    const reconciler = buildReconciler({ sync, logger, ...(applied ? { applied: { text: applied, keyring } } : {}) });
    const recorder = createRevisionRecorder({
      writer: createHistoryWriter({ gitDir: config.historyDir, workTree: config.configDir, logger }),
      schema: CONFIG_SCHEMA,
      keyring,
      logger,
      onStatus: () => undefined,
    });
    const actor = { type: 'system', id: 'cli' } as const;
    const commit = await recorder.record(snapshot, { actor, source: 'cli' });
    const startedAt = Date.now();
    const result = await reconciler.reconcile({ revision: snapshot.revision, doc: snapshot.doc, force: false });
    await recorder.idle();
    const secrets = secretsOf(snapshot.doc, CONFIG_SCHEMA);
    const maskedTargets = result.targets.map((t) =>
      t.error ? { ...t, error: { ...t.error, message: maskText(t.error.message, secrets), details: maskText(t.error.details, secrets) } } : t,
    );
    // The history shows the outcome of the commit this made, as it does for a running confhub's.
    const db = openDatabase({ path: config.databasePath });
    try {
      createRunLog({ db, logger }).record({
        revision: snapshot.revision,
        commit,
        source: 'once',
        actor,
        outcome: result.outcome,
        startedAt,
        finishedAt: Date.now(),
        targets: maskedTargets,
      });
    } finally {
      db.close();
    }
    process.stdout.write(`revision ${snapshot.revision.slice(0, 12)} (commit ${commit?.slice(0, 12) ?? '-'}): ${result.outcome}\n`);
    for (const t of maskedTargets) {
      process.stdout.write(`  ${t.target}: ${t.state}${t.error ? ` (${t.error.code}: ${t.error.details})` : ''}\n`);
    }
    if (result.outcome === 'failed' || result.outcome === 'rolled_back') process.exitCode = 1;
  } finally {
    await lock.release();
  }
}

/** config.ini as the targets last applied it, from the history; undefined when that is not known. */
async function lastAppliedText(config: RuntimeConfig): Promise<string | undefined> {
  const db = openDatabase({ path: config.databasePath });
  try {
    const commit = createRunLog({ db, logger: createLogger({ level: 'silent' }) }).lastAppliedCommit();
    if (!commit) return undefined;
    const text = await historyReader(config).contentAt(commit);
    parseIni(text);
    return text;
  } catch {
    // Files a failure puts back are then checked at the URLs of the failing revision.
    return undefined;
  } finally {
    db.close();
  }
}

function readText(path: string, label: string): string {
  if (!existsSync(path)) throw new AppError('CONFIG_INVALID', { message: `${label} is invalid`, details: `${path} does not exist` });
  return decodeText(readFileSync(path), label);
}

async function history(config: RuntimeConfig, limitText: string | undefined): Promise<void> {
  const limit = limitText === undefined ? 20 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_HISTORY_LIMIT) {
    throw new AppError('INVALID_REQUEST', { details: `--limit must be a whole number from 1 to ${MAX_HISTORY_LIMIT}` });
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

async function main(argv: string[]): Promise<void> {
  const [command = 'serve', ...rest] = argv;
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  if ((command === 'version' || command === '--version') && rest.length === 0) {
    process.stdout.write(`confhub ${VERSION}\n`);
    return;
  }
  const known = COMMANDS.find((c) => c.name === command);
  if (known && (rest.includes('--help') || rest.includes('-h'))) {
    process.stdout.write(commandHelp(known));
    return;
  }
  const config = loadRuntimeConfig();
  if (command === 'serve' && rest.length === 0) return serve(config);
  if (command === 'apikey' && rest[0] === 'show' && rest.length === 1) return showApiKey(config);
  if (command === 'apikey' && rest[0] === 'rotate' && rest.length === 1) return rotateApiKey(config);
  if (command === 'masterkey' && rest[0] === 'rotate' && rest.length === 1) return rotateKey(config);
  if (command === 'validate' && rest.length === 0) return validate(config);
  if (command === 'plan' && rest.length === 0) return plan(config);
  if (command === 'once' && rest.length === 0) return once(config);
  if (command === 'history' && (rest.length === 0 || (rest.length === 2 && rest[0] === '--limit'))) return history(config, rest[1]);
  if (command === 'edit' && rest.length === 0) return edit(config);
  if (command === 'rollback' && rest.length === 1) return rollback(config, rest[0]!);
  process.stderr.write(`confhub: unknown command "${argv.join(' ')}"\n\n${USAGE}`);
  process.exitCode = 2;
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message = isAppError(error)
    ? `${error.message}${error.details !== error.message ? `: ${error.details}` : ''}`
    : String((error as Error)?.stack ?? error);
  process.stderr.write(`confhub: ${message}\n`);
  process.exit(1);
});
