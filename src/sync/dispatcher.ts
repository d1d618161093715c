/**
 * The main thread's side of syncing: it takes every message the worker sends and hands it to the
 * part that owns it — the run log (SQLite), the audit log, per-target status, the event log,
 * the waiting callers and the metrics — and it is how main talks to the worker: revisions
 * announced before they land, reconcile requests. A rollback the worker asks for is written
 * through the settings store, so it is validated and audited like any other write.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/audit-log.js';
import type { Announcements } from './announcements.js';
import { actorRef, FILE_ACTOR, type Actor, type ActorRef } from '../core/actor.js';
import { backoffDelay } from '../core/backoff.js';
import { sleep, systemClock, type Clock } from '../core/clock.js';
import { AppError, isAppError, toPlainError, type PlainError } from '../core/errors.js';
import { ANNOUNCED_BY_WORKER, publishChanges } from '../events/change-events.js';
import type { EventLog } from '../events/event-log.js';
import type { SyncEventType } from '../events/event-types.js';
import type { Metrics } from '../metrics.js';
import type { RevisionAnnouncement, SettingsStore } from '../settings/store.js';
import type { FileOnDisk, ReconcileResult } from '../targets/outcome.js';
import { describeAction, type TargetSpec } from '../targets/target-spec.js';
import type { HistoryStatus, MainToWorker, WorkerToMain } from './protocol.js';
import type { RunLog } from './run-log.js';
import { createTargetStatus } from './target-status.js';
import { createRequestWaiters, createRevisionWaiters, type RunAnswer } from './waiters.js';

export type { RunAnswer } from './waiters.js';

/** How main reaches the worker thread (the worker host). */
export interface WorkerLink {
  send(message: MainToWorker): void;
  alive(): boolean;
  restarts(): number;
}

export interface SyncDispatcherDeps {
  targets: readonly TargetSpec[];
  /** Authors of revisions other processes wrote; none: every unannounced revision is a hand edit. */
  announcements?: Announcements;
  runLog: RunLog;
  audit: AuditLog;
  settings: SettingsStore;
  events: EventLog;
  metrics: Metrics;
  logger: Logger;
  worker: WorkerLink;
  clock?: Clock;
}

export interface ReconcileInput {
  force: boolean;
  wait: boolean;
  timeoutMs: number;
  actor: ActorRef;
}

const AUTO_ROLLBACK_ACTOR: Actor = Object.freeze({ type: 'system', id: 'auto-rollback' });
const WORKER_ACTOR: ActorRef = Object.freeze({ type: 'system', id: 'worker' });
const RETRY_ACTOR: ActorRef = Object.freeze({ type: 'system', id: 'retry' });
/** Revisions whose write time is kept for the propagation metric: the newest only. */
const WRITTEN_AT_KEPT = 256;
const SEAL_ATTEMPTS = 5;

const SKIPPED_FAILED: PlainError = Object.freeze({
  code: 'SYNC_FAILED',
  message: 'Sync failed',
  details: 'this revision failed before and is not run again until config.ini changes; POST /api/v1/settings/reload runs it now',
});

export function createSyncDispatcher(deps: SyncDispatcherDeps) {
  const { runLog, audit, settings, events, metrics, worker, targets, clock = systemClock } = deps;
  const log = deps.logger.child({ module: 'sync-dispatcher' });
  const targetStatus = createTargetStatus(deps.targets);
  const revisions = createRevisionWaiters({ currentRevision: () => currentRevision() });
  const requests = createRequestWaiters();
  /** When each announced revision was written, for the propagation time. */
  const writtenAt = new Map<string, number>();
  /** Revisions this process's store wrote: it announced their changes itself; the worker announces every other. */
  const ownRevisions = new Set<string>();
  let ready = false;
  let firstRunDone = false;
  let sourceError: PlainError | null = null;
  let lastRun: { revision: string; outcome: string; at: string } | null = null;
  let history: HistoryStatus | null = null;
  /**
   * Each target's file on disk as the worker last told it: what a service that pulls its files
   * gets. Forgotten when the worker stops: one that died between a write and its report would
   * leave a file named that is no longer there; the next worker's first run tells them all again.
   */
  const filesOnDisk = new Map<string, FileOnDisk>();
  /** The last automatic rollback that could not restore config.ini. */
  let rollbackFailure: { failedRevision: string; toRevision: string; error: PlainError; at: string } | null = null;

  function currentRevision(): string | undefined {
    try {
      return settings.read().revision;
    } catch {
      return undefined;
    }
  }

  /**
   * One lane's targets are done with a revision. Target state comes only from here (a revision's
   * aggregate can arrive after a faster lane already holds a newer one). A retry of a reload is a
   * lane result only: it is not a run of its revision, so it leaves the revision's outcome alone.
   */
  function onLane(message: Extract<WorkerToMain, { type: 'lane' }>): void {
    const { result } = message;
    targetStatus.record(result, new Date(message.finishedAt).toISOString());
    if (message.source !== 'retry') return;
    metrics.run({ source: 'retry', result, startedAt: message.startedAt, finishedAt: message.finishedAt });
    // A retry that could do nothing yet (the disk still full) is no news, like an unchanged one.
    const acted = result.targets.some((t) => t.writeMode !== null || t.reloaded || t.state === 'failed' || t.state === 'rolled_back');
    if (result.outcome === 'unchanged' || !acted) return;
    auditRun({ result, finishedAt: message.finishedAt, actor: RETRY_ACTOR });
    publishSyncRun(events, { result, source: 'retry', actor: RETRY_ACTOR }, targets);
  }

  function onRun(message: Extract<WorkerToMain, { type: 'run' }>): void {
    const { result } = message;
    firstRunDone = true;
    const at = new Date(message.finishedAt).toISOString();
    // A secret that does not open freezes the targets like an invalid file does. A valid file is
    // announced by `accepted` when it is read: a run ending later says nothing about the file now.
    if (result.error?.code === 'SECRET_UNREADABLE') sourceError = result.error;
    lastRun = { revision: result.revision, outcome: result.outcome, at };
    // Run again (a reload) and applied: the revision that could not be rolled back holds now.
    if (rollbackFailure?.failedRevision === result.revision && (result.outcome === 'applied' || result.outcome === 'unchanged')) rollbackFailure = null;
    runLog.record({
      revision: result.revision,
      commit: message.commit ?? null,
      source: message.source,
      actor: message.actor,
      outcome: result.outcome,
      startedAt: message.startedAt,
      finishedAt: message.finishedAt,
      targets: result.targets,
      ...(result.superseded ? { superseded: result.superseded } : {}),
    });
    if (result.outcome !== 'unchanged') auditRun(message);
    const written = writtenAt.get(result.revision);
    metrics.run({
      source: message.source,
      result,
      startedAt: message.startedAt,
      finishedAt: message.finishedAt,
      ...(written !== undefined ? { writtenAt: written } : {}),
    });
    writtenAt.delete(result.revision);
    if (result.outcome !== 'unchanged' || message.source === 'reload') publishSyncRun(events, message, targets);
    const answer: RunAnswer = { kind: 'run', source: message.source, result, ...(message.commit !== undefined ? { commit: message.commit } : {}) };
    if (message.requestId) requests.answer(message.requestId, answer);
    revisions.answer(result.revision, answer);
  }

  function auditRun(message: Pick<Extract<WorkerToMain, { type: 'run' }>, 'result' | 'finishedAt' | 'actor'>): void {
    auditSyncRun({ audit, log }, message);
  }

  function onSkipped(message: Extract<WorkerToMain, { type: 'skipped' }>): void {
    // The source state is left alone: `accepted` said the file is valid when it was read, and this
    // comes after the revision's commit, when a newer save may already have been found invalid.
    const result: ReconcileResult =
      message.reason === 'applied'
        ? { revision: message.revision, outcome: 'unchanged', rollbackConfig: false, targets: [] }
        : { revision: message.revision, outcome: 'failed', rollbackConfig: false, targets: [], error: SKIPPED_FAILED };
    revisions.answer(message.revision, { kind: 'run', source: 'change', result, ...(message.commit !== undefined ? { commit: message.commit } : {}) });
    metrics.skipped(message.reason === 'applied' ? 'unchanged' : 'failed');
    writtenAt.delete(message.revision);
    // The history shows the outcome of every revision, including one the targets already had.
    const at = clock.now();
    runLog.record({
      revision: message.revision,
      commit: message.commit ?? null,
      source: 'change',
      actor: WORKER_ACTOR,
      outcome: result.outcome,
      startedAt: at,
      finishedAt: at,
      targets: [],
    });
  }

  function onSourceInvalid(message: Extract<WorkerToMain, { type: 'source_invalid' }>): void {
    sourceError = message.error;
    const answer: RunAnswer = { kind: 'source_invalid', revision: message.revision, error: message.error };
    if (message.requestId) requests.answer(message.requestId, answer);
    else revisions.answer(message.revision, answer);
    const at = clock.now();
    runLog.record({
      revision: message.revision,
      commit: null,
      source: message.requestId ? 'reload' : 'change',
      actor: FILE_ACTOR,
      outcome: 'source_invalid',
      startedAt: at,
      finishedAt: at,
      targets: [],
    });
    events.publish('source.invalid', {
      revision: message.revision,
      code: message.error.code,
      reason: message.error.details ?? message.error.message,
      ...(message.error.line !== undefined ? { line: message.error.line } : {}),
    });
  }

  async function rollbackConfig(message: Extract<WorkerToMain, { type: 'rollback_config' }>): Promise<void> {
    try {
      const result = await settings.restore({
        text: message.text,
        ifRevision: message.failedRevision,
        actor: AUTO_ROLLBACK_ACTOR,
        source: 'auto_rollback',
        ...(message.toCommit ? { rollbackOf: message.toCommit } : {}),
      });
      log.warn(
        { from: message.failedRevision, to: message.toRevision, revision: result.snapshot.revision },
        'config.ini rolled back to the last applied revision',
      );
      rollbackFailure = null;
    } catch (error) {
      const plain = toPlainError(error);
      if (plain.code === 'PRECONDITION_FAILED') {
        // A newer save replaced the revision that failed: it runs on its own, nothing is left to restore.
        log.warn(
          { from: message.failedRevision, to: message.toRevision },
          'config.ini changed before it could be rolled back; the newer revision runs instead',
        );
        return;
      }
      // config.ini keeps the failed revision, and the lanes that applied it keep it too: say so
      // everywhere a user looks, not only in the log.
      log.error(
        { err: error, from: message.failedRevision, to: message.toRevision, code: plain.code, details: plain.details },
        'config.ini could not be rolled back; it still holds the revision that failed',
      );
      rollbackFailure = { failedRevision: message.failedRevision, toRevision: message.toRevision, error: plain, at: new Date(clock.now()).toISOString() };
      events.publish('sync.rollback_failed', { failedRevision: message.failedRevision, toRevision: message.toRevision, error: plain });
    }
  }

  /** The worker applies a plain text revision only once it is sealed: a failed seal is tried again. */
  async function sealWithRetry(revision: string): Promise<void> {
    for (let attempt = 0; attempt < SEAL_ATTEMPTS; attempt++) {
      try {
        // The hand edit's author is the file; the audit log names the seal itself.
        await settings.seal({ actor: FILE_ACTOR });
        return;
      } catch (error) {
        log.error({ err: error, revision, attempt }, 'sealing values typed in plain text failed');
        if (isAppError(error) && (error.code === 'SECRET_UNREADABLE' || error.code === 'CONFIG_INVALID' || error.code === 'VALIDATION_FAILED')) return;
        if (attempt === SEAL_ATTEMPTS - 1) return;
        await sleep(clock, backoffDelay({ attempt, baseMs: 500, maxMs: 8000, minMs: 250 }));
      }
    }
  }

  function workerState(state: 'ready' | 'stopped'): void {
    if (ready === (state === 'ready')) return;
    ready = state === 'ready';
    events.publish('worker.state', { state, restarts: worker.restarts() });
  }

  return {
    onWorkerMessage(message: WorkerToMain): void {
      switch (message.type) {
        case 'ready':
          workerState('ready');
          break;
        case 'run':
          onRun(message);
          break;
        case 'lane':
          onLane(message);
          break;
        case 'files':
          for (const file of message.files) filesOnDisk.set(file.target, file);
          break;
        case 'rendered':
          firstRunDone = true;
          break;
        case 'keys_changed':
          if ((ANNOUNCED_BY_WORKER.has(message.source) || !ownRevisions.has(message.revision)) && (message.keys.length > 0 || message.source !== 'rekey'))
            publishChanges(events, message);
          break;
        case 'accepted':
          sourceError = null;
          // config.ini moved on: the failed restore is history, even if those bytes come back later.
          if (rollbackFailure && rollbackFailure.failedRevision !== message.revision) rollbackFailure = null;
          break;
        case 'author_needed':
          worker.send({ type: 'author', revision: message.revision, author: deps.announcements?.take(message.revision) ?? null });
          break;
        case 'author_used':
          deps.announcements?.used(message.revision);
          break;
        case 'skipped':
          onSkipped(message);
          break;
        case 'source_invalid':
          onSourceInvalid(message);
          break;
        case 'rollback_config':
          void rollbackConfig(message);
          break;
        case 'seal_needed':
          void sealWithRetry(message.revision);
          break;
        case 'history':
          history = message.status;
          break;
        case 'log_dropped':
          metrics.workerLogLinesDropped(message.lines);
          break;
        case 'stopped':
          workerState('stopped');
          break;
      }
    },

    onWorkerExit(): void {
      workerState('stopped');
      filesOnDisk.clear();
      // A reconcile request dies with the worker; writes waited on are answered by the restarted
      // worker's first run (it runs the current file).
      requests.failAll(new AppError('WORKER_UNAVAILABLE', { details: 'the sync worker stopped during the request; it is being restarted' }));
    },

    /** From the store, just before a write lands: names the actor of that revision for the worker. */
    announce({ revision, actor, source, rollbackOf, template }: RevisionAnnouncement): void {
      revisions.expect(revision);
      ownRevisions.add(revision);
      if (ownRevisions.size > WRITTEN_AT_KEPT) ownRevisions.delete(ownRevisions.values().next().value!);
      writtenAt.set(revision, clock.now());
      if (writtenAt.size > WRITTEN_AT_KEPT) writtenAt.delete(writtenAt.keys().next().value!);
      worker.send({ type: 'expect', revision, actor: actorRef(actor), source, ...(rollbackOf ? { rollbackOf } : {}), ...(template ? { template } : {}) });
    },

    /** From the store, once a write's revision replaced the file. */
    landed(revision: string): void {
      revisions.landed(revision);
    },

    /** The newest commit whose revision every target applied, for a worker that starts. */
    lastAppliedCommit: (): string | undefined => runLog.lastAppliedCommit(),

    /** Resolves when the worker applied (or rolled back) this revision or a later one. */
    waitForRevision: (revision: string, timeoutMs: number): Promise<RunAnswer> => revisions.wait(revision, timeoutMs),

    /** POST /settings/reload. */
    reconcile(input: ReconcileInput): Promise<RunAnswer | { kind: 'accepted'; requestId: string }> {
      if (!worker.alive()) {
        return Promise.reject(new AppError('WORKER_UNAVAILABLE', { details: 'the sync worker is not running; it is being restarted' }));
      }
      const requestId = randomUUID();
      const message: MainToWorker = { type: 'reconcile', requestId, force: input.force, actor: input.actor };
      if (!input.wait) {
        worker.send(message);
        return Promise.resolve({ kind: 'accepted', requestId });
      }
      const answer = requests.wait(requestId, input.timeoutMs);
      worker.send(message);
      return answer;
    },

    /** Each target's file on disk as the worker last told it (none before the worker's first run). */
    filesOnDisk(): ReadonlyMap<string, FileOnDisk> {
      return filesOnDisk;
    },

    status() {
      return {
        worker: { alive: worker.alive(), ready, restarts: worker.restarts() },
        source: sourceError ? { valid: false, error: sourceError } : { valid: true, error: null },
        lastRun,
        history,
        // Only while config.ini still holds the revision that failed: a newer save makes it moot.
        configRollback: rollbackFailure && currentRevision() === rollbackFailure.failedRevision ? { state: 'failed' as const, ...rollbackFailure } : null,
        targets: targetStatus.list(),
      };
    },

    /**
     * /readyz: the worker is up, config.ini is valid and the first revision's files are on disk.
     * It does not wait for services to restart: their state is in /sync/status.
     */
    readiness(): { ready: boolean; reasons: string[] } {
      const reasons: string[] = [];
      if (!worker.alive() || !ready) reasons.push('sync worker not running');
      else if (!firstRunDone && !sourceError) reasons.push('first render not on disk yet');
      if (sourceError) reasons.push(`config.ini invalid: ${sourceError.details}`);
      return { ready: reasons.length === 0, reasons };
    },
  };
}

export type SyncDispatcher = ReturnType<typeof createSyncDispatcher>;

/** The audit row of a sync run that did something: `sync.<outcome>`, with the first failed target's code. */
export function auditSyncRun(
  { audit, log }: { audit: AuditLog; log: Logger },
  message: Pick<Extract<WorkerToMain, { type: 'run' }>, 'result' | 'finishedAt' | 'actor'>,
): void {
  const { result } = message;
  const failedTarget = result.targets.find((t) => t.error && t.state !== 'pending_reload');
  try {
    audit.record([
      {
        at: message.finishedAt,
        actor: actorRef(message.actor),
        action: `sync.${result.outcome}`,
        section: null,
        key: null,
        oldValue: null,
        newValue: null,
        result: result.outcome === 'applied' ? 'applied' : 'refused',
        errorCode: failedTarget?.error?.code ?? null,
        revision: result.revision,
      },
    ]);
  } catch (error) {
    log.error({ err: error }, 'recording a sync run in the audit log failed');
  }
}

/** What makes a target's service count as unhealthy in the events: it was not reached, not reloaded, or not healthy after. */
const UNHEALTHY_CODES: ReadonlySet<string> = new Set(['RELOAD_FAILED', 'HEALTH_FAILED', 'SERVICE_UNREACHABLE']);

const SYNC_EVENT: Readonly<Record<ReconcileResult['outcome'], SyncEventType>> = {
  applied: 'sync.applied',
  unchanged: 'sync.applied',
  failed: 'sync.failed',
  rolled_back: 'sync.rolled_back',
};

/**
 * The events of a sync run: `sync.applied`, `sync.failed` or `sync.rolled_back` with its targets'
 * outcomes, then one `service.reloaded` or `service.unhealthy` per target whose service was
 * reloaded, or could not be brought back (the declarations name the reload; without them, none).
 */
export function publishSyncRun(
  events: EventLog,
  message: Pick<Extract<WorkerToMain, { type: 'run' }>, 'result' | 'source' | 'actor'>,
  targets: readonly TargetSpec[] = [],
): void {
  const { result } = message;
  events.publish(SYNC_EVENT[result.outcome], {
    revision: result.revision,
    source: message.source,
    actor: message.actor,
    targets: result.targets,
    ...(result.error ? { error: result.error } : {}),
  });
  const specs = new Map(targets.map((spec) => [spec.name, spec]));
  for (const outcome of result.targets) {
    const spec = specs.get(outcome.target);
    if (!spec) continue;
    if (outcome.error && UNHEALTHY_CODES.has(outcome.error.code)) {
      events.publish('service.unhealthy', {
        revision: result.revision,
        target: outcome.target,
        code: outcome.error.code,
        reason: outcome.error.details ?? outcome.error.message,
      });
    } else if (outcome.reloaded && !outcome.error) {
      events.publish('service.reloaded', { revision: result.revision, target: outcome.target, reload: describeAction(spec.reload) });
    }
  }
}
