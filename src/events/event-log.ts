/**
 * The event log: one append-only log owned by the main thread and persisted in SQLite. Every
 * consumer (the SSE stream now; the WebSocket channel and the webhook outbox next) reads it by id,
 * so a consumer that was away — a dropped client, a restart of confhub — resumes where it left.
 *
 * Retention is bounded (the newest `retain` events); a consumer asking for an id the log no
 * longer holds, or one it never issued, is told to reset instead of silently missing events.
 */
import type { Database } from 'better-sqlite3';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../core/clock.js';
import type { AnyEvent, EventDataMap, EventType, LoggedEvent } from './event-types.js';

export const DEFAULT_RETAIN = 10_000;
/** Retention runs once per this many publishes, not on every insert. */
const PRUNE_EVERY = 256;

export interface EventLogDeps {
  db: Database;
  logger: Logger;
  clock?: Clock;
  /** How many of the newest events are kept. */
  retain?: number;
}

export interface ReadInput {
  /** Events with a greater id (0: from the first ever; when that one was pruned, a reset). */
  after: number;
  limit: number;
}

export interface ReadResult {
  readonly events: readonly AnyEvent[];
  /** Events after `after` were deleted by retention, or `after` was never issued: re-read state, then follow. */
  readonly reset: boolean;
}

export type EventListener = (event: AnyEvent) => void;

export interface EventLog {
  /** Appends an event and hands it to every subscriber; undefined when it could not be stored. */
  publish<T extends EventType>(type: T, data: EventDataMap[T]): LoggedEvent<T> | undefined;
  /**
   * Appends an event inside the caller's transaction (an error rolls it back with the rest) and
   * answers how to hand it to the subscribers once that transaction has committed: they must
   * never see an event the log may still lose.
   */
  stage<T extends EventType>(type: T, data: EventDataMap[T]): () => void;
  subscribe(listener: EventListener): () => void;
  read(input: ReadInput): ReadResult;
  /** The newest id issued (0 before the first event ever). */
  lastId(): number;
  subscribers(): number;
}

interface Row {
  id: number;
  type: string;
  at: number;
  data: string;
}

export function createEventLog({ db, logger, clock = systemClock, retain = DEFAULT_RETAIN }: EventLogDeps): EventLog {
  const log = logger.child({ module: 'event-log' });
  const insert = db.prepare<[string, number, string]>('INSERT INTO events (type, at, data) VALUES (?, ?, ?)');
  const after = db.prepare<[number, number], Row>('SELECT id, type, at, data FROM events WHERE id > ? ORDER BY id LIMIT ?');
  const oldest = db.prepare<[], { id: number | null }>('SELECT MIN(id) AS id FROM events');
  // AUTOINCREMENT keeps the highest id ever issued here, even when every row was pruned.
  const sequence = db.prepare<[], { seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'events'");
  const prune = db.prepare<[number]>('DELETE FROM events WHERE id <= ?');
  const listeners = new Set<EventListener>();
  let last = sequence.get()?.seq ?? 0;

  function pruneTo(newest: number): void {
    try {
      prune.run(newest - retain);
    } catch (error) {
      log.error({ err: error }, 'pruning the event log failed');
    }
  }

  // Also at every start: a quiet installation may restart many times between two prunes.
  pruneTo(last);

  function append(type: string, at: number, data: unknown): number {
    return Number(insert.run(type, at, JSON.stringify(data)).lastInsertRowid);
  }

  /** The event is stored (and committed): it is the newest, and every subscriber gets it. */
  function announce(event: AnyEvent): void {
    last = Math.max(last, event.id);
    if (event.id % PRUNE_EVERY === 0) pruneTo(event.id);
    for (const listener of [...listeners]) {
      try {
        listener(event);
      } catch (error) {
        log.error({ err: error, type: event.type }, 'an event subscriber failed');
      }
    }
  }

  function toEvent(row: Row): AnyEvent {
    return { id: row.id, type: row.type, at: row.at, data: JSON.parse(row.data) } as AnyEvent;
  }

  return {
    publish(type, data) {
      let id: number;
      const at = clock.now();
      try {
        id = append(type, at, data);
      } catch (error) {
        log.error({ err: error, type }, 'storing an event failed; it is not published');
        return undefined;
      }
      const event = { id, type, at, data } as LoggedEvent<typeof type>;
      announce(event as AnyEvent);
      return event;
    },

    stage(type, data) {
      const at = clock.now();
      const id = append(type, at, data);
      return () => announce({ id, type, at, data } as AnyEvent);
    },

    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    read({ after: id, limit }) {
      if (!Number.isSafeInteger(id) || id < 0 || id > last) return { events: [], reset: true };
      const rows = after.all(id, limit);
      const first = rows[0]?.id ?? oldest.get()?.id ?? last + 1;
      // The next event this consumer should see is id + 1; anything between was pruned.
      const reset = first > id + 1 && id < last;
      return { events: rows.map(toEvent), reset };
    },

    lastId: () => last,
    subscribers: () => listeners.size,
  };
}
