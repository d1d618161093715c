/**
 * The worker's control loop, apart from the thread so it can be driven directly in tests.
 *
 * - A change (watch event after the debounce) reads config.ini until two reads agree, parses
 *   and validates it with the same modules as the API. An invalid file changes nothing on the
 *   targets and is reported once per content; the next valid save resumes.
 * - Runs are serialized; a change arriving during a run is picked up after it (latest wins:
 *   the file is read again, intermediate contents are never applied one by one).
 * - A revision that failed is not retried in a loop: only a different content (even one that
 *   returns to it later), or an explicit reconcile request, runs it again.
 * - Targets whose service could not be reached are retried, with exponential backoff and
 *   jitter, on their own, with the revision that was written for them.
 * - Whatever is posted to the main thread has the values of sensitive keys masked: a check
 *   command's output may quote the file it rejected.
 * - Sealed values are opened for the renderers; a value that does not open fails the revision
 *   (SECRET_UNREADABLE) before anything is written. Every valid revision is committed to the
 *   history while it is applied (git works in its own processes, so the services do not wait
 *   for it; its result is reported with the run), except one holding plain text secrets: main is asked to seal
 *   it, and the sealed revision (same values) is committed and applied instead. The plain text
 *   revision is not run, so its hash (a test for guessed passwords) is recorded nowhere.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { AppError, isAppError, toPlainError, type PlainError } from '../core/errors.js';
import { parseIni, type IniDocument } from '../ini/document.js';
import { decodeText, revisionOf } from '../settings/revision.js';
import { openDocument } from '../secrets/sealed-document.js';
import type { Keyring } from '../secrets/secret-box.js';
import type { FileSchema } from '../settings/schema.js';
import { backoffDelay } from '../core/backoff.js';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { maskText } from '../core/mask.js';
import { secretsOf } from '../settings/mask-secrets.js';
import { FILE_ACTOR, type ActorRef, type RevisionSource } from '../core/actor.js';
import { validateDocument } from '../settings/validate.js';
import type { WorkerToMain } from './protocol.js';
import type { ReconcileRequest } from './reconcile.js';
import type { ReconcileResult, RunSource } from '../targets/outcome.js';

export interface SyncLoopDeps {
  configPath: string;
  schema: FileSchema;
  reconciler: { reconcile(request: ReconcileRequest): Promise<ReconcileResult> };
  post: (message: WorkerToMain) => void;
  logger: Logger;
  /** Told the hash of each content read, so the poll does not re-trigger on it. */
  markSeen?: (hash: string | undefined) => void;
  /** Opens sealed values; without it a sealed value fails the revision. */
  keyring?: Keyring;
  /** Commits a revision to the history; returns its commit (null when that failed). */
  record?: (revision: { text: string; revision: string; doc: IniDocument }, meta: RevisionMeta) => Promise<string | null>;
  /**
   * The revision the targets last applied before this worker started (from the history): an
   * automatic rollback of the first revision this worker runs returns config.ini to it.
   */
  initialApplied?: { text: string; revision: string; commit: string };
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Times the retries and stamps the runs; default the system clock. */
  clock?: Clock;
}

/** Who made a revision and why, as main announced it. */
export interface RevisionMeta {
  readonly actor: ActorRef;
  readonly source: RevisionSource;
  readonly rollbackOf?: string;
}

interface Source {
  text: string;
  revision: string;
  /** Sealed values opened. */
  doc: IniDocument;
  /** Sensitive values in plain text: the revision is used but not committed until main seals it. */
  unsealed: readonly string[];
  commit?: string | null;
  /** Settles when the history commit is done (`commit` is then set). */
  committing?: Promise<void>;
  /** Who made it, once known (the announcement is used up by the commit). */
  meta?: RevisionMeta;
}

const RETRY_ACTOR: ActorRef = Object.freeze({ type: 'system', id: 'retry' });
const MAX_REMEMBERED_ACTORS = 256;

/** Real time, not the injected clock: it waits for another process to finish writing the file. */
async function readUntilStable(path: string): Promise<string> {
  let previous = await readFile(path);
  for (let attempt = 0; attempt < 50; attempt++) {
    await sleep(15);
    const current = await readFile(path);
    if (current.equals(previous)) return decodeText(current, 'config.ini');
    previous = current;
  }
  throw new AppError('CONFIG_INVALID', { details: 'config.ini kept changing; waiting for the next save' });
}

function maskError(error: PlainError | null, secrets: readonly string[]): PlainError | null {
  if (!error || secrets.length === 0) return error;
  return { code: error.code, message: maskText(error.message, secrets), details: maskText(error.details, secrets) };
}

export function createSyncLoop(deps: SyncLoopDeps) {
  const { configPath, schema, reconciler, post, logger, clock = systemClock, retryBaseMs = 1000, retryMaxMs = 60_000 } = deps;
  const now = (): number => clock.now();
  const log = logger.child({ module: 'sync-loop' });
  const metas = new Map<string, RevisionMeta>();
  let sealRequested: string | undefined;
  let lastUnreadableRevision: string | undefined;
  /** Targets whose reload is pending, with the revision that was written for them. */
  const pending = new Map<string, Source>();
  let lastApplied: Source | undefined = deps.initialApplied
    ? {
        text: deps.initialApplied.text,
        revision: deps.initialApplied.revision,
        doc: parseIni(deps.initialApplied.text),
        unsealed: [],
        commit: deps.initialApplied.commit,
      }
    : undefined;
  /** The revision of the last full run, when it applied: only then do the targets hold it. */
  let inEffect: string | undefined;
  let lastFailedRevision: string | undefined;
  let lastInvalidRevision: string | undefined;
  let chain: Promise<unknown> = Promise.resolve();
  let retryTimer: TimerHandle | undefined;
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
      const plain = isAppError(error)
        ? toPlainError(error)
        : { code: 'CONFIG_INVALID' as const, message: 'config.ini is invalid', details: 'config.ini is missing or unreadable' };
      post({ type: 'source_invalid', revision: '', error: plain, ...(requestId ? { requestId } : {}) });
      return undefined;
    }
    const revision = revisionOf(text);
    deps.markSeen?.(revision);
    // A different content was saved: a revision that failed earlier may run again when it returns.
    if (revision !== lastFailedRevision) lastFailedRevision = undefined;
    // The same plain text typed again later (after other revisions) is sealed again.
    if (revision !== sealRequested) sealRequested = undefined;
    let stored: IniDocument;
    try {
      stored = parseIni(text);
    } catch (error) {
      reportInvalid(revision, error, requestId);
      return undefined;
    }
    let opened: ReturnType<typeof openDocument>;
    try {
      opened = openDocument({ stored, schema, keyring: deps.keyring });
    } catch (error) {
      // Never passed on as a password: the revision fails before any target is touched.
      const source: Source = { text, revision, doc: stored, unsealed: [] };
      if (revision !== lastUnreadableRevision || requestId) {
        lastUnreadableRevision = revision;
        log.error(
          { revision, details: (error as AppError).details },
          'config.ini holds a secret that cannot be decrypted; the targets keep the last applied revision',
        );
        postRun(source, failedResult(source, error), { source: requestId ? 'reload' : 'change', ...(requestId ? { requestId } : {}), startedAt: now() });
      }
      lastFailedRevision = revision;
      return undefined;
    }
    lastUnreadableRevision = undefined;
    try {
      const issues = validateDocument({ doc: opened.doc, schema });
      if (issues.length > 0) {
        throw new AppError('CONFIG_INVALID', { details: issues.map((i) => i.message).join('; ') });
      }
      lastInvalidRevision = undefined;
      return { text, revision, doc: opened.doc, unsealed: opened.unsealed };
    } catch (error) {
      reportInvalid(revision, error, requestId);
      return undefined;
    }
  }

  /**
   * The announced author of a revision, used once: a hand edit that later returns the file to the
   * same bytes is the file's. Announcements older than the one used are for revisions superseded
   * before they were read.
   */
  function takeMeta(revision: string): RevisionMeta | undefined {
    const meta = metas.get(revision);
    if (!meta) return undefined;
    for (const key of [...metas.keys()]) {
      metas.delete(key);
      if (key === revision) break;
    }
    return meta;
  }

  function reportInvalid(revision: string, error: unknown, requestId: string | undefined): void {
    const appError = isAppError(error) ? error : new AppError('CONFIG_INVALID', { cause: error });
    const details = appError.code === 'INI_SYNTAX' ? `config.ini ${appError.message}` : appError.details;
    if (revision !== lastInvalidRevision || requestId) {
      lastInvalidRevision = revision;
      const line = typeof appError.data.line === 'number' ? { line: appError.data.line } : {};
      post({
        type: 'source_invalid',
        revision,
        error: { code: 'CONFIG_INVALID', message: 'config.ini is invalid', details, ...line },
        ...(requestId ? { requestId } : {}),
      });
      log.warn({ revision, details }, 'config.ini is invalid; the targets keep the last applied revision');
    }
  }

  /** Starts committing a valid revision (or asks main to seal it first); never fails the run. */
  function commit(source: Source, { startup }: { startup: boolean }): void {
    if (source.unsealed.length > 0) {
      if (sealRequested !== source.revision) {
        sealRequested = source.revision;
        post({ type: 'seal_needed', revision: source.revision });
      }
      source.commit = null;
      return;
    }
    if (!deps.record || source.committing) return;
    const meta = takeMeta(source.revision) ?? { actor: FILE_ACTOR, source: startup ? 'startup' : 'file' };
    source.meta = meta;
    source.committing = deps.record(source, meta).then(
      (commit) => {
        source.commit = commit;
      },
      (error: unknown) => {
        log.error({ err: error, revision: source.revision }, 'committing the revision failed');
        source.commit = null;
      },
    );
  }

  function scheduleRetry(): void {
    if (stopped || retryTimer || pending.size === 0) return;
    // Floored at a quarter of the base: full jitter alone could ask a service that just failed again at once.
    const delay = backoffDelay({ attempt: retryAttempt, baseMs: retryBaseMs, maxMs: retryMaxMs, minMs: retryBaseMs / 4 });
    retryAttempt++;
    retryTimer = clock.setTimeout(() => {
      retryTimer = undefined;
      serialized(async () => {
        // Read when it fires: targets that became pending meanwhile are retried too.
        const bySource = new Map<Source, string[]>();
        for (const [target, source] of pending) bySource.set(source, [...(bySource.get(source) ?? []), target]);
        for (const [source, targets] of bySource) {
          if (stopped) return;
          await run(source, { source: 'retry', force: true, only: targets, actor: RETRY_ACTOR });
        }
      }).catch((error: unknown) => log.error({ err: error }, 'retrying pending reloads failed'));
    }, delay);
    retryTimer.unref();
  }

  function failedResult(source: Source, error: unknown): ReconcileResult {
    const plain = toPlainError(isAppError(error) ? error : new AppError('INTERNAL_ERROR', { details: 'the reconcile failed unexpectedly', cause: error }));
    return { revision: source.revision, outcome: 'failed', rollbackConfig: false, targets: [], error: plain };
  }

  function postRun(source: Source, result: ReconcileResult, options: { source: RunSource; requestId?: string; actor?: ActorRef; startedAt: number }): void {
    const secrets = secretsOf(source.doc, schema);
    const masked: ReconcileResult = {
      ...result,
      ...(result.error ? { error: maskError(result.error, secrets)! } : {}),
      targets: result.targets.map((t) => ({ ...t, error: maskError(t.error, secrets) })),
    };
    post({
      type: 'run',
      source: options.source,
      actor: options.actor ?? source.meta?.actor ?? metas.get(source.revision)?.actor ?? FILE_ACTOR,
      startedAt: options.startedAt,
      finishedAt: now(),
      result: masked,
      ...(source.commit !== undefined ? { commit: source.commit } : {}),
      ...(options.requestId ? { requestId: options.requestId } : {}),
    });
  }

  async function run(
    source: Source,
    options: { source: RunSource; force: boolean; requestId?: string; only?: readonly string[]; actor?: ActorRef },
  ): Promise<ReconcileResult> {
    const startedAt = now();
    let result: ReconcileResult;
    try {
      result = await reconciler.reconcile({
        revision: source.revision,
        doc: source.doc,
        force: options.force,
        ...(options.only ? { only: options.only } : {}),
      });
    } catch (error) {
      // A bug or an I/O failure inside the reconcile must not take the worker down: report it.
      log.error({ err: error, revision: source.revision }, 'reconcile failed unexpectedly');
      result = failedResult(source, error);
    }
    await source.committing;
    postRun(source, result, { ...options, startedAt });
    if (!options.only) {
      // A rollback puts every target back on the last applied revision; a failure under `keep` leaves some on this one.
      if (result.outcome === 'applied' || result.outcome === 'unchanged') inEffect = source.revision;
      else if (result.outcome !== 'rolled_back') inEffect = undefined;
    }
    if (result.outcome === 'applied' || result.outcome === 'unchanged') {
      if (!options.only) {
        lastApplied = source;
        lastFailedRevision = undefined;
      }
    } else if (!options.only) {
      lastFailedRevision = source.revision;
      if (result.rollbackConfig && lastApplied && lastApplied.revision !== source.revision) {
        post({
          type: 'rollback_config',
          failedRevision: source.revision,
          toRevision: lastApplied.revision,
          ...(lastApplied.commit ? { toCommit: lastApplied.commit } : {}),
          text: lastApplied.text,
        });
      }
    }
    for (const target of result.targets) {
      if (target.state === 'pending_reload') pending.set(target.target, source);
      else if (target.changed || target.reloaded || target.state !== 'in_sync') pending.delete(target.target);
    }
    if (pending.size === 0) retryAttempt = 0;
    scheduleRetry();
    return result;
  }

  return {
    /** A write by main is about to land: remember who made that revision and why. */
    expect(revision: string, meta: RevisionMeta): void {
      metas.delete(revision);
      metas.set(revision, meta);
      if (metas.size > MAX_REMEMBERED_ACTORS) metas.delete(metas.keys().next().value!);
    },

    /** The watcher saw config.ini change (after the debounce). */
    onChange(options: { startup?: boolean } = {}): Promise<void> {
      return serialized(async () => {
        if (stopped) return;
        const source = await readSource();
        if (!source) return;
        commit(source, { startup: options.startup === true });
        if (source.unsealed.length > 0 && deps.keyring) return;
        if (!options.startup) {
          // Skipped only when the targets hold it: after a failed run (on_failure = keep leaves some
          // targets on the failed revision) the last applied one runs again.
          if (source.revision === inEffect) {
            await source.committing;
            post({ type: 'skipped', revision: source.revision, reason: 'applied', ...(source.commit !== undefined ? { commit: source.commit } : {}) });
            return;
          }
          if (source.revision === lastFailedRevision) {
            await source.committing;
            post({ type: 'skipped', revision: source.revision, reason: 'failed', ...(source.commit !== undefined ? { commit: source.commit } : {}) });
            return;
          }
        }
        await run(source, { source: options.startup ? 'startup' : 'change', force: false });
      });
    },

    /** POST /settings/reload: a full reconcile now, even of a revision that failed before. */
    reconcileNow({ requestId, force, actor }: { requestId: string; force: boolean; actor?: ActorRef | undefined }): Promise<void> {
      return serialized(async () => {
        if (stopped) return;
        const source = await readSource(requestId);
        if (!source) return;
        commit(source, { startup: false });
        if (source.unsealed.length > 0 && deps.keyring) {
          // Not run: the sealed revision, a moment away, is (and the plain text one is recorded nowhere).
          post({
            type: 'source_invalid',
            revision: '',
            error: {
              code: 'CONFIG_INVALID',
              message: 'config.ini is invalid',
              details: 'config.ini holds values typed in plain text that are being sealed; they are applied in a moment',
            },
            requestId,
          });
          return;
        }
        await run(source, { source: 'reload', force, requestId, ...(actor ? { actor } : {}) });
      });
    },

    /** Finishes the run in flight, then stops scheduling. */
    async stop(): Promise<void> {
      stopped = true;
      clock.clearTimeout(retryTimer);
      await chain;
    },
  };
}
