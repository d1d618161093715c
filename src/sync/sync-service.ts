/**
 * The main thread's side of syncing: it owns what the worker reports. Every run is recorded in
 * SQLite (sync_runs) and the audit log; per-target status is kept for /sync/status; events are
 * broadcast for the SSE stream; callers waiting on a revision (`?wait=true`) or on a reconcile
 * request are answered; and a rollback the worker asks for is written through the settings
 * store, so it is validated and audited like any other write.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Database } from 'better-sqlite3';
import type { Logger } from 'pino';
import { backoffDelay } from '../core/backoff.js';
import { withDeadline } from '../core/deadline.js';
import type { Actor, ActorRef } from '../core/actor.js';
import type { AuditLog } from '../audit/audit-log.js';
import { AppError, isAppError, type PlainError } from '../core/errors.js';
import type { RevisionAnnouncement, SettingsStore } from '../settings/store.js';
import type { HistoryStatus, MainToWorker, RunSource, WorkerToMain } from './protocol.js';
import type { ReconcileResult, TargetOutcome, TargetState } from './reconcile.js';
import type { TargetSpec } from '../targets/target-spec.js';
import type { Metrics } from '../metrics.js';

export type SyncEventType = 'applied' | 'failed' | 'source_invalid' | 'rolled_back';

export interface SyncEvent {
  readonly type: SyncEventType;
  readonly revision: string;
  readonly at: string;
  readonly source?: RunSource;
  readonly actor?: ActorRef;
  readonly targets?: readonly TargetOutcome[];
  readonly error?: PlainError;
}

export interface NumberedEvent {
  readonly id: number;
  readonly event: SyncEvent;
}

const RECENT_EVENTS = 100;

export interface TargetStatus {
  target: string;
  output: string;
  format: string;
  reload: string;
  state: TargetState | 'unknown';
  appliedRevision: string | null;
  lastRevision: string | null;
  writeMode: string | null;
  reloaded: boolean | null;
  healthy: boolean | null;
  durationMs: number | null;
  lastRunAt: string | null;
  lastError: PlainError | null;
}

export type RunAnswer =
  | { readonly kind: 'run'; readonly source: RunSource; readonly result: ReconcileResult; readonly commit?: string | null }
  | { readonly kind: 'source_invalid'; readonly revision: string; readonly error: PlainError };

export interface SyncServiceDeps {
  targets: readonly TargetSpec[];
  describeReload: (target: TargetSpec) => string;
  db: Database;
  audit: AuditLog;
  settings: SettingsStore;
  logger: Logger;
  send: (message: MainToWorker) => void;
  workerAlive: () => boolean;
  workerRestarts: () => number;
  metrics?: Metrics;
  now?: () => number;
}

interface RevisionWaiter {
  revision: string;
  seq: number;
  resolve: (answer: RunAnswer) => void;
}

export function createSyncService(deps: SyncServiceDeps) {
  const { db, audit, settings, logger, now = Date.now } = deps;
  const log = logger.child({ module: 'sync-service' });
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const status = new Map<string, TargetStatus>(
    deps.targets.map((t) => [
      t.name,
      {
        target: t.name,
        output: t.output,
        format: t.format,
        reload: deps.describeReload(t),
        state: 'unknown',
        appliedRevision: null,
        lastRevision: null,
        writeMode: null,
        reloaded: null,
        healthy: null,
        durationMs: null,
        lastRunAt: null,
        lastError: null,
      },
    ]),
  );
  const insertRun = db.prepare(`INSERT INTO sync_runs (revision, commit_id, source, actor_type, actor_id, outcome, started_at, finished_at, targets)
    VALUES (@revision, @commitId, @source, @actorType, @actorId, @outcome, @startedAt, @finishedAt, @targets)`);
  const lastAppliedCommit = db.prepare<[], { commit_id: string }>(
    "SELECT commit_id FROM sync_runs WHERE commit_id IS NOT NULL AND source != 'retry' AND outcome IN ('applied', 'unchanged') ORDER BY id DESC LIMIT 1",
  );
  const requestWaiters = new Map<string, { resolve: (answer: RunAnswer) => void; reject: (error: AppError) => void }>();
  /** Revisions written through the API, in write order: a later run answers every earlier wait (latest wins). */
  const revisionSeq = new Map<string, number>();
  const revisionWaiters: RevisionWaiter[] = [];
  /** When each announced revision was written, for the propagation time (bounded: the newest only). */
  const writtenAt = new Map<string, number>();
  let seq = 0;
  let ready = false;
  let firstRunDone = false;
  let sourceError: PlainError | null = null;
  let lastRun: { revision: string; outcome: string; at: string } | null = null;
  let history: HistoryStatus | null = null;

  /** Recent events, so a client reconnecting with Last-Event-ID misses nothing that is still here. */
  const recent: NumberedEvent[] = [];
  let lastEventId = 0;

  function emit(event: SyncEvent): void {
    const numbered = { id: ++lastEventId, event };
    recent.push(numbered);
    if (recent.length > RECENT_EVENTS) recent.shift();
    events.emit('event', numbered);
  }

  function answerRevision(revision: string, answer: RunAnswer): void {
    const done = revisionSeq.get(revision);
    if (done !== undefined) {
      settleWaiters((waiter) => waiter.seq <= done, answer);
      for (const [rev, s] of revisionSeq) if (s <= done) revisionSeq.delete(rev);
    }
    // When the answer is about the file as it is now, every other revision still waited on was
    // superseded (a later write or a hand edit landed before it ran): it gets this answer.
    let current: string | undefined;
    try {
      current = settings.read().revision;
    } catch {
      current = undefined;
    }
    if (current === revision) {
      settleWaiters(() => true, answer);
      revisionSeq.clear();
    }
  }

  function settleWaiters(matches: (waiter: RevisionWaiter) => boolean, answer: RunAnswer): void {
    for (let i = revisionWaiters.length - 1; i >= 0; i--) {
      const waiter = revisionWaiters[i]!;
      if (matches(waiter)) {
        revisionWaiters.splice(i, 1);
        waiter.resolve(answer);
      }
    }
  }

  function recordRun(message: Extract<WorkerToMain, { type: 'run' }>): void {
    const { result } = message;
    const at = new Date(message.finishedAt).toISOString();
    for (const outcome of result.targets) {
      const current = status.get(outcome.target);
      if (!current) continue;
      // A target this run left alone keeps an earlier pending reload (it is still being retried).
      const untouched = !outcome.changed && !outcome.reloaded && outcome.error === null;
      if (untouched && current.state === 'pending_reload') {
        current.lastRevision = result.revision;
        current.appliedRevision = result.revision;
        continue;
      }
      current.state = outcome.state;
      current.lastRevision = result.revision;
      if (outcome.state === 'in_sync' || outcome.state === 'pending_reload') current.appliedRevision = result.revision;
      current.writeMode = outcome.writeMode ?? current.writeMode;
      current.reloaded = outcome.reloaded;
      current.healthy = outcome.healthy;
      current.durationMs = outcome.durationMs;
      current.lastRunAt = at;
      current.lastError = outcome.error;
    }
    // A secret that does not open freezes the targets like an invalid file does.
    sourceError = result.error?.code === 'SECRET_UNREADABLE' ? result.error : null;
    lastRun = { revision: result.revision, outcome: result.outcome, at };
    try {
      insertRun.run({
        revision: result.revision,
        commitId: message.commit ?? null,
        source: message.source,
        actorType: message.actor.type,
        actorId: message.actor.id,
        outcome: result.outcome,
        startedAt: message.startedAt,
        finishedAt: message.finishedAt,
        targets: JSON.stringify(result.targets),
      });
      if (result.outcome !== 'unchanged') {
        const failedTarget = result.targets.find((t) => t.error && t.state !== 'pending_reload');
        audit.record([
          {
            at: message.finishedAt,
            actor: { type: message.actor.type, id: message.actor.id },
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
      }
    } catch (error) {
      log.error({ err: error }, 'recording a sync run failed');
    }
    deps.metrics?.run({
      source: message.source,
      result,
      startedAt: message.startedAt,
      finishedAt: message.finishedAt,
      ...(message.source !== 'retry' && writtenAt.has(result.revision) ? { writtenAt: writtenAt.get(result.revision)! } : {}),
    });
    if (message.source !== 'retry') writtenAt.delete(result.revision);
    const type: SyncEventType = result.outcome === 'rolled_back' ? 'rolled_back' : result.outcome === 'failed' ? 'failed' : 'applied';
    if (result.outcome !== 'unchanged' || message.source === 'reload') {
      emit({ type, revision: result.revision, at, source: message.source, actor: message.actor, targets: result.targets });
    }
  }

  async function rollbackConfig(message: Extract<WorkerToMain, { type: 'rollback_config' }>): Promise<void> {
    const actor: Actor = { type: 'system', id: 'auto-rollback' };
    try {
      const result = await settings.restore({
        text: message.text,
        ifRevision: message.failedRevision,
        actor,
        source: 'auto_rollback',
        ...(message.toCommit ? { rollbackOf: message.toCommit } : {}),
      });
      log.warn({ from: message.failedRevision, to: message.toRevision, revision: result.snapshot.revision }, 'config.ini rolled back to the last applied revision');
    } catch (error) {
      log.error({ err: error, from: message.failedRevision }, 'config.ini could not be rolled back');
    }
  }

  /** The worker applies a plain text revision only once it is sealed: a failed seal is tried again. */
  async function sealWithRetry(revision: string): Promise<void> {
    for (let attempt = 1; attempt <= 5; attempt++) {
      try {
        // The hand edit's author is the file; the audit log names the seal itself.
        await settings.seal({ actor: { type: 'file', id: 'file' } });
        return;
      } catch (error) {
        log.error({ err: error, revision, attempt }, 'sealing values typed in plain text failed');
        if (isAppError(error) && (error.code === 'SECRET_UNREADABLE' || error.code === 'CONFIG_INVALID' || error.code === 'VALIDATION_FAILED')) return;
        await new Promise((resolve) => setTimeout(resolve, backoffDelay({ attempt, baseMs: 500, maxMs: 8000, minMs: 250 })).unref());
      }
    }
  }

  return {
    events,

    /** Events after `id` that are still remembered (for Last-Event-ID). */
    eventsAfter(id: number): NumberedEvent[] {
      return recent.filter((e) => e.id > id);
    },

    onWorkerMessage(message: WorkerToMain): void {
      switch (message.type) {
        case 'ready':
          ready = true;
          break;
        case 'run': {
          firstRunDone = true;
          recordRun(message);
          const answer: RunAnswer = { kind: 'run', source: message.source, result: message.result, ...(message.commit !== undefined ? { commit: message.commit } : {}) };
          if (message.requestId) requestWaiters.get(message.requestId)?.resolve(answer);
          // A retry runs only some targets of an older revision: it answers nobody's write.
          if (message.source !== 'retry') answerRevision(message.result.revision, answer);
          break;
        }
        case 'skipped': {
          // The file is valid again (it returned to a revision already run).
          sourceError = null;
          const result: ReconcileResult =
            message.reason === 'applied'
              ? { revision: message.revision, outcome: 'unchanged', rollbackConfig: false, targets: [] }
              : {
                  revision: message.revision,
                  outcome: 'failed',
                  rollbackConfig: false,
                  targets: [],
                  error: {
                    code: 'SYNC_FAILED',
                    message: 'Sync failed',
                    details: 'this revision failed before and is not run again until config.ini changes; POST /api/v1/settings/reload runs it now',
                  },
                };
          answerRevision(message.revision, { kind: 'run', source: 'change', result, ...(message.commit !== undefined ? { commit: message.commit } : {}) });
          deps.metrics?.skipped(message.reason === 'applied' ? 'unchanged' : 'failed');
          writtenAt.delete(message.revision);
          try {
            // The history shows the outcome of every revision, including one the targets already had.
            insertRun.run({
              revision: message.revision,
              commitId: message.commit ?? null,
              source: 'change',
              actorType: 'system',
              actorId: 'worker',
              outcome: result.outcome,
              startedAt: now(),
              finishedAt: now(),
              targets: '[]',
            });
          } catch (error) {
            log.error({ err: error }, 'recording a skipped revision failed');
          }
          break;
        }
        case 'source_invalid': {
          sourceError = message.error;
          const answer: RunAnswer = { kind: 'source_invalid', revision: message.revision, error: message.error };
          if (message.requestId) requestWaiters.get(message.requestId)?.resolve(answer);
          else answerRevision(message.revision, answer);
          try {
            insertRun.run({
              revision: message.revision,
              commitId: null,
              source: message.requestId ? 'reload' : 'change',
              actorType: 'file',
              actorId: 'file',
              outcome: 'source_invalid',
              startedAt: now(),
              finishedAt: now(),
              targets: '[]',
            });
          } catch (error) {
            log.error({ err: error }, 'recording an invalid source failed');
          }
          emit({ type: 'source_invalid', revision: message.revision, at: new Date(now()).toISOString(), error: message.error });
          break;
        }
        case 'rollback_config':
          void rollbackConfig(message);
          break;
        case 'seal_needed':
          void sealWithRetry(message.revision);
          break;
        case 'history':
          history = message.status;
          break;
        case 'stopped':
          ready = false;
          break;
      }
    },

    onWorkerExit(): void {
      ready = false;
      // A reconcile request dies with the worker; writes waited on are answered by the restarted
      // worker's first run (it runs the current file).
      const lost = new AppError('WORKER_UNAVAILABLE', { details: 'the sync worker stopped during the request; it is being restarted' });
      for (const waiter of requestWaiters.values()) waiter.reject(lost);
      requestWaiters.clear();
    },

    /** From the store, just before a write lands: names the actor of that revision for the worker. */
    announce({ revision, actor, source, rollbackOf }: RevisionAnnouncement): void {
      revisionSeq.set(revision, ++seq);
      writtenAt.set(revision, now());
      if (writtenAt.size > 256) writtenAt.delete(writtenAt.keys().next().value!);
      deps.send({ type: 'expect', revision, actor: { type: actor.type, id: actor.id }, source, ...(rollbackOf ? { rollbackOf } : {}) });
    },

    /** The newest commit whose revision every target applied, for a worker that starts. */
    lastAppliedCommit(): string | undefined {
      try {
        return lastAppliedCommit.get()?.commit_id;
      } catch (error) {
        log.error({ err: error }, 'reading the last applied commit failed');
        return undefined;
      }
    },

    /** Resolves when the worker applied (or rolled back) this revision or a later one. */
    waitForRevision(revision: string, timeoutMs: number): Promise<RunAnswer> {
      const target = revisionSeq.get(revision);
      if (target === undefined) {
        return Promise.reject(new AppError('INVALID_REQUEST', { details: 'this write did not change config.ini; there is nothing to wait for' }));
      }
      let waiter: RevisionWaiter | undefined;
      const answered = new Promise<RunAnswer>((resolve) => {
        waiter = { revision, seq: target, resolve };
        revisionWaiters.push(waiter);
      });
      return withDeadline(answered, timeoutMs, () => {
        const i = revisionWaiters.indexOf(waiter!);
        if (i >= 0) revisionWaiters.splice(i, 1);
        return workerTimeout(timeoutMs);
      });
    },

    /** POST /settings/reload. */
    reconcile(options: { force: boolean; wait: boolean; timeoutMs: number; actor: ActorRef }): Promise<RunAnswer | { kind: 'accepted'; requestId: string }> {
      if (!deps.workerAlive()) {
        return Promise.reject(new AppError('WORKER_UNAVAILABLE', { details: 'the sync worker is not running; it is being restarted' }));
      }
      const requestId = randomUUID();
      const message: MainToWorker = { type: 'reconcile', requestId, force: options.force, actor: options.actor };
      if (!options.wait) {
        deps.send(message);
        return Promise.resolve({ kind: 'accepted', requestId });
      }
      const answer = new Promise<RunAnswer>((resolve, reject) => requestWaiters.set(requestId, { resolve, reject }));
      deps.send(message);
      return withDeadline(answer, options.timeoutMs, () => {
        requestWaiters.delete(requestId);
        return workerTimeout(options.timeoutMs);
      }).finally(() => requestWaiters.delete(requestId));
    },

    status() {
      return {
        worker: { alive: deps.workerAlive(), ready, restarts: deps.workerRestarts() },
        source: sourceError ? { valid: false, error: sourceError } : { valid: true, error: null },
        lastRun,
        history,
        targets: [...status.values()],
      };
    },

    /** /readyz: the worker is up, has finished its first reconcile, and config.ini is valid. */
    readiness(): { ready: boolean; reasons: string[] } {
      const reasons: string[] = [];
      if (!deps.workerAlive() || !ready) reasons.push('sync worker not running');
      else if (!firstRunDone && !sourceError) reasons.push('first reconcile not finished');
      if (sourceError) reasons.push(`config.ini invalid: ${sourceError.details}`);
      return { ready: reasons.length === 0, reasons };
    },
  };
}

export type SyncService = ReturnType<typeof createSyncService>;

function workerTimeout(timeoutMs: number): AppError {
  return new AppError('TIMEOUT', { details: `the sync worker did not answer within ${Math.round(timeoutMs / 1000)} s; see /api/v1/sync/status` });
}
