/**
 * The events a webhook delivers, as the event log stores them. The types are structural and local:
 * notify/ formats what the log holds without importing the log, so a webhook payload can be built
 * from a row read back from SQLite as well as from a live event.
 *
 * Events are thin: keys, names and outcomes, never a secret value.
 */

export type NotifyActorType = 'api' | 'system' | 'file';

export interface NotifyActor {
  readonly type: NotifyActorType;
  /** API key fingerprint (`key:…`) for `api`, a component name for `system`, `file` for hand edits. */
  readonly id: string;
}

export interface NotifyError {
  readonly code: string;
  readonly message: string;
  readonly details?: unknown;
}

export interface NotifyTargetOutcome {
  readonly target: string;
  readonly changed: boolean;
  readonly writeMode: string | null;
  readonly reloaded: boolean;
  readonly healthy: boolean | null;
  readonly durationMs: number;
  readonly error: NotifyError | null;
  readonly state: string;
}

export interface NotifySyncRunData {
  readonly revision: string;
  readonly source: string;
  readonly actor: NotifyActor;
  readonly targets: readonly NotifyTargetOutcome[];
  readonly error?: NotifyError;
}

export interface NotifyEventDataMap {
  'settings.changed': { readonly revision: string; readonly actor: NotifyActor; readonly source: string; readonly keys: readonly string[] };
  'env.changed': {
    readonly revision: string;
    readonly actor: NotifyActor;
    readonly source: string;
    readonly variables: readonly string[];
    readonly scopes: readonly string[];
  };
  'sync.applied': NotifySyncRunData;
  'sync.failed': NotifySyncRunData;
  'sync.rolled_back': NotifySyncRunData;
  'sync.rollback_failed': { readonly failedRevision: string; readonly toRevision: string; readonly error: NotifyError };
  'service.reloaded': { readonly revision: string; readonly target: string; readonly reload: string };
  'service.unhealthy': { readonly revision: string; readonly target: string; readonly code: string; readonly reason: string };
  'source.invalid': { readonly revision: string; readonly code: string; readonly reason: string; readonly line?: number };
  'worker.state': { readonly state: 'ready' | 'stopped'; readonly restarts: number };
  'webhook.disabled': { readonly webhook: string; readonly url: string; readonly reason: string };
  'webhook.test': { readonly webhook: string };
}

export type NotifyEventType = keyof NotifyEventDataMap;

/**
 * One logged event as a webhook sees it. `type` and `data` stay open: a type this module does not
 * know yet (added to the log later) is still delivered, with a generic summary.
 */
export interface NotifyEvent {
  /** Monotonic log id: the idempotency key of every delivery of this event. */
  readonly id: number;
  readonly type: string;
  /** Epoch ms. */
  readonly at: number;
  readonly data: object;
}

/** A known event, discriminated by `type` (what producers build). */
export type KnownNotifyEvent = {
  [T in NotifyEventType]: { readonly id: number; readonly type: T; readonly at: number; readonly data: NotifyEventDataMap[T] };
}[NotifyEventType];
