/**
 * Revisions written to config.ini by another process (the CLI's rollback and key rotation) while
 * confhub runs: that process names the author in SQLite just before it replaces the file, and the
 * worker, finding a revision nobody in this process announced, asks main for it. Without this the
 * history would record those writes as hand edits.
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
  at: number;
}

export function createAnnouncements({ db, logger, clock = systemClock }: AnnouncementsDeps) {
  const log = logger.child({ module: 'announcements' });
  const now = (): number => clock.now();
  const upsert = db.prepare<[AnnouncementRow]>(
    `INSERT INTO announcements (revision, actor_type, actor_id, source, rollback_of, at) VALUES (@revision, @actorType, @actorId, @source, @rollbackOf, @at)
     ON CONFLICT (revision) DO UPDATE SET actor_type = excluded.actor_type, actor_id = excluded.actor_id, source = excluded.source, rollback_of = excluded.rollback_of, at = excluded.at`,
  );
  const take = db.prepare<[string, number], { actor_type: string; actor_id: string; source: string; rollback_of: string | null }>(
    'DELETE FROM announcements WHERE revision = ? AND at >= ? RETURNING actor_type, actor_id, source, rollback_of',
  );
  const prune = db.prepare<[number]>('DELETE FROM announcements WHERE at < ?');
  const cap = db.prepare<[number]>('DELETE FROM announcements WHERE rowid NOT IN (SELECT rowid FROM announcements ORDER BY at DESC, rowid DESC LIMIT ?)');
  const recordPruned = db.transaction((row: AnnouncementRow) => {
    upsert.run(row);
    prune.run(row.at - MAX_AGE_MS);
    cap.run(MAX_ANNOUNCEMENTS);
  });

  return {
    /** Before the file is replaced (the writer is another process). */
    record(input: { revision: string } & AnnouncedAuthor): void {
      recordPruned({
        revision: input.revision,
        actorType: input.actor.type,
        actorId: input.actor.id,
        source: input.source,
        rollbackOf: input.rollbackOf ?? null,
        at: now(),
      });
    },

    /** The author of a revision, used once; undefined when nobody announced it (a hand edit). */
    take(revision: string): AnnouncedAuthor | undefined {
      try {
        const at = now();
        prune.run(at - MAX_AGE_MS);
        const row = take.get(revision, at - MAX_AGE_MS);
        if (!row || !ACTOR_TYPES.has(row.actor_type) || !(REVISION_SOURCES as readonly string[]).includes(row.source)) return undefined;
        return {
          actor: { type: row.actor_type as ActorRef['type'], id: row.actor_id },
          source: row.source as RevisionSource,
          ...(row.rollback_of ? { rollbackOf: row.rollback_of } : {}),
        };
      } catch (error) {
        log.error({ err: error, revision }, 'reading the announced author of a revision failed');
        return undefined;
      }
    },
  };
}

export type Announcements = ReturnType<typeof createAnnouncements>;
