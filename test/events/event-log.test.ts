import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { createEventLog } from '../../src/events/event-log.js';
import { tempDirs } from '../support/temp-dirs.js';

const newDir = tempDirs('confhub-events-');
const logger = pino({ level: 'silent' });
const change = (n: number) => ({ revision: `r${n}`, actor: { type: 'api' as const, id: 'key:1' }, source: 'api' as const, keys: [`gitea.k${n}`] });

describe('event log', () => {
  it('when the database is closed and opened again, then ids go on from the last one and the old events are still read', () => {
    const path = join(newDir(), 'confhub.db');
    const first = openDatabase({ path });
    const before = createEventLog({ db: first, logger });
    expect(before.publish('settings.changed', change(1))?.id).toBe(1);
    expect(before.publish('settings.changed', change(2))?.id).toBe(2);
    first.close();

    const second = openDatabase({ path });
    const after = createEventLog({ db: second, logger });
    expect(after.lastId()).toBe(2);
    expect(after.publish('worker.state', { state: 'ready', restarts: 0 })?.id).toBe(3);
    const { events, reset } = after.read({ after: 1, limit: 10 });
    expect(reset).toBe(false);
    expect(events.map((e) => [e.id, e.type])).toEqual([
      [2, 'settings.changed'],
      [3, 'worker.state'],
    ]);
    expect(events[0]!.data).toEqual(change(2));
    second.close();
  });

  it('when retention pruned events a consumer has not seen, then its read says reset; a consumer that is up to date is not reset', () => {
    const db = openDatabase({ path: ':memory:' });
    const log = createEventLog({ db, logger, retain: 10 });
    for (let n = 1; n <= 300; n++) log.publish('settings.changed', change(n));
    // Pruned once, at the 256th publish: ids up to 246 are gone.
    expect(log.read({ after: 100, limit: 5 })).toMatchObject({ reset: true });
    expect(log.read({ after: 246, limit: 5 })).toMatchObject({ reset: false, events: [{ id: 247 }, { id: 248 }, { id: 249 }, { id: 250 }, { id: 251 }] });
    expect(log.read({ after: 300, limit: 5 })).toEqual({ reset: false, events: [] });
    db.close();
  });

  it('when confhub restarts before retention runs again, then the start prunes: the log stays bounded however often it restarts', () => {
    const path = join(newDir(), 'confhub.db');
    for (let start = 0; start < 6; start++) {
      const db = openDatabase({ path });
      const log = createEventLog({ db, logger, retain: 5 });
      for (let n = 0; n < 4; n++) log.publish('settings.changed', change(start * 4 + n));
      db.close();
    }
    const db = openDatabase({ path });
    const log = createEventLog({ db, logger, retain: 5 });
    const { events } = log.read({ after: 18, limit: 100 });
    expect(events.map((e) => e.id)).toEqual([20, 21, 22, 23, 24]);
    expect(db.prepare('SELECT COUNT(*) AS n FROM events').get()).toEqual({ n: 5 });
    db.close();
  });

  it('when a consumer names an id the log never issued, or not an id, then it is told to reset', () => {
    const db = openDatabase({ path: ':memory:' });
    const log = createEventLog({ db, logger });
    log.publish('settings.changed', change(1));
    expect(log.read({ after: 7, limit: 5 }).reset).toBe(true);
    expect(log.read({ after: -1, limit: 5 }).reset).toBe(true);
    expect(log.read({ after: 0.5, limit: 5 }).reset).toBe(true);
    expect(log.read({ after: 0, limit: 5 })).toMatchObject({ reset: false, events: [{ id: 1 }] });
    db.close();
  });

  it('when a subscriber throws, then the event is still stored and the other subscribers get it', () => {
    const db = openDatabase({ path: ':memory:' });
    const log = createEventLog({ db, logger });
    const seen: number[] = [];
    log.subscribe(() => {
      throw new Error('broken subscriber');
    });
    const unsubscribe = log.subscribe((event) => seen.push(event.id));
    log.publish('settings.changed', change(1));
    unsubscribe();
    log.publish('settings.changed', change(2));
    expect(seen).toEqual([1]);
    expect(log.lastId()).toBe(2);
    db.close();
  });
});
