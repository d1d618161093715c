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
  /** An accepted write changed config.ini: which keys (`section.key`) outside `[env:…]`, by whom; never values. */
  'settings.changed': {
    readonly revision: string;
    readonly actor: ActorRef;
    readonly source: RevisionSource;
    readonly keys: readonly string[];
  };
  /** An accepted write changed environment variables: which (`scope.NAME`), in which scopes, by whom; never values. */
  'env.changed': {
    readonly revision: string;
    readonly actor: ActorRef;
    readonly source: RevisionSource;
    readonly variables: readonly string[];
    readonly scopes: readonly string[];
  };
  'sync.applied': SyncRunData;
  'sync.failed': SyncRunData;
  'sync.rolled_back': SyncRunData;
  /**
   * An automatic rollback could not restore config.ini (it could not be written, the revision to
   * restore does not validate or open any more…): config.ini still holds the revision that failed.
   */
  'sync.rollback_failed': { readonly failedRevision: string; readonly toRevision: string; readonly error: PlainError };
  /** A target's service was reloaded (restarted, signalled, recreated…) for a revision and verified. */
  'service.reloaded': { readonly revision: string; readonly target: string; readonly reload: string };
  /** A target's service did not come back healthy, or could not be reloaded, for a revision. */
  'service.unhealthy': { readonly revision: string; readonly target: string; readonly code: string; readonly reason: string };
  /** config.ini cannot be used (syntax, validation, a secret that does not open); the last good one stays. */
  'source.invalid': { readonly revision: string; readonly code: string; readonly reason: string; readonly line?: number };
  /** The sync worker thread became ready, or stopped (on shutdown, or to be restarted after a crash). */
  'worker.state': { readonly state: 'ready' | 'stopped'; readonly restarts: number };
  /** A webhook endpoint was turned off: it answered 410 Gone, or kept failing for the whole retry window. */
  'webhook.disabled': { readonly webhook: string; readonly url: string; readonly reason: string };
}

/** The type of a sync run's event, by the run's outcome. */
export type SyncEventType = 'sync.applied' | 'sync.failed' | 'sync.rolled_back';

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

/** Every type the log holds, for the subscriptions of webhooks (checked by the type below). */
export const EVENT_TYPES = [
  'settings.changed',
  'env.changed',
  'sync.applied',
  'sync.failed',
  'sync.rolled_back',
  'sync.rollback_failed',
  'service.reloaded',
  'service.unhealthy',
  'source.invalid',
  'worker.state',
  'webhook.disabled',
] as const satisfies readonly EventType[];

// Fails to compile when a type is added to EventDataMap and not to the list.
const _everyType: Record<EventType, true> = Object.fromEntries(EVENT_TYPES.map((type) => [type, true])) as Record<(typeof EVENT_TYPES)[number], true>;
void _everyType;
