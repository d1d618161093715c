/**
 * Who made a change, and what kind of change made a revision: the nouns the settings store, the
 * audit log, the history, the sync worker and the event log share.
 */
export type ActorType = 'api' | 'system' | 'file';

/** The part of an actor that crosses threads and is written into the history: type and id. */
export interface ActorRef {
  readonly type: ActorType;
  /** API key fingerprint for `api`, a component name for `system`, `file` for hand edits. */
  readonly id: string;
}

/** An actor as the API knows it: the request's origin is kept for the audit log only. */
export interface Actor extends ActorRef {
  readonly remoteAddress?: string | undefined;
  readonly userAgent?: string | undefined;
  readonly requestId?: string | undefined;
}

export const ACTOR_TYPES: ReadonlySet<string> = new Set<ActorType>(['api', 'system', 'file']);

export const FILE_ACTOR: ActorRef = Object.freeze({ type: 'file', id: 'file' });

export function actorRef(actor: ActorRef): ActorRef {
  return { type: actor.type, id: actor.id };
}

/** What made a revision of config.ini, as the history records it. */
export const REVISION_SOURCES = [
  'api',
  'file',
  'rollback',
  'auto_rollback',
  'first_boot',
  'seal',
  'startup',
  'cli',
  'rekey',
  'upgrade',
  'promote',
  'template',
] as const;
export type RevisionSource = (typeof REVISION_SOURCES)[number];
