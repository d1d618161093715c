/**
 * Who wrote a revision of config.ini, named in SQLite just before the file is replaced, for the
 * worker to ask main when it finds a revision nobody told it about. Without this the history
 * would record those writes as hand edits (`file:file`, or `startup` at a start).
 *
 * - Another process (the CLI's rollback and key rotation): its announcement is taken by the
 *   worker of a running confhub, or by the next start's; it ages out after MAX_AGE_MS.
 * - confhub's own store (`own`): the worker is told in memory as well, so this copy only matters
 *   when confhub is killed after the rename and before the worker committed the revision. It is
 *   kept until the worker says it committed the revision (`used`), however long the restart takes.
 */
import type { Database } from 'better-sqlite3';
import type { Logger } from 'pino';
import { ACTOR_TYPES, REVISION_SOURCES, type ActorRef, type RevisionSource } from '../core/actor.js';
import { systemClock, type Clock } from '../core/clock.js';

/** An announcement older than this is for a revision the worker read long ago (or never). */
const MAX_AGE_MS = 10 * 60_000;
/**
 * Announcements kept at most. Most are never taken when nothing asks for them (confhub not
 * running, or the revision superseded before the worker read it), so recording drops old ones.
 */
export const MAX_ANNOUNCEMENTS = 256;

export interface AnnouncedAuthor {
  readonly actor: ActorRef;
  readonly source: RevisionSource;
  readonly rollbackOf?: string;
  readonly template?: string;
}

export interface AnnouncementsDeps {
  db: Database;
  logger: Logger;
  /** Stamps announcements and ages them out; default the system clock. */
  clock?: Clock;
}

interface AnnouncementRow {
  revision: string;
  actorType: string;
  actorId: string;
  source: string;
  rollbackOf: string | null;
  template: string | null;
  at: number;
  own: 0 | 1;
}

export function createAnnouncements({ db, logger, clock = systemClock }: AnnouncementsDeps) {
  const log = logger.child({ module: 'announcements' });
  const now = (): number => clock.now();
  const upsert = db.prepare<[AnnouncementRow]>(
    `INSERT INTO announcements (revision, actor_type, actor_id, source, rollback_of, template, at, own) VALUES (@revision, @actorType, @actorId, @source, @rollbackOf, @template, @at, @own)
     ON CONFLICT (revision) DO UPDATE SET actor_type = excluded.actor_type, actor_id = excluded.actor_id, source = excluded.source, rollback_of = excluded.rollback_of, template = excluded.template, at = excluded.at, own = excluded.own`,
  );
  const take = db.prepare<
    [string, number],
    { actor_type: string; actor_id: string; source: string; rollback_of: string | null; template: string | null; at: number; own: 0 | 1 }
  >('DELETE FROM announcements WHERE revision = ? AND (own = 1 OR at >= ?) RETURNING actor_type, actor_id, source, rollback_of, template, at, own');
  const prune = db.prepare<[number]>('DELETE FROM announcements WHERE own = 0 AND at < ?');
  // Own announcements older than one the worker used were for revisions superseded before it read them.
  const forget = db.prepare<[string, string]>(
    'DELETE FROM announcements WHERE own = 1 AND (revision = ? OR at < (SELECT at FROM announcements WHERE revision = ? AND own = 1))',
  );
  const forgetOlder = db.prepare<[number]>('DELETE FROM announcements WHERE own = 1 AND at < ?');
  const cap = db.prepare<[number]>('DELETE FROM announcements WHERE rowid NOT IN (SELECT rowid FROM announcements ORDER BY at DESC, rowid DESC LIMIT ?)');
  const recordPruned = db.transaction((row: AnnouncementRow) => {
    upsert.run(row);
    prune.run(row.at - MAX_AGE_MS);
    cap.run(MAX_ANNOUNCEMENTS);
  });
  const rowOf = (input: { revision: string } & AnnouncedAuthor, { own }: { own: boolean }): AnnouncementRow => ({
    revision: input.revision,
    actorType: input.actor.type,
    actorId: input.actor.id,
    source: input.source,
    rollbackOf: input.rollbackOf ?? null,
    template: input.template ?? null,
    at: now(),
    own: own ? 1 : 0,
  });

  return {
    /** Before the file is replaced (the writer is another process). */
    record(input: { revision: string } & AnnouncedAuthor): void {
      recordPruned(rowOf(input, { own: false }));
    },

    /** Before confhub's own store replaces the file: kept until the worker committed the revision. */
    recordOwn(input: { revision: string } & AnnouncedAuthor): void {
      recordPruned(rowOf(input, { own: true }));
    },

    /** The worker committed `revision` with the author it was told in memory: the copy here is done with. */
    used(revision: string): void {
      try {
        forget.run(revision, revision);
      } catch (error) {
        log.error({ err: error, revision }, 'forgetting the announced author of a committed revision failed');
      }
    },

    /** The author of a revision, used once; undefined when nobody announced it (a hand edit). */
    take(revision: string): AnnouncedAuthor | undefined {
      try {
        const at = now();
        prune.run(at - MAX_AGE_MS);
        const row = take.get(revision, at - MAX_AGE_MS);
        if (row?.own === 1) forgetOlder.run(row.at);
        if (!row || !ACTOR_TYPES.has(row.actor_type) || !(REVISION_SOURCES as readonly string[]).includes(row.source)) return undefined;
        return {
          actor: { type: row.actor_type as ActorRef['type'], id: row.actor_id },
          source: row.source as RevisionSource,
          ...(row.rollback_of ? { rollbackOf: row.rollback_of } : {}),
          ...(row.template ? { template: row.template } : {}),
        };
      } catch (error) {
        log.error({ err: error, revision }, 'reading the announced author of a revision failed');
        return undefined;
      }
    },
  };
}

export type Announcements = ReturnType<typeof createAnnouncements>;
