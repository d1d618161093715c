/**
 * The events confhub publishes, by type. Events are thin: keys, revisions and outcomes, never a
 * secret value; a client that wants values reads them over REST.
 */
import type { ActorRef, RevisionSource } from '../core/actor.js';
import type { PlainError } from '../core/errors.js';
import type { RunSource, TargetOutcome } from '../targets/outcome.js';

/** A revision went through the targets (or was refused before reaching them). */
export interface SyncRunData {
  readonly revision: string;
  readonly source: RunSource;
  readonly actor: ActorRef;
  readonly targets: readonly TargetOutcome[];
  readonly error?: PlainError;
}

export interface EventDataMap {
  /** An accepted write changed config.ini: which keys (`section.key`), by whom; never values. */
  'settings.changed': {
    readonly revision: string;
    readonly actor: ActorRef;
    readonly source: RevisionSource;
    readonly keys: readonly string[];
  };
  applied: SyncRunData;
  failed: SyncRunData;
  rolled_back: SyncRunData;
  /**
   * An automatic rollback could not restore config.ini (it could not be written, the revision to
   * restore does not validate or open any more…): config.ini still holds the revision that failed.
   */
  rollback_failed: { readonly failedRevision: string; readonly toRevision: string; readonly error: PlainError };
  /** config.ini cannot be used (syntax, validation, a secret that does not open); the last good one stays. */
  source_invalid: { readonly revision: string; readonly error: PlainError & { readonly line?: number } };
  /** The sync worker thread became ready, or stopped (on shutdown, or to be restarted after a crash). */
  'worker.state': { readonly state: 'ready' | 'stopped'; readonly restarts: number };
}

export type EventType = keyof EventDataMap;

export interface LoggedEvent<T extends EventType = EventType> {
  /** Monotonic and durable: it keeps growing across restarts and is never reused. */
  readonly id: number;
  readonly type: T;
  /** Epoch ms. */
  readonly at: number;
  readonly data: EventDataMap[T];
}

/** Any event, discriminated by `type`. */
export type AnyEvent = { [T in EventType]: LoggedEvent<T> }[EventType];
