/**
 * Callers waiting on the worker: a write made with `?wait=true` waits for its revision (or a
 * later one: latest wins), a `POST /settings/reload?wait=true` for the answer to its request.
 * Both give up at their deadline; a reconcile request fails at once when the worker dies.
 */
import { withDeadline } from '../core/deadline.js';
import { AppError, type PlainError } from '../core/errors.js';
import type { ReconcileResult, RunSource } from '../targets/outcome.js';

export type RunAnswer =
  | { readonly kind: 'run'; readonly source: RunSource; readonly result: ReconcileResult; readonly commit?: string | null }
  | { readonly kind: 'source_invalid'; readonly revision: string; readonly error: PlainError };

interface RevisionWaiter {
  seq: number;
  revision: string;
  resolve: (answer: RunAnswer) => void;
}

function workerTimeout(timeoutMs: number): AppError {
  return new AppError('TIMEOUT', { details: `the sync worker did not answer within ${Math.round(timeoutMs / 1000)} s; see /api/v1/sync/status` });
}

export interface RevisionWaitersDeps {
  /** The revision config.ini holds now; undefined when it cannot be read. */
  currentRevision: () => string | undefined;
}

/** Answers kept for writes whose wait had not begun yet; far more than writes in flight at once. */
const ANSWERS_KEPT = 256;
/** Revisions announced and not answered yet (a write that failed after its announcement never lands). */
const EXPECTED_KEPT = 1024;

/** Writes waiting for their revision, in write order: a later run answers every earlier wait. */
export function createRevisionWaiters({ currentRevision }: RevisionWaitersDeps) {
  const revisionSeq = new Map<string, number>();
  // The worker may answer a revision between the write's rename and the route's call to wait (a
  // short debounce on a busy machine): that write then reads the answer it missed.
  const answered = new Map<string, RunAnswer>();
  /** Announced revisions whose file is in place: only these can have been superseded by another. */
  const landed = new Set<string>();
  const waiters: RevisionWaiter[] = [];
  let seq = 0;

  function forget(revision: string): void {
    revisionSeq.delete(revision);
    landed.delete(revision);
  }

  function keep(revision: string, answer: RunAnswer): void {
    answered.delete(revision);
    answered.set(revision, answer);
    if (answered.size > ANSWERS_KEPT) answered.delete(answered.keys().next().value!);
  }

  function settle(matches: (waiter: RevisionWaiter) => boolean, answer: RunAnswer): void {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const waiter = waiters[i]!;
      if (matches(waiter)) {
        waiters.splice(i, 1);
        waiter.resolve(answer);
      }
    }
  }

  return {
    /** A write is about to land with this revision. */
    expect(revision: string): void {
      // The same bytes written again (a value set back) wait for their new run, not the old answer.
      answered.delete(revision);
      landed.delete(revision);
      revisionSeq.delete(revision);
      revisionSeq.set(revision, ++seq);
      if (revisionSeq.size > EXPECTED_KEPT) forget(revisionSeq.keys().next().value!);
    },

    /** The write of this revision replaced the file. */
    landed(revision: string): void {
      if (revisionSeq.has(revision)) landed.add(revision);
    },

    answer(revision: string, answer: RunAnswer): void {
      const done = revisionSeq.get(revision);
      if (done !== undefined) {
        settle((waiter) => waiter.seq <= done, answer);
        for (const [rev, s] of revisionSeq) {
          if (s > done) continue;
          forget(rev);
          keep(rev, answer);
        }
      }
      // When the answer is about the file as it is now, every other revision waited on that landed
      // was superseded (a later write or a hand edit replaced it before it ran): it gets this
      // answer. One announced but not in place yet is newer than this file, and waits for its own.
      if (currentRevision() === revision) {
        for (const rev of [...landed]) {
          settle((waiter) => waiter.revision === rev, answer);
          forget(rev);
          keep(rev, answer);
        }
      }
    },

    /** Resolves when the worker applied (or rolled back) this revision or a later one. */
    wait(revision: string, timeoutMs: number): Promise<RunAnswer> {
      const early = answered.get(revision);
      if (early) return Promise.resolve(early);
      const target = revisionSeq.get(revision);
      if (target === undefined) {
        return Promise.reject(new AppError('INVALID_REQUEST', { details: 'this write did not change config.ini; there is nothing to wait for' }));
      }
      let waiter: RevisionWaiter | undefined;
      const pending = new Promise<RunAnswer>((resolve) => {
        waiter = { seq: target, revision, resolve };
        waiters.push(waiter);
      });
      return withDeadline(pending, {
        timeoutMs,
        onTimeout: () => {
          const i = waiters.indexOf(waiter!);
          if (i >= 0) waiters.splice(i, 1);
          return workerTimeout(timeoutMs);
        },
      });
    },
  };
}

/** Reconcile requests waiting for the worker's answer, by request id. */
export function createRequestWaiters() {
  const pending = new Map<string, { resolve: (answer: RunAnswer) => void; reject: (error: AppError) => void }>();

  return {
    wait(requestId: string, timeoutMs: number): Promise<RunAnswer> {
      const answer = new Promise<RunAnswer>((resolve, reject) => pending.set(requestId, { resolve, reject }));
      return withDeadline(answer, {
        timeoutMs,
        onTimeout: () => {
          pending.delete(requestId);
          return workerTimeout(timeoutMs);
        },
      }).finally(() => pending.delete(requestId));
    },

    answer(requestId: string, answer: RunAnswer): void {
      pending.get(requestId)?.resolve(answer);
    },

    /** The worker died: nobody will answer these. */
    failAll(error: AppError): void {
      for (const waiter of pending.values()) waiter.reject(error);
      pending.clear();
    },
  };
}
