/** Authors announced for revisions about to be written, by another process (the CLI) or confhub's own store, in real SQLite. */
import type { Database } from 'better-sqlite3';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { createAnnouncements, MAX_ANNOUNCEMENTS } from '../../src/sync/announcements.js';
import { createManualClock } from '../support/manual-clock.js';

const logger = pino({ level: 'silent' });
const cli = { actor: { type: 'system', id: 'cli' }, source: 'cli' } as const;
const api = { actor: { type: 'api', id: 'key:0123456789ab' }, source: 'api' } as const;
let db: Database | undefined;
afterEach(() => db?.close());

function setup() {
  db = openDatabase({ path: ':memory:' });
  const clock = createManualClock({ startAt: Date.parse('2026-03-01T12:00:00Z') });
  const rows = (): string[] =>
    db!
      .prepare<[], { revision: string }>('SELECT revision FROM announcements ORDER BY at, revision')
      .all()
      .map((r) => r.revision);
  return { announcements: createAnnouncements({ db, logger, clock }), clock, rows };
}

describe('announced authors', () => {
  it('when a revision is announced, then its author is taken once; an announcement ten minutes old is no longer', async () => {
    const { announcements, clock } = setup();
    announcements.record({ revision: 'r1', ...cli, rollbackOf: 'c0' });
    expect(announcements.take('r1')).toEqual({ actor: { type: 'system', id: 'cli' }, source: 'cli', rollbackOf: 'c0' });
    expect(announcements.take('r1')).toBeUndefined();
    announcements.record({ revision: 'r2', ...cli });
    await clock.advance(10 * 60_000 + 1);
    expect(announcements.take('r2')).toBeUndefined();
  });

  it('when announcements are never taken (no confhub runs, or the revision was superseded first), then recording drops those past their age, and keeps at most the newest few', async () => {
    const { announcements, clock, rows } = setup();
    announcements.record({ revision: 'old-1', ...cli });
    announcements.record({ revision: 'old-2', ...cli });
    await clock.advance(10 * 60_000 + 1);
    announcements.record({ revision: 'new-1', ...cli });
    expect(rows()).toEqual(['new-1']);

    for (let i = 0; i < MAX_ANNOUNCEMENTS + 5; i++) {
      await clock.advance(1);
      announcements.record({ revision: `burst-${String(i).padStart(4, '0')}`, ...cli });
    }
    const kept = rows();
    expect(kept).toHaveLength(MAX_ANNOUNCEMENTS);
    expect(kept[0]).toBe('burst-0005');
    expect(kept.at(-1)).toBe(`burst-${String(MAX_ANNOUNCEMENTS + 4).padStart(4, '0')}`);
    // The newest is still taken.
    expect(announcements.take(kept.at(-1)!)).toMatchObject({ source: 'cli' });
  });

  it("when confhub's own write is announced, then it is kept past any age until the worker used it, with the own announcements older than it; another process's stay", async () => {
    const { announcements, clock, rows } = setup();
    for (const revision of ['own-1', 'cli-1', 'own-2', 'own-3']) {
      if (revision.startsWith('own')) announcements.recordOwn({ revision, ...api });
      else announcements.record({ revision, ...cli });
      await clock.advance(1);
    }
    announcements.used('own-2');
    expect(rows()).toEqual(['cli-1', 'own-3']);

    // Killed before the worker committed own-3: a start an hour later still names its author.
    await clock.advance(60 * 60_000);
    announcements.record({ revision: 'cli-2', ...cli });
    expect(rows()).toEqual(['own-3', 'cli-2']);
    expect(announcements.take('own-3')).toEqual({ actor: { type: 'api', id: 'key:0123456789ab' }, source: 'api' });
    expect(announcements.take('own-3')).toBeUndefined();
  });

  it('when the author of an own announcement is taken, then the own announcements older than it go too', async () => {
    const { announcements, clock, rows } = setup();
    for (const revision of ['own-1', 'own-2', 'own-3']) {
      announcements.recordOwn({ revision, ...api });
      await clock.advance(1);
    }
    expect(announcements.take('own-2')).toMatchObject({ source: 'api' });
    expect(rows()).toEqual(['own-3']);
  });
});
