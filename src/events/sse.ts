/**
 * The Server-Sent Events stream of the event log (`id:` is the log id, `event:` its type).
 *
 * A client is fed from a cursor into the log, never from a queue of its own: while its socket
 * buffer is over `maxBufferedBytes` nothing more is written; once it drains, the stream goes on
 * from the log where it stopped. So a slow client costs no memory, and a client that stopped
 * reading is dropped after `stallMs` — it reconnects with Last-Event-ID and misses nothing the log
 * still holds (older than that: an explicit `reset` event).
 *
 * A first connection resumes with `since` (the route's `?since=`): EventSource cannot set
 * Last-Event-ID itself, so a page that followed the WebSocket (`rev`) switches over this way. The
 * header wins when both are given: EventSource keeps the URL and sends the header on reconnects,
 * and the header is newer.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import type { AnyEvent } from './event-types.js';
import type { EventLog } from './event-log.js';

export const HEARTBEAT_MS = 15_000;
export const DEFAULT_MAX_BUFFERED_BYTES = 256 * 1024;
export const DEFAULT_STALL_MS = 30_000;
const PAGE = 200;

export interface EventStreamOptions {
  log: EventLog;
  req: IncomingMessage;
  res: ServerResponse;
  clock?: Clock;
  heartbeatMs?: number;
  /** Above this many bytes waiting in the socket buffer, the stream pauses on its cursor. */
  maxBufferedBytes?: number;
  /** A client paused this long without draining is dropped. */
  stallMs?: number;
  /** Whether the key the stream was opened with is still the API key, looked at on each heartbeat: a rotated key ends it. */
  stillAuthorized?: () => boolean;
  /** Resume after this event id when the request has no Last-Event-ID (`?since=`, validated by the route). */
  since?: number;
}

/** The `data:` of an event: its fields, with the type and an ISO time as the stream always sent them. */
export function eventPayload(event: AnyEvent): string {
  return JSON.stringify({ type: event.type, at: new Date(event.at).toISOString(), ...event.data });
}

function frame(event: AnyEvent): string {
  return `id: ${event.id}\nevent: ${event.type}\ndata: ${eventPayload(event)}\n\n`;
}

/** Last-Event-ID as sent by EventSource on reconnect; undefined when absent or not an id. */
function lastEventId(req: IncomingMessage): number | undefined {
  const raw = req.headers['last-event-id'];
  if (typeof raw !== 'string' || !/^\d{1,15}$/.test(raw.trim())) return undefined;
  return Number(raw.trim());
}

export function streamEvents({
  log,
  req,
  res,
  clock = systemClock,
  heartbeatMs = HEARTBEAT_MS,
  maxBufferedBytes = DEFAULT_MAX_BUFFERED_BYTES,
  stallMs = DEFAULT_STALL_MS,
  stillAuthorized,
  since,
}: EventStreamOptions): void {
  // A client gone before the stream began would never emit close again: nothing to subscribe.
  if (res.closed || res.destroyed) return;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    // Reverse proxies must pass events through as they come.
    'x-accel-buffering': 'no',
  });
  const resumeFrom = lastEventId(req) ?? since;
  /** The id of the last event written; the stream goes on from here. */
  let cursor = resumeFrom ?? log.lastId();
  // A new client learns its place in the log at once: an `id:` without data sets EventSource's
  // Last-Event-ID, so a reconnect before the first event still resumes from here.
  res.write(resumeFrom === undefined ? `retry: 3000\nid: ${cursor}\n: connected\n\n` : 'retry: 3000\n: connected\n\n');
  let closed = false;
  let paused = false;
  let heartbeat: TimerHandle | undefined;
  let stall: TimerHandle | undefined;

  const full = (): boolean => res.writableLength > maxBufferedBytes;

  function close(): void {
    if (closed) return;
    closed = true;
    unsubscribe();
    clock.clearTimeout(heartbeat);
    clock.clearTimeout(stall);
    res.off('drain', onDrain);
  }

  function drop(): void {
    close();
    // The client resumes with Last-Event-ID; its unread bytes are not worth keeping.
    res.destroy();
  }

  function pause(): void {
    if (paused) return;
    paused = true;
    stall = clock.setTimeout(drop, stallMs);
    stall.unref();
  }

  function onDrain(): void {
    if (closed || !paused) return;
    paused = false;
    clock.clearTimeout(stall);
    catchUp();
  }

  /** Writes from the log after the cursor until caught up, or until the socket buffer is full. */
  function catchUp(): void {
    while (!closed) {
      const { events, reset } = log.read({ after: cursor, limit: PAGE });
      if (reset) {
        // Everything after the cursor is gone: say so once, then follow from the newest.
        cursor = log.lastId();
        res.write(`id: ${cursor}\nevent: reset\ndata: ${JSON.stringify({ lastId: cursor })}\n\n`);
        continue;
      }
      for (const event of events) {
        if (full()) {
          pause();
          return;
        }
        res.write(frame(event));
        cursor = event.id;
      }
      if (events.length < PAGE) return;
    }
  }

  function onEvent(event: AnyEvent): void {
    if (closed || paused || event.id <= cursor) return;
    if (event.id !== cursor + 1) {
      // An event was skipped (it could not be stored, or arrived out of order): read the log.
      catchUp();
      return;
    }
    if (full()) {
      pause();
      return;
    }
    res.write(frame(event));
    cursor = event.id;
  }

  function beat(): void {
    if (closed) return;
    if (stillAuthorized && !stillAuthorized()) {
      // The client reconnects and meets the key check: with the new key it resumes by id.
      close();
      res.end();
      return;
    }
    if (!paused) res.write(': ping\n\n');
    heartbeat = clock.setTimeout(beat, heartbeatMs);
    heartbeat.unref();
  }

  const unsubscribe = log.subscribe(onEvent);
  res.on('drain', onDrain);
  // The response closes when the client goes away (or is dropped); the request may end before that.
  res.on('close', close);
  if (resumeFrom !== undefined) catchUp();
  heartbeat = clock.setTimeout(beat, heartbeatMs);
  heartbeat.unref();
}
