/**
 * Messages between the main thread and the sync worker: plain data only ({type, ...} unions),
 * because class instances and custom fields do not survive postMessage. Errors travel as
 * PlainError.
 */
import type { PlainError } from '../core/errors.js';
import type { PushStatus } from '../history/push.js';
import type { ActorRef, RevisionSource } from '../core/actor.js';
import type { ReconcileResult, RunSource } from '../targets/outcome.js';
import type { HistoryPushConfig } from '../history/push.js';
import type { SyncConfig } from '../targets/target-spec.js';

export interface WorkerInit {
  readonly configPath: string;
  readonly dataDir: string;
  readonly configDir: string;
  readonly logLevel: string;
  /** The master keys (current first, then retired ones) that open sealed values. */
  readonly masterKeys: readonly Uint8Array[];
  /** The git dir of the history repository. */
  readonly historyDir: string;
  /** Targets and [sync] of system.ini, parsed once by main (environment overrides applied). */
  readonly sync: SyncConfig;
  /** [history] of system.ini; undefined when commits are not pushed. */
  readonly historyPush?: HistoryPushConfig;
  /** Set when the worker is started again within the same process (its git processes may outlive it). */
  readonly restarted?: boolean;
  /** The newest commit whose revision the targets applied (from sync_runs): what an automatic rollback returns to. */
  readonly lastAppliedCommit?: string;
}

/** The history repository as the worker sees it, for /sync/status. */
export interface HistoryStatus {
  readonly head: string | null;
  readonly commits: number;
  readonly lastCommitAt: string | null;
  /** The last commit that failed (the revision is applied anyway, and committed with the next one). */
  readonly lastError: PlainError | null;
  /** Lock files a crash left, removed at start. */
  readonly repaired: readonly string[];
  readonly push: PushStatus | null;
}

export type MainToWorker =
  /** Sent just before config.ini is replaced, so the worker can name the actor of that revision. */
  | { readonly type: 'expect'; readonly revision: string; readonly actor: ActorRef; readonly source: RevisionSource; readonly rollbackOf?: string }
  | { readonly type: 'reconcile'; readonly requestId: string; readonly force: boolean; readonly actor?: ActorRef }
  | { readonly type: 'shutdown' };

export type WorkerToMain =
  | { readonly type: 'ready' }
  | {
      readonly type: 'run';
      readonly requestId?: string;
      readonly source: RunSource;
      readonly actor: ActorRef;
      readonly startedAt: number;
      readonly finishedAt: number;
      readonly result: ReconcileResult;
      /** The history commit of this revision (null when it could not be committed). */
      readonly commit?: string | null;
    }
  | {
      readonly type: 'source_invalid';
      readonly revision: string;
      readonly error: PlainError & { readonly line?: number };
      /** Set when this answers a reconcile request. */
      readonly requestId?: string;
    }
  /** config.ini changed to a revision that is not run again: the last applied one, or one that failed. */
  | { readonly type: 'skipped'; readonly revision: string; readonly reason: 'applied' | 'failed'; readonly commit?: string | null }
  /** A rollback-policy target failed: main restores config.ini to `text` if the file is still `failedRevision`. */
  | { readonly type: 'rollback_config'; readonly failedRevision: string; readonly toRevision: string; readonly toCommit?: string; readonly text: string }
  /** config.ini holds sensitive values typed in plain text: main seals them (the worker does not commit such a revision). */
  | { readonly type: 'seal_needed'; readonly revision: string }
  | { readonly type: 'history'; readonly status: HistoryStatus }
  | { readonly type: 'stopped' };
