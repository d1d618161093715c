/**
 * The worker's control loop, apart from the thread so it can be driven directly in tests.
 *
 * - A change (watch event after the debounce) reads config.ini until two reads agree, parses
 *   and validates it with the same modules as the API. An invalid file changes nothing on the
 *   targets and is reported once per content; the next valid save resumes.
 * - Reading is never held up by a run: each valid revision goes down the target lanes
 *   (lanes.ts), where a slow service delays only its own targets and a lane still waiting
 *   for a revision takes the newest one instead (latest wins). Each lane's result is posted as
 *   soon as it is known; the revision's aggregate once every lane has finished it, in order.
 * - A revision that failed is not retried in a loop: only a different content (even one that
 *   returns to it later), or an explicit reconcile request, runs it again.
 * - A rollback-policy target that fails returns config.ini to the newest revision every lane
 *   applied; the restored revision then flows through every lane like any other.
 * - Whatever is posted to the main thread has the values of sensitive keys masked, in every
 *   spelling the formats write them: a check or reload command's output may quote a rendered
 *   file, and from the posted result the text reaches the events, webhooks and /sync/status.
 * - Sealed values are opened for the renderers; a value that does not open fails the revision
 *   (SECRET_UNREADABLE) before anything is written. Every valid revision is committed to the
 *   history while it is applied (git works in its own processes, so the services do not wait
 *   for it; its result is reported with the run), except one holding plain text secrets: main is asked to seal
 *   it, and the sealed revision (same values) is committed and applied instead. The plain text
 *   revision is not run, so its hash (a test for guessed passwords) is recorded nowhere.
 */
import type { BigIntStats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { AppError, isAppError, toPlainError, type PlainError } from '../core/errors.js';
import { parseIni, type IniDocument } from '../ini/document.js';
import { decodeText, revisionOf } from '../settings/revision.js';
import { openDocument } from '../secrets/sealed-document.js';
import type { Keyring } from '../secrets/secret-box.js';
import type { FileSchema } from '../settings/schema.js';
import { systemClock, type Clock } from '../core/clock.js';
import { maskText } from '../core/mask.js';
import { maskedSpellingsOf } from '../settings/mask-secrets.js';
import { FILE_ACTOR, type ActorRef, type RevisionSource } from '../core/actor.js';
import { checkDocument } from '../settings/check-document.js';
import { NO_RESOLVE, type ResolveSettings } from '../settings/resolve.js';
import { createTargetLanes, type LaneReconciler, type LaneReport } from './lanes.js';
import type { WorkerToMain } from './protocol.js';
import type { ReconcileResult, RunSource } from '../targets/outcome.js';
import type { TargetSpec } from '../targets/target-spec.js';

/** A revision as the history records it. */
export interface RecordedRevision {
  readonly text: string;
  readonly revision: string;
  /** Resolved values. */
  readonly doc: IniDocument;
  /** Values as written (sealed ones opened); default `doc` (nothing to resolve). */
  readonly raw?: IniDocument;
}

export interface SyncLoopDeps {
  configPath: string;
  schema: FileSchema;
  /** The targets, for their lanes (targets whose reloads reach the same service share one). */
  targets: readonly Pick<TargetSpec, 'name' | 'reload'>[];
  reconciler: LaneReconciler;
  post: (message: WorkerToMain) => void;
  logger: Logger;
  /** Told the hash of each content read, so the poll does not re-trigger on it. */
  markSeen?: (hash: string | undefined) => void;
  /** Who another process said wrote a revision nobody here announced; undefined: nobody (a hand edit). */
  askAuthor?: (revision: string) => Promise<RevisionMeta | undefined>;
  /** Opens sealed values; without it a sealed value fails the revision. */
  keyring?: Keyring;
  /** How values are resolved (references, the environment's overlays); default: as written. */
  resolve?: ResolveSettings;
  /** Commits a revision to the history; returns its commit (null when that failed). */
  record?: (revision: RecordedRevision, meta: RevisionMeta) => Promise<string | null>;
  /**
   * The revision the targets last applied before this worker started (from the history): an
   * automatic rollback of the first revision this worker runs returns config.ini to it.
   */
  initialApplied?: { text: string; revision: string; commit: string };
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Times the retries and stamps the runs; default the system clock. */
  clock?: Clock;
  /** Reads config.ini; default fs.readFile (tests count the reads). */
  readConfig?: (path: string) => Promise<Buffer>;
}

/** Who made a revision and why, as main announced it. */
export interface RevisionMeta {
  readonly actor: ActorRef;
  readonly source: RevisionSource;
  readonly rollbackOf?: string;
  /** The configuration template the revision applied. */
  readonly template?: string;
}

interface Source {
  text: string;
  revision: string;
  /** Sealed values opened and resolved: what the targets get. */
  doc: IniDocument;
  /** Sealed values opened, references and overlays as written. */
  raw: IniDocument;
  /** Sensitive values in plain text: the revision is used but not committed until main seals it. */
  unsealed: readonly string[];
  commit?: string | null;
  /** Settles when the history commit is done (`commit` is then set). */
  committing?: Promise<void>;
  /** Who made it, once known (the announcement is used up by the commit). */
  meta?: RevisionMeta;
}

const MAX_REMEMBERED_ACTORS = 256;

/** A revision sent down the lanes, until its outcome is known. */
interface Submitted {
  readonly source: Source;
  done: boolean;
  /** A lane failed it under `rollback`. */
  rollbackSeen: boolean;
  rollbackAsked: boolean;
}

/** Two reads this far apart that agree: the writer is done. */
const QUIET_MS = 15;
/**
 * A file changed less than this long ago may still be being written: QUIET_MS, plus the lag of
 * the kernel's coarse clock that stamps mtime (up to a tick, 10 ms at HZ=100).
 */
const SETTLED_AGE_MS = QUIET_MS + 10;

/** An mtime of whole seconds says nothing of the last milliseconds (FAT, some network mounts). */
function settledByStat(before: BigIntStats, after: BigIntStats, bytesRead: number): boolean {
  const unchanged = after.ino === before.ino && after.size === before.size && after.mtimeNs === before.mtimeNs;
  const fine = after.mtimeNs % 1_000_000_000n !== 0n;
  return unchanged && fine && after.size === BigInt(bytesRead) && Date.now() - Number(after.mtimeNs / 1_000_000n) >= SETTLED_AGE_MS;
}

/**
 * Real time, not the injected clock: it waits for another process to finish writing the file.
 * A file the watcher saw settle is read once, when the file itself says it did: the same inode,
 * size and mtime before and after the read, the bytes read all of it, and its last change at
 * least SETTLED_AGE_MS old by a clock finer than seconds. (Events alone cannot say so: chokidar
 * lets one change event of a file through every 50 ms and drops the others.) Otherwise, it is
 * read until two reads QUIET_MS apart agree. A share whose server clock runs behind, or that
 * caches attributes, can make a file look older than it is; changes there mostly come through
 * the poll, which always reads twice.
 */
async function readSettled(read: (path: string) => Promise<Buffer>, path: string, { settled }: { settled: boolean }): Promise<string> {
  const before = settled ? await stat(path, { bigint: true }).catch(() => undefined) : undefined;
  let previous = await read(path);
  if (before) {
    const after = await stat(path, { bigint: true }).catch(() => undefined);
    if (after && settledByStat(before, after, previous.length)) return decodeText(previous, 'config.ini');
  }
  for (let attempt = 0; attempt < 50; attempt++) {
    await sleep(QUIET_MS);
    const current = await read(path);
    if (current.equals(previous)) return decodeText(current, 'config.ini');
    previous = current;
  }
  throw new AppError('CONFIG_INVALID', { details: 'config.ini kept changing; waiting for the next save' });
}

/** The 1-based line of a `section.key` field in the file, for the first issue a hand edit has. */
function lineOf(doc: IniDocument, field: string): number | undefined {
  const dot = field.lastIndexOf('.');
  const entry = doc.byName.get(field.slice(0, dot))?.byKey.get(field.slice(dot + 1));
  return entry ? entry.firstLine + 1 : undefined;
}

/** The 1-based line of a section's header (an issue of a whole overlay names its section). */
function sectionLineOf(doc: IniDocument, field: string): number | undefined {
  const section = doc.byName.get(field);
  return section ? section.headerLine + 1 : undefined;
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
  /** The newest revision every lane applied: what an automatic rollback returns config.ini to. */
  let lastApplied: Source | undefined = deps.initialApplied
    ? {
        text: deps.initialApplied.text,
        revision: deps.initialApplied.revision,
        doc: parseIni(deps.initialApplied.text),
        raw: parseIni(deps.initialApplied.text),
        unsealed: [],
        commit: deps.initialApplied.commit,
      }
    : undefined;
  /** The revision every lane holds, once its run applied everywhere. */
  let inEffect: string | undefined;
  let lastFailedRevision: string | undefined;
  let lastInvalidRevision: string | undefined;
  /** The newest revision sent down the lanes, and whether its outcome is known. */
  let lastSubmitted: Submitted | undefined;
  let firstSubmitted = false;
  /** Reads of config.ini, one at a time; runs do not wait in it (they are on the lanes). */
  let reading: Promise<unknown> = Promise.resolve();
  /** Outcomes are posted in submission order. */
  let posting: Promise<unknown> = Promise.resolve();
  /** History commits, one at a time: each is summarized against the one before. */
  let committing: Promise<unknown> = Promise.resolve();
  let stopped = false;

  const lanes = createTargetLanes({
    targets: deps.targets,
    reconciler,
    clock,
    logger,
    retryBaseMs,
    retryMaxMs,
    onReport: (report) => onLaneReport(report),
    // Before the reloads: a service that pulls its files when it is restarted gets these.
    onFiles: (files) => post({ type: 'files', files }),
  });

  function serializedRead<T>(task: () => Promise<T>): Promise<T> {
    const next = reading.then(task, task);
    reading = next.catch(() => undefined);
    return next;
  }

  async function readSource({ requestId, settled }: { requestId?: string; settled: boolean }): Promise<Source | undefined> {
    let text: string;
    try {
      text = await readSettled(deps.readConfig ?? readFile, configPath, { settled });
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
      const source: Source = { text, revision, doc: stored, raw: stored, unsealed: [] };
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
      const checked = checkDocument({ doc: opened.doc, schema, refusePublicKeys: true, resolve: deps.resolve ?? NO_RESOLVE });
      const { resolved, issues } = checked;
      if (issues.length > 0) {
        const first = issues[0]!;
        const line = checked.lineOf(first) ?? lineOf(opened.doc, first.field) ?? sectionLineOf(opened.doc, first.field);
        throw new AppError('CONFIG_INVALID', { details: issues.map((i) => i.message).join('; '), ...(line ? { data: { line } } : {}) });
      }
      lastInvalidRevision = undefined;
      return { text, revision, doc: resolved.doc, raw: opened.doc, unsealed: opened.unsealed };
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
    const record = deps.record;
    const known = takeMeta(source.revision);
    const fallback: RevisionMeta = { actor: FILE_ACTOR, source: startup ? 'startup' : 'file' };
    // Unannounced: a hand edit, or a write by another process (the CLI) that named its author, or
    // at a start, a write confhub made just before it was killed.
    const ask = deps.askAuthor;
    const author = known ? Promise.resolve(known) : ask ? ask(source.revision).then((m) => m ?? fallback) : Promise.resolve(fallback);
    const done = committing.then(async () => {
      const meta = await author;
      source.meta = meta;
      const commit = await record(source, meta);
      // Main keeps its announcement on disk until here, for a start after a crash.
      if (known) post({ type: 'author_used', revision: source.revision });
      return commit;
    });
    committing = done.catch(() => undefined);
    source.committing = done.then(
      (commit) => {
        source.commit = commit;
      },
      (error: unknown) => {
        log.error({ err: error, revision: source.revision }, 'committing the revision failed');
        source.commit = null;
      },
    );
  }

  function failedResult(source: Source, error: unknown): ReconcileResult {
    const plain = toPlainError(isAppError(error) ? error : new AppError('INTERNAL_ERROR', { details: 'the reconcile failed unexpectedly', cause: error }));
    return { revision: source.revision, outcome: 'failed', rollbackConfig: false, targets: [], error: plain };
  }

  function masked(result: ReconcileResult, doc: IniDocument): ReconcileResult {
    if (!result.error && result.targets.every((t) => t.error === null)) return result;
    // The last applied revision's secrets too: a command may quote a file this revision did not
    // rewrite (a check of the whole installed configuration reads every include).
    const docs = lastApplied && lastApplied.doc !== doc ? [doc, lastApplied.doc] : [doc];
    const secrets = maskedSpellingsOf({ docs, schema });
    return {
      ...result,
      ...(result.error ? { error: maskError(result.error, secrets)! } : {}),
      targets: result.targets.map((t) => ({ ...t, error: maskError(t.error, secrets) })),
    };
  }

  function postRun(source: Source, result: ReconcileResult, options: { source: RunSource; requestId?: string; actor?: ActorRef; startedAt: number }): void {
    post({
      type: 'run',
      source: options.source,
      actor: options.actor ?? source.meta?.actor ?? metas.get(source.revision)?.actor ?? FILE_ACTOR,
      startedAt: options.startedAt,
      finishedAt: now(),
      result: masked(result, source.doc),
      ...(source.commit !== undefined ? { commit: source.commit } : {}),
      ...(options.requestId ? { requestId: options.requestId } : {}),
    });
  }

  /** A lane finished a revision: its targets' state is known now, whatever the other lanes still do. */
  function onLaneReport(report: LaneReport): void {
    const source = submitted.get(report.revision);
    post({
      type: 'lane',
      lane: report.lane,
      source: report.source,
      startedAt: report.startedAt,
      finishedAt: report.finishedAt,
      result: masked(report.result, report.doc),
      ...(source?.commit !== undefined ? { commit: source.commit } : {}),
    });
    // A rollback-policy target failed: config.ini goes back at once (once every earlier revision's
    // outcome is known, so "the last revision every lane applied" is), and the lanes still waiting
    // to run this revision run the restored one instead.
    const entry = report.source === 'retry' ? undefined : open.find((e) => e.source.revision === report.revision);
    if (!report.result.rollbackConfig || !entry) return;
    entry.rollbackSeen = true;
    if (open[0] === entry) askRollback(entry);
  }

  /** Asks main once per submission (the same bad content saved again later is rolled back again). */
  function askRollback(entry: Submitted): void {
    const { source } = entry;
    const to = lastApplied;
    if (entry.rollbackAsked || !to || to.revision === source.revision) return;
    entry.rollbackAsked = true;
    void Promise.resolve(to.committing).then(() =>
      post({
        type: 'rollback_config',
        failedRevision: source.revision,
        toRevision: to.revision,
        ...(to.commit ? { toCommit: to.commit } : {}),
        text: to.text,
      }),
    );
  }

  /** Revisions on the lanes, by revision, for their reports (the newest few). */
  const submitted = new Map<string, Source>();
  /** Submissions whose outcome is not known yet, oldest first. */
  const open: Submitted[] = [];

  function submit(source: Source, options: { source: RunSource; force: boolean; requestId?: string; actor?: ActorRef }): void {
    const startedAt = now();
    submitted.delete(source.revision);
    submitted.set(source.revision, source);
    if (submitted.size > MAX_REMEMBERED_ACTORS) submitted.delete(submitted.keys().next().value!);
    const entry: Submitted = { source, done: false, rollbackSeen: false, rollbackAsked: false };
    lastSubmitted = entry;
    open.push(entry);
    // The file as read is valid: main forgets an earlier invalid save now, not when the runs end.
    post({ type: 'accepted', revision: source.revision });
    const ticket = lanes.submit({ revision: source.revision, doc: source.doc, force: options.force, source: options.source });
    if (!firstSubmitted) {
      firstSubmitted = true;
      void ticket.written.then(() => post({ type: 'rendered', revision: source.revision }));
    }
    // Outcomes are known in submission order (each lane takes revisions in order), so what the
    // loop remembers is updated in that order too.
    const settled = ticket.done.then((result) => {
      open.splice(open.indexOf(entry), 1);
      settle(entry, result);
      entry.done = true;
      // A lane of the next revision may have failed under `rollback` while this one was still open.
      if (open[0]?.rollbackSeen) askRollback(open[0]);
      return result;
    });
    const next = posting.then(async () => {
      const result = await settled;
      await source.committing;
      // Every lane went past it before running it: nothing was done with it, and only an explicit
      // request is owed an answer (writes waiting on it are answered by the newer revision).
      if (result.targets.length === 0 && (result.superseded?.length ?? 0) > 0 && !options.requestId) return;
      postRun(source, result, { ...options, startedAt });
    });
    posting = next.catch((error: unknown) => log.error({ err: error, revision: source.revision }, 'reporting a run failed'));
  }

  /** What the loop remembers of a revision whose lanes have all finished it. */
  function settle(entry: Submitted, result: ReconcileResult): void {
    const { source } = entry;
    const complete = (result.superseded?.length ?? 0) === 0;
    if ((result.outcome === 'applied' || result.outcome === 'unchanged') && complete) {
      inEffect = source.revision;
      lastApplied = source;
      lastFailedRevision = undefined;
    } else if (result.outcome === 'applied' || result.outcome === 'unchanged') {
      // Some lanes hold a newer revision: no single revision is in effect everywhere.
      inEffect = undefined;
    } else {
      // A rollback puts only the failing lane back: lanes that wrote this revision hold it until
      // the restored one runs, so the last applied revision is in effect only if none did.
      const moved = !complete || result.targets.some((t) => t.state === 'in_sync' && t.changed);
      if (result.outcome !== 'rolled_back' || moved) inEffect = undefined;
      lastFailedRevision = source.revision;
      if (result.rollbackConfig) askRollback(entry);
    }
  }

  /**
   * The file returned to a revision that is not run again. It is valid: main hears that at once.
   * The outcome waits for the revision's commit (the history names it), queued with the other
   * outcomes rather than in the reads, so a slow commit never delays reading the next save.
   */
  function skip(source: Source, reason: 'applied' | 'failed'): void {
    post({ type: 'accepted', revision: source.revision });
    const next = posting.then(async () => {
      await source.committing;
      post({ type: 'skipped', revision: source.revision, reason, ...(source.commit !== undefined ? { commit: source.commit } : {}) });
    });
    posting = next.catch((error: unknown) => log.error({ err: error, revision: source.revision }, 'reporting a skipped revision failed'));
  }

  /** Why a revision just read is not run again, if it is not. */
  function skipReason(source: Source, { startup }: { startup: boolean }): 'applied' | 'failed' | undefined {
    if (startup || !lastSubmitted?.done) return undefined;
    // Skipped only when every lane holds it: after a failed run (on_failure = keep leaves some
    // lanes on the failed revision) the last applied one runs again.
    if (source.revision === inEffect) return 'applied';
    if (lastSubmitted.source.revision === source.revision && source.revision === lastFailedRevision) return 'failed';
    return undefined;
  }

  function afterRead(source: Source, options: { startup: boolean }): void {
    commit(source, { startup: options.startup });
    if (source.unsealed.length > 0 && deps.keyring) return;
    // The same content read again while it is on its way: its outcome answers for both. It is
    // valid all the same (an invalid save in between, undone, is not the source's state any more).
    if (!options.startup && lastSubmitted?.source.revision === source.revision && !lastSubmitted.done) {
      post({ type: 'accepted', revision: source.revision });
      return;
    }
    const reason = skipReason(source, options);
    if (reason) skip(source, reason);
    else submit(source, { source: options.startup ? 'startup' : 'change', force: false });
  }

  return {
    /** A write by main is about to land: remember who made that revision and why. */
    expect(revision: string, meta: RevisionMeta): void {
      metas.delete(revision);
      metas.set(revision, meta);
      if (metas.size > MAX_REMEMBERED_ACTORS) metas.delete(metas.keys().next().value!);
    },

    /**
     * The watcher saw config.ini change (after the debounce). Resolves once the file is read and
     * its revision is on the lanes, not when they finish: an invalid save is reported at once,
     * whatever a slow service is doing.
     */
    onChange(options: { startup?: boolean; settled?: boolean } = {}): Promise<void> {
      return serializedRead(async () => {
        if (stopped) return;
        const source = await readSource({ settled: options.settled === true });
        if (!source) return;
        afterRead(source, { startup: options.startup === true });
      });
    },

    /** POST /settings/reload: a full reconcile now, even of a revision that failed before. */
    reconcileNow({ requestId, force, actor }: { requestId: string; force: boolean; actor?: ActorRef | undefined }): Promise<void> {
      return serializedRead(async () => {
        if (stopped) return;
        const source = await readSource({ requestId, settled: false });
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
        submit(source, { source: 'reload', force, requestId, ...(actor ? { actor } : {}) });
      });
    },

    /** Resolves when every revision read so far has run on every lane and its outcome is posted. */
    async idle(): Promise<void> {
      for (;;) {
        const [read, posted] = [reading, posting];
        await read;
        await lanes.idle();
        await posted;
        if (read === reading && posted === posting) return;
      }
    },

    /** Finishes what was read (every lane runs it), then stops scheduling. */
    async stop(): Promise<void> {
      stopped = true;
      lanes.stop();
      await this.idle();
    },
  };
}
