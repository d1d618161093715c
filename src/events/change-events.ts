/**
 * The events of a new revision of config.ini: `settings.changed` for keys outside `[env:…]`,
 * `env.changed` for environment variables. An API write is announced by the settings store when
 * it replaces the file; a hand edit (or a write of another process) by the worker once it
 * records the revision, since only it knows what the file held before.
 */
import type { ActorRef, RevisionSource } from '../core/actor.js';
import { splitChangedKeys } from '../settings/env-sections.js';
import type { EventLog } from './event-log.js';

export interface RevisionChanges {
  readonly revision: string;
  readonly actor: ActorRef;
  readonly source: RevisionSource;
  /** `section.key` of every key set, changed or removed. */
  readonly keys: readonly string[];
}

/** Revisions the settings store did not write in this process: the worker announces them. */
export const ANNOUNCED_BY_WORKER: ReadonlySet<RevisionSource> = new Set<RevisionSource>(['file', 'startup', 'cli', 'rekey']);

export function publishChanges(events: EventLog, { revision, actor, source, keys: changed }: RevisionChanges): void {
  const { settings: keys, variables, scopes } = splitChangedKeys(changed);
  const who = { type: actor.type, id: actor.id };
  // Every revision is announced: one that changed no key (comments, layout) as a settings change.
  if (keys.length > 0 || variables.length === 0) events.publish('settings.changed', { revision, actor: who, source, keys });
  if (variables.length > 0) events.publish('env.changed', { revision, actor: who, source, variables, scopes });
}
