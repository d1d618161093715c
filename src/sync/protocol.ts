/**
 * Messages between the main thread and the sync worker: plain data only ({type, ...} unions),
 * because class instances and custom fields do not survive postMessage. Errors travel as
 * PlainError.
 */
import type { PlainError } from '../core/errors.js';
import type { PushStatus } from '../history/push.js';
import type { ActorRef, RevisionSource } from '../core/actor.js';
import type { FileOnDisk, ReconcileResult, RunSource } from '../targets/outcome.js';
import type { HistoryPushConfig } from '../history/push.js';
import type { ResolveSettings } from '../settings/resolve.js';
import type { SyncConfig } from '../targets/target-spec.js';

export interface WorkerInit {
  readonly configPath: string;
  readonly dataDir: string;
  readonly configDir: string;
  readonly logLevel: string;
  readonly logFormat: 'json' | 'pretty';
  /** The master keys (current first, then retired ones) that open sealed values. */
  readonly masterKeys: readonly Uint8Array[];
  /** The git dir of the history repository. */
  readonly historyDir: string;
  /** Targets and [sync] of system.ini, parsed once by main (environment overrides applied). */
  readonly sync: SyncConfig;
  /** How config.ini's values are resolved ([confhub] of system.ini, CONFHUB_ENVIRONMENT). */
  readonly resolve: ResolveSettings;
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
  | {
      readonly type: 'expect';
      readonly revision: string;
      readonly actor: ActorRef;
      readonly source: RevisionSource;
      readonly rollbackOf?: string;
      readonly template?: string;
    }
  | { readonly type: 'reconcile'; readonly requestId: string; readonly force: boolean; readonly actor?: ActorRef }
  /** The answer to `author_needed`: who another process said wrote the revision, if anyone did. */
  | {
      readonly type: 'author';
      readonly revision: string;
      readonly author: { readonly actor: ActorRef; readonly source: RevisionSource; readonly rollbackOf?: string; readonly template?: string } | null;
    }
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
  /**
   * One lane finished a revision (or retried a reload): its targets' state, before the other lanes
   * are done. A retry is reported only this way: it is not a run of its revision.
   */
  | {
      readonly type: 'lane';
      readonly lane: string;
      readonly source: RunSource;
      readonly startedAt: number;
      readonly finishedAt: number;
      /** Only this lane's targets. */
      readonly result: ReconcileResult;
      readonly commit?: string | null;
    }
  /** What the targets' files on disk are now: sent once a lane wrote them (before reloading) or put them back. */
  | { readonly type: 'files'; readonly files: readonly FileOnDisk[] }
  /** A new revision is recorded: the keys it changed (`section.key`), never values. */
  | { readonly type: 'keys_changed'; readonly revision: string; readonly actor: ActorRef; readonly source: RevisionSource; readonly keys: readonly string[] }
  /** config.ini was read and is valid (it goes down the lanes now, or is skipped): an earlier invalid save is over. */
  | { readonly type: 'accepted'; readonly revision: string }
  /** Nobody in this process announced this revision: did another process (the CLI) write it? */
  | { readonly type: 'author_needed'; readonly revision: string }
  /** The revision is committed with the author main announced in memory: main's copy on disk is done with. */
  | { readonly type: 'author_used'; readonly revision: string }
  /** The first revision's files are on disk on every lane (reloads may still run): confhub is ready. */
  | { readonly type: 'rendered'; readonly revision: string }
  | {
      readonly type: 'source_invalid';
      readonly revision: string;
      readonly error: PlainError & { readonly line?: number };
      /** Set when this answers a reconcile request. */
      readonly requestId?: string;
    }
  /**
   * config.ini changed to a revision that is not run again: the last applied one, or one that
   * failed. Sent once its commit is known (after `accepted` for the same read).
   */
  | { readonly type: 'skipped'; readonly revision: string; readonly reason: 'applied' | 'failed'; readonly commit?: string | null }
  /** A rollback-policy target failed: main restores config.ini to `text` if the file is still `failedRevision`. */
  | { readonly type: 'rollback_config'; readonly failedRevision: string; readonly toRevision: string; readonly toCommit?: string; readonly text: string }
  /** config.ini holds sensitive values typed in plain text: main seals them (the worker does not commit such a revision). */
  | { readonly type: 'seal_needed'; readonly revision: string }
  | { readonly type: 'history'; readonly status: HistoryStatus }
  /** Log lines the worker could not write to stdout since its last report (main counts them in /metrics). */
  | { readonly type: 'log_dropped'; readonly lines: number }
  | { readonly type: 'stopped' };
