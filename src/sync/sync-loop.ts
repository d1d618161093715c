/**
 * The worker's control loop, apart from the thread so it can be driven directly in tests.
 *
 * - A change (watch event after the debounce) reads config.ini until two reads agree, parses
 *   and validates it with the same modules as the API. An invalid file changes nothing on the
 *   targets and is reported once per content; the next valid save resumes.
 * - Runs are serialized; a change arriving during a run is picked up after it (latest wins:
 *   the file is read again, intermediate contents are never applied one by one).
 * - A revision that failed is not retried in a loop: only a new content, or an explicit
 *   reconcile request, runs it again.
 * - Targets whose service could not be reached are retried, with exponential backoff and
 *   jitter, on their own.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { AppError, isAppError, toPlainError } from '../errors.js';
import { parseIni, type IniDocument } from '../ini/document.js';
import type { FileSchema } from '../settings/schema.js';
import { validateDocument } from '../settings/validate.js';
import type { RevisionActor, RunSource, WorkerToMain } from './protocol.js';
import type { ReconcileRequest, ReconcileResult } from './reconcile.js';
import { hashText } from './source-watcher.js';

export interface SyncLoopDeps {
  configPath: string;
  schema: FileSchema;
  reconciler: { reconcile(request: ReconcileRequest): Promise<ReconcileResult> };
  post: (message: WorkerToMain) => void;
  logger: Logger;
  /** Told the hash of each content read, so the poll does not re-trigger on it. */
  markSeen?: (hash: string | undefined) => void;
  retryBaseMs?: number;
  retryMaxMs?: number;
  now?: () => number;
}

interface Source {
  text: string;
  revision: string;
  doc: IniDocument;
}

const FILE_ACTOR: RevisionActor = Object.freeze({ type: 'file', id: 'file' });
const MAX_REMEMBERED_ACTORS = 256;

async function readUntilStable(path: string): Promise<string> {
  let previous = await readFile(path, 'utf8');
  for (let attempt = 0; attempt < 50; attempt++) {
    await sleep(15);
    const current = await readFile(path, 'utf8');
    if (current === previous) return current;
    previous = current;
  }
  throw new AppError('CONFIG_INVALID', 'config.ini is invalid', { details: 'config.ini kept changing; waiting for the next save' });
}

export function createSyncLoop(deps: SyncLoopDeps) {
  const { configPath, schema, reconciler, post, logger, now = Date.now, retryBaseMs = 1000, retryMaxMs = 60_000 } = deps;
  const log = logger.child({ module: 'sync-loop' });
  const actors = new Map<string, RevisionActor>();
  let lastApplied: Source | undefined;
  let lastFailedRevision: string | undefined;
  let lastInvalidRevision: string | undefined;
  let chain: Promise<unknown> = Promise.resolve();
  let retryTimer: NodeJS.Timeout | undefined;
  let retryAttempt = 0;
  let stopped = false;

  /** Serializes every run: one reconcile at a time, in arrival order. */
  function serialized<T>(task: () => Promise<T>): Promise<T> {
    const next = chain.then(task, task);
    chain = next.catch(() => undefined);
    return next;
  }

  async function readSource(requestId?: string): Promise<Source | undefined> {
    let text: string;
    try {
      text = await readUntilStable(configPath);
    } catch (error) {
      deps.markSeen?.(undefined);
      const plain = isAppError(error) ? toPlainError(error) : { code: 'CONFIG_INVALID' as const, message: 'config.ini is invalid', details: 'config.ini is missing or unreadable' };
      post({ type: 'source_invalid', revision: '', error: plain, ...(requestId ? { requestId } : {}) });
      return undefined;
    }
    const revision = hashText(text);
    deps.markSeen?.(revision);
    try {
      const doc = parseIni(text);
      const issues = validateDocument({ doc, schema });
      if (issues.length > 0) {
        throw new AppError('CONFIG_INVALID', 'config.ini is invalid', { details: issues.map((i) => i.message).join('; ') });
      }
      lastInvalidRevision = undefined;
      return { text, revision, doc };
    } catch (error) {
      const appError = isAppError(error) ? error : new AppError('CONFIG_INVALID', 'config.ini is invalid', { cause: error });
      const details = appError.code === 'INI_SYNTAX' ? `config.ini ${appError.message}` : appError.details;
      if (revision !== lastInvalidRevision || requestId) {
        lastInvalidRevision = revision;
        const line = typeof appError.data.line === 'number' ? { line: appError.data.line } : {};
        post({ type: 'source_invalid', revision, error: { code: 'CONFIG_INVALID', message: 'config.ini is invalid', details, ...line }, ...(requestId ? { requestId } : {}) });
        log.warn({ revision, details }, 'config.ini is invalid; the targets keep the last applied revision');
      }
      return undefined;
    }
  }

  function actorOf(revision: string): RevisionActor {
    return actors.get(revision) ?? FILE_ACTOR;
  }

  function scheduleRetry(targets: string[]): void {
    if (stopped || retryTimer || targets.length === 0) return;
    const delay = Math.min(retryMaxMs, retryBaseMs * 2 ** retryAttempt) * (0.5 + Math.random() / 2);
    retryAttempt++;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void serialized(async () => {
        if (!lastApplied || stopped) return;
        await run(lastApplied, { source: 'retry', force: true, only: targets });
      });
    }, delay);
    retryTimer.unref();
  }

  async function run(source: Source, options: { source: RunSource; force: boolean; requestId?: string; only?: readonly string[] }): Promise<ReconcileResult> {
    const startedAt = now();
    const result = await reconciler.reconcile({ revision: source.revision, doc: source.doc, force: options.force, ...(options.only ? { only: options.only } : {}) });
    post({
      type: 'run',
      source: options.source,
      actor: options.source === 'retry' ? { type: 'system', id: 'retry' } : actorOf(source.revision),
      startedAt,
      finishedAt: now(),
      result,
      ...(options.requestId ? { requestId: options.requestId } : {}),
    });
    if (result.outcome === 'applied' || result.outcome === 'unchanged') {
      lastApplied = source;
      lastFailedRevision = undefined;
    } else {
      lastFailedRevision = source.revision;
      if (result.rollbackConfig && lastApplied && lastApplied.revision !== source.revision) {
        post({ type: 'rollback_config', failedRevision: source.revision, toRevision: lastApplied.revision, text: lastApplied.text });
      }
    }
    const pending = result.targets.filter((t) => t.state === 'pending_reload').map((t) => t.target);
    if (pending.length > 0) scheduleRetry(pending);
    else if (options.source === 'retry' || !options.only) retryAttempt = 0;
    return result;
  }

  return {
    /** An API write is about to land: remember who made that revision. */
    expect(revision: string, actor: RevisionActor): void {
      actors.set(revision, actor);
      if (actors.size > MAX_REMEMBERED_ACTORS) actors.delete(actors.keys().next().value!);
    },

    /** The watcher saw config.ini change (after the debounce). */
    onChange(options: { startup?: boolean } = {}): Promise<void> {
      return serialized(async () => {
        if (stopped) return;
        const source = await readSource();
        if (!source) return;
        if (!options.startup && (source.revision === lastApplied?.revision || source.revision === lastFailedRevision)) return;
        await run(source, { source: options.startup ? 'startup' : 'change', force: false });
      });
    },

    /** POST /settings/reload: a full reconcile now, even of a revision that failed before. */
    reconcileNow(requestId: string, force: boolean): Promise<void> {
      return serialized(async () => {
        const source = await readSource(requestId);
        if (!source) return;
        await run(source, { source: 'reload', force, requestId });
      });
    },

    /** Finishes the run in flight, then stops scheduling. */
    async stop(): Promise<void> {
      stopped = true;
      if (retryTimer) clearTimeout(retryTimer);
      await chain;
    },
  };
}
