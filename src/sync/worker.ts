/**
 * The sync worker thread: the composition root of everything that writes service files and
 * reloads services. It subscribes to config.ini changes before its first reconcile, so no change
 * made during start-up is missed.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { removeStaleTempFiles } from '../fs/atomic-write.js';
import { openOutputDir } from '../fs/contained-path.js';
import { createHistoryReader, createHistoryWriter } from '../history/history-repo.js';
import { revisionOf } from '../settings/revision.js';
import { createHistoryPusher } from '../history/push.js';
import { parseIni } from '../ini/document.js';
import { startIdleGc } from '../idle-gc.js';
import { createLogDestination, createLogger } from '../log.js';
import { createKeyring, masterKey } from '../secrets/secret-box.js';
import { CONFIG_SCHEMA } from '../settings/schema.js';
import type { MainToWorker, WorkerInit, WorkerToMain } from './protocol.js';
import { buildReconciler, repairInterruptedRecreates } from './build-reconciler.js';
import { createRevisionRecorder } from './revision-recorder.js';
import { createSourceWatcher } from './source-watcher.js';
import { createSyncLoop, type RevisionMeta } from './sync-loop.js';

const init = workerData as WorkerInit;
const port = parentPort!;
/** Log lines dropped and not reported to main yet: a burst of them is one message. */
let droppedLines = 0;
const destination = createLogDestination({
  format: init.logFormat,
  onDrop: (lines) => {
    droppedLines += lines;
    if (droppedLines === lines) setImmediate(reportDroppedLines);
  },
});
const logger = createLogger({ level: init.logLevel, destination }).child({ thread: 'sync-worker' });
// Each thread has its own heap: this one gives back what a burst of changes left once it is over.
const idleGc = startIdleGc({ logger });
const post = (message: WorkerToMain): void => {
  idleGc.activity();
  port.postMessage(message);
};
function reportDroppedLines(): void {
  const lines = droppedLines;
  droppedLines = 0;
  try {
    post({ type: 'log_dropped', lines });
  } catch {
    // The port closed (the worker is stopping): nobody is left to count them.
  }
}

const { settings, targets } = init.sync;
for (const target of targets) {
  // Only in a directory the target may write to: one that leads elsewhere now is refused at the write.
  const dir = await openOutputDir({ output: target.output, rules: init.sync.paths }).catch(() => undefined);
  try {
    for (const name of dir ? await removeStaleTempFiles(dir.file) : [])
      logger.warn({ target: target.name, name }, 'removed a temp file left by an interrupted write');
  } finally {
    await dir?.close();
  }
}

const [current, ...retired] = init.masterKeys.map((key) => masterKey(Buffer.from(key)));
const keyring = createKeyring(current!, retired);

const git = { gitDir: init.historyDir, workTree: init.configDir };
const pushConfig = init.historyPush;
let recorder: ReturnType<typeof createRevisionRecorder> | undefined;
const pusher = pushConfig ? createHistoryPusher({ git, config: pushConfig, logger, onStatus: () => recorder?.pushChanged() }) : undefined;
recorder = createRevisionRecorder({
  // After a restart, git processes of the previous worker thread may still hold locks (a gc runs minutes).
  writer: createHistoryWriter({ ...git, logger, staleLockAgeMs: init.restarted ? 15 * 60_000 : 0 }),
  schema: CONFIG_SCHEMA,
  keyring,
  resolve: init.resolve,
  logger,
  onStatus: (status) => post({ type: 'history', status }),
  onCommit: () => pusher?.schedule(),
  onRevision: ({ revision, meta, keys }) => post({ type: 'keys_changed', revision, actor: meta.actor, source: meta.source, keys }),
  pushStatus: () => pusher?.status() ?? null,
});
const history = recorder;
await history.open();
// Commits made while no push could happen (a restart, a remote that was down) go out now.
pusher?.schedule();

/** What an automatic rollback returns to before this worker has applied anything itself. */
async function lastAppliedRevision(): Promise<{ text: string; revision: string; commit: string } | undefined> {
  if (!init.lastAppliedCommit) return undefined;
  try {
    const text = await createHistoryReader(git).contentAt(init.lastAppliedCommit);
    parseIni(text);
    return { text, revision: revisionOf(text), commit: init.lastAppliedCommit };
  } catch (error) {
    logger.warn({ err: error, commit: init.lastAppliedCommit }, 'the last applied revision cannot be read from the history');
    return undefined;
  }
}
const initialApplied = await lastAppliedRevision();
// A failure right after this start puts back files of that revision: they are checked at its URLs.
const reconciler = buildReconciler({
  sync: init.sync,
  logger,
  ...(initialApplied ? { applied: { text: initialApplied.text, keyring, resolve: init.resolve } } : {}),
});

/** Revisions whose author main is asked for; an answer that does not come in time means a hand edit. */
const authorQuestions = new Map<string, Promise<RevisionMeta | undefined>>();
const authorAnswers = new Map<string, (meta: RevisionMeta | undefined) => void>();
function askAuthor(revision: string): Promise<RevisionMeta | undefined> {
  const asked = authorQuestions.get(revision);
  if (asked) return asked;
  const question = new Promise<RevisionMeta | undefined>((resolve) => {
    const timer = setTimeout(() => answerAuthor(revision, undefined), 2000);
    timer.unref();
    authorAnswers.set(revision, (meta) => {
      clearTimeout(timer);
      authorQuestions.delete(revision);
      authorAnswers.delete(revision);
      resolve(meta);
    });
  });
  authorQuestions.set(revision, question);
  post({ type: 'author_needed', revision });
  return question;
}
function answerAuthor(revision: string, meta: RevisionMeta | undefined): void {
  authorAnswers.get(revision)?.(meta);
}

let watcher: ReturnType<typeof createSourceWatcher> | undefined;
const loop = createSyncLoop({
  configPath: init.configPath,
  schema: CONFIG_SCHEMA,
  resolve: init.resolve,
  targets,
  reconciler,
  post,
  logger,
  keyring,
  record: (revision, meta) => history.record(revision, meta),
  askAuthor,
  ...(initialApplied ? { initialApplied } : {}),
  markSeen: (hash) => watcher?.markSeen(hash),
});
watcher = createSourceWatcher({
  path: init.configPath,
  debounceMinMs: settings.debounceMinMs,
  debounceMaxMs: settings.debounceMaxMs,
  pollIntervalMs: settings.pollIntervalMs,
  onChange: ({ settled }) => {
    idleGc.activity();
    return loop.onChange({ settled });
  },
  onError: (error) => logger.error({ err: error }, 'watching config.ini failed'),
});

port.on('message', (message: MainToWorker) => {
  idleGc.activity();
  switch (message.type) {
    case 'expect':
      loop.expect(message.revision, {
        actor: message.actor,
        source: message.source,
        ...(message.rollbackOf ? { rollbackOf: message.rollbackOf } : {}),
        ...(message.template ? { template: message.template } : {}),
      });
      break;
    case 'author':
      answerAuthor(message.revision, message.author ?? undefined);
      break;
    case 'reconcile':
      loop
        .reconcileNow({ requestId: message.requestId, force: message.force, actor: message.actor })
        .catch((error: unknown) => logger.error({ err: error }, 'reconcile request failed'));
      break;
    case 'shutdown':
      void (async () => {
        // A write acknowledged just before the stop is still in its debounce: it is applied now.
        await watcher?.flush().catch((error: unknown) => logger.error({ err: error }, 'applying the last change before stopping failed'));
        await loop.stop();
        // A gc still running would hold locks the next start removes as stale.
        await Promise.race([history.idle(), new Promise((resolve) => setTimeout(resolve, 60_000).unref())]);
        await pusher?.stop();
        await watcher?.close();
        post({ type: 'stopped' });
        port.close();
      })();
      break;
  }
});

await repairInterruptedRecreates({ sync: init.sync, logger });
await watcher.ready;
post({ type: 'ready' });
await loop.onChange({ startup: true }).catch((error: unknown) => logger.error({ err: error }, 'the first reconcile failed'));
