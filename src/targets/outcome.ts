/**
 * What applying a revision did to each target, and to the revision as a whole: reported by the
 * worker, recorded by main, shown by /sync/status, waited writes, the CLI and the event log.
 */
import type { PlainError } from '../core/errors.js';

/**
 * `pending_reload`: the file is written, its service could not be reached; `pending_write`: the
 * file could not be written because its disk is full. Both are retried with backoff.
 */
export type TargetState = 'in_sync' | 'pending_reload' | 'pending_write' | 'failed' | 'rolled_back';

/** How a file was replaced: a rename over it, or its bytes rewritten in place (inode kept). */
export type UsedWriteMode = 'rename' | 'inplace';

export interface TargetOutcome {
  readonly target: string;
  readonly changed: boolean;
  readonly writeMode: UsedWriteMode | null;
  readonly reloaded: boolean;
  readonly healthy: boolean | null;
  /** From the start of the run until this target's file was written and its service verified. */
  readonly durationMs: number;
  readonly error: PlainError | null;
  readonly state: TargetState;
}

/**
 * A target's file as it is on disk now: the revision it was rendered from (null when the worker
 * cannot tell: files put back, or left from before this process) and the sha256 of its bytes
 * (null: there is no file). Told before any reload, so a service that pulls its files when it is
 * restarted gets these.
 */
export interface FileOnDisk {
  readonly target: string;
  readonly revision: string | null;
  readonly sha256: string | null;
}

export type RevisionOutcome = 'applied' | 'unchanged' | 'failed' | 'rolled_back';

export interface ReconcileResult {
  readonly revision: string;
  readonly outcome: RevisionOutcome;
  readonly targets: readonly TargetOutcome[];
  /** A rollback-policy target failed: config.ini should go back to the last applied revision. */
  readonly rollbackConfig: boolean;
  /** Targets whose lane went on to a newer revision before running this one (they are not in `targets`). */
  readonly superseded?: readonly string[];
  /** Set when the run as a whole failed (not one target), e.g. an unexpected I/O error. */
  readonly error?: PlainError;
}

/** What started a run: a change of config.ini, a reload request, a retry of pending reloads, the start, `confhub once`. */
export type RunSource = 'change' | 'reload' | 'retry' | 'startup' | 'once';
