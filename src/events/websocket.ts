/**
 * The WebSocket channel of the event log (`GET /api/v1/ws`, subprotocol `confhub.v1`): what the
 * SSE stream (sse.ts) sends, for clients that want a WebSocket, with the same ids (`rev` here,
 * `id:` there), so either can resume where the other stopped.
 *
 * Browsers cannot set headers on a WebSocket, so the key travels as a subprotocol
 * (`key.<key>`, beside `confhub.v1`); the answer names `confhub.v1` only, never the key. A
 * missing or wrong key completes the handshake and closes with 4401: a browser sees close codes,
 * not the status of a refused handshake, and a client must know to stop retrying.
 *
 * Browsers cannot see ping frames either, so besides the pings that drop dead peers (every
 * `pingMs`; a peer that did not answer the previous one is terminated) each client gets a
 * `heartbeat` message every `heartbeatMs`: a client that heard nothing for twice that long knows
 * the connection is gone.
 *
 * As in sse.ts, each client is fed from a cursor into the log, never from a queue of its own:
 * while more than `maxBufferedBytes` wait in its socket, nothing more is written; once they drain,
 * it goes on from the log where it stopped. A slow client costs no memory, and one that stopped
 * reading is terminated after `stallMs`; it resumes with `?since=` and misses nothing the log
 * still holds (older than that: a `reset`).
 *
 * Clients have nothing to say: what they send is read and ignored (a frame over 1 KiB closes the
 * connection with 1009).
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { AppError } from '../core/errors.js';
import type { EventLog } from './event-log.js';
import type { AnyEvent } from './event-types.js';

export const WEBSOCKET_PROTOCOL = 'confhub.v1';
/** The subprotocol that carries the API key: `key.<key>`. */
export const KEY_PROTOCOL_PREFIX = 'key.';
export const DEFAULT_HEARTBEAT_MS = 5000;
export const DEFAULT_PING_MS = 15_000;
export const DEFAULT_MAX_BUFFERED_BYTES = 256 * 1024;
export const DEFAULT_STALL_MS = 30_000;
/** On shutdown, how long a client has to answer the close before its socket is destroyed. */
const CLOSE_GRACE_MS = 1000;
/** Clients send nothing the channel reads. */
const MAX_PAYLOAD_BYTES = 1024;
const PAGE = 200;

export const CLOSE_CODES = Object.freeze({
  /** confhub is stopping: reconnect (with backoff). */
  goingAway: 1001,
  /** A `since` that is not a non-negative integer, or another query parameter: fix the client. */
  badRequest: 4400,
  /** A missing or wrong key: stop retrying until the key is fixed. */
  unauthorized: 4401,
});

/**
 * The old apphub notification: its clients re-read the settings when it comes. Sent after the
 * events that change what they read, by event type.
 */
const LEGACY_CHANGE_TYPES: Readonly<Record<string, string>> = Object.freeze({ 'settings.changed': 'settings', 'env.changed': 'env' });

export interface WebSocketChannelOptions {
  log: EventLog;
  logger: Logger;
  clock?: Clock;
  /** Whether `key` (undefined: none presented) is the API key; counts refusals toward the failed-authentication limit. */
  authenticate(input: { req: IncomingMessage; key: string | undefined }): boolean;
  /**
   * Whether the key a client connected with is still the API key, looked at on every heartbeat
   * (no refusal is counted): a rotated key ends the connections made with the old one (4401).
   */
  stillAuthorized?(key: string | undefined): boolean;
  /** Whether the page (its `Origin`) may open the channel; refused with 403 before the handshake. */
  originAllowed(req: IncomingMessage): boolean;
  /** Application-level heartbeat, which browsers can see (they cannot see pings). */
  heartbeatMs?: number;
  /** Protocol ping; a peer that did not answer the previous one is terminated. */
  pingMs?: number;
  /** Above this many bytes waiting in a client's socket, its cursor stops. */
  maxBufferedBytes?: number;
  /** A client stopped this long without draining is terminated. */
  stallMs?: number;
}

/** One connected client, as tests and metrics see it. */
export interface WebSocketClientInfo {
  /** The id of the last event written to it (where it resumes). */
  readonly rev: number;
  /** Bytes waiting in its socket and in the WebSocket's own queue. */
  readonly bufferedAmount: number;
  /** Its cursor is stopped until its socket drains. */
  readonly paused: boolean;
  /** A ping went out that it has not answered yet. */
  readonly waitingForPong: boolean;
}

export interface WebSocketChannel {
  /** The server's `upgrade` listener for the channel's paths. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** The authenticated clients being fed. */
  clients(): WebSocketClientInfo[];
  /** Takes no more clients, closes every WebSocket with 1001, and resolves once all are gone. */
  close(): Promise<void>;
}

interface Client {
  readonly ws: WebSocket;
  readonly socket: Duplex;
  readonly remoteAddress: string | undefined;
  /** The key it connected with, held to check it again: never logged. */
  readonly key: string | undefined;
  cursor: number;
  paused: boolean;
  /** Answered the last ping. */
  alive: boolean;
  heartbeat: TimerHandle | undefined;
  ping: TimerHandle | undefined;
  stall: TimerHandle | undefined;
  readonly onDrain: () => void;
}

/** What the query string asks for: `since`, or why it is refused. */
type Query = { readonly since: number | undefined } | { readonly problem: string };

const ignore = (): void => undefined;

/**
 * Answers an upgrade that will not happen with the JSON error body every other answer has, then
 * closes the socket. For refusals before the handshake (path, rate limit, protocol, origin).
 */
export function refuseUpgrade(socket: Duplex, { error, headers = {} }: { error: AppError; headers?: Readonly<Record<string, string>> }): void {
  // node:http removed its own error listener when it handed the socket over.
  socket.on('error', ignore);
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ message: error.message, details: error.details, code: error.code });
  const extra = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n${extra}\r\n${body}`,
    () => socket.destroy(),
  );
}

/** The subprotocols the client offers, in its order. */
function offeredProtocols(req: IncomingMessage): string[] {
  const header = req.headers['sec-websocket-protocol'];
  if (typeof header !== 'string') return [];
  return header
    .split(',')
    .map((protocol) => protocol.trim())
    .filter((protocol) => protocol !== '');
}

/** The key the client presents: as a subprotocol (browsers), else in `x-api-key` (other clients). */
function presentedKey(req: IncomingMessage, offered: readonly string[]): string | undefined {
  const protocol = offered.find((p) => p.startsWith(KEY_PROTOCOL_PREFIX));
  if (protocol !== undefined) return protocol.slice(KEY_PROTOCOL_PREFIX.length);
  const header = req.headers['x-api-key'];
  return typeof header === 'string' ? header : undefined;
}

function parseQuery(url: string | undefined): Query {
  const at = url?.indexOf('?') ?? -1;
  if (at === -1) return { since: undefined };
  const params = new URLSearchParams(url!.slice(at + 1));
  let since: number | undefined;
  for (const [name, value] of params) {
    if (name !== 'since') return { problem: 'the only query parameter is since' };
    if (since !== undefined) return { problem: 'since must be given once' };
    if (!/^\d{1,15}$/.test(value)) return { problem: 'since must be a non-negative integer (a rev)' };
    since = Number(value);
  }
  return { since };
}

function eventTexts(event: AnyEvent): Buffer[] {
  const texts = [Buffer.from(JSON.stringify({ type: event.type, rev: event.id, at: new Date(event.at).toISOString(), data: event.data }))];
  const legacy = LEGACY_CHANGE_TYPES[event.type];
  if (legacy !== undefined) texts.push(Buffer.from(JSON.stringify({ ConfigChanged: { tenant_id: 'default', change_type: legacy } })));
  return texts;
}

export function createWebSocketChannel({
  log,
  logger,
  clock = systemClock,
  authenticate,
  stillAuthorized,
  originAllowed,
  heartbeatMs = DEFAULT_HEARTBEAT_MS,
  pingMs = DEFAULT_PING_MS,
  maxBufferedBytes = DEFAULT_MAX_BUFFERED_BYTES,
  stallMs = DEFAULT_STALL_MS,
}: WebSocketChannelOptions): WebSocketChannel {
  const wsLog = logger.child({ module: 'websocket' });
  const server = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    maxPayload: MAX_PAYLOAD_BYTES,
    perMessageDeflate: false,
    // Only offered when the upgrade was let through, which requires confhub.v1 in the offer.
    handleProtocols: (protocols) => (protocols.has(WEBSOCKET_PROTOCOL) ? WEBSOCKET_PROTOCOL : false),
  });
  const clients = new Set<Client>();
  /** Every open WebSocket, those being closed for a refused key included: shutdown waits for them. */
  const sockets = new Set<WebSocket>();
  let unsubscribe: (() => void) | undefined;
  let closing: Promise<void> | undefined;
  /** The texts of the event being fanned out, encoded once for every client. */
  let memo: { id: number; texts: Buffer[] } | undefined;

  const textsOf = (event: AnyEvent): Buffer[] => {
    if (memo?.id !== event.id) memo = { id: event.id, texts: eventTexts(event) };
    return memo.texts;
  };
  const sendJson = (client: Client, message: Record<string, unknown>): void => client.ws.send(JSON.stringify(message));
  const full = (client: Client): boolean => client.ws.bufferedAmount > maxBufferedBytes;

  function write(client: Client, event: AnyEvent): void {
    // An event and its legacy message leave in one write: a system call per client, not two.
    client.socket.cork();
    for (const text of textsOf(event)) client.ws.send(text, { binary: false });
    client.socket.uncork();
    client.cursor = event.id;
  }

  function terminate(client: Client, reason: string): void {
    wsLog.info({ remoteAddress: client.remoteAddress, rev: client.cursor, reason }, 'websocket client dropped');
    client.ws.terminate();
  }

  function pause(client: Client): void {
    if (client.paused) return;
    client.paused = true;
    client.stall = clock.setTimeout(() => terminate(client, `nothing drained for ${stallMs} ms`), stallMs);
    client.stall.unref();
  }

  /** Writes from the log after the cursor until caught up, or until the socket buffer is full. */
  function catchUp(client: Client): void {
    while (clients.has(client)) {
      const { events, reset } = log.read({ after: client.cursor, limit: PAGE });
      if (reset) {
        // Everything after the cursor is gone: say so once, then follow from the newest.
        client.cursor = log.lastId();
        sendJson(client, { type: 'reset', rev: client.cursor });
        continue;
      }
      for (const event of events) {
        if (full(client)) {
          pause(client);
          return;
        }
        write(client, event);
      }
      if (events.length < PAGE) return;
    }
  }

  function resume(client: Client): void {
    if (!client.paused || full(client)) return;
    client.paused = false;
    clock.clearTimeout(client.stall);
    catchUp(client);
  }

  function deliver(client: Client, event: AnyEvent): void {
    if (client.paused || event.id <= client.cursor) return;
    if (event.id !== client.cursor + 1) {
      // An event was skipped (it could not be stored, or arrived out of order): read the log.
      catchUp(client);
      return;
    }
    if (full(client)) {
      pause(client);
      return;
    }
    write(client, event);
  }

  function onEvent(event: AnyEvent): void {
    for (const client of clients) deliver(client, event);
  }

  function beat(client: Client): void {
    if (stillAuthorized && !stillAuthorized(client.key)) {
      wsLog.info({ remoteAddress: client.remoteAddress }, 'websocket closed: the API key changed');
      remove(client);
      client.ws.close(CLOSE_CODES.unauthorized, 'unauthorized');
      return;
    }
    // 'drain' only follows a write the socket refused; the tick looks at the buffer itself too.
    resume(client);
    if (!client.paused) sendJson(client, { type: 'heartbeat', rev: client.cursor });
    client.heartbeat = clock.setTimeout(() => beat(client), heartbeatMs);
    client.heartbeat.unref();
  }

  function ping(client: Client): void {
    if (!client.alive) {
      terminate(client, 'no answer to the previous ping');
      return;
    }
    client.alive = false;
    client.ws.ping();
    client.ping = clock.setTimeout(() => ping(client), pingMs);
    client.ping.unref();
  }

  function remove(client: Client): void {
    if (!clients.delete(client)) return;
    clock.clearTimeout(client.heartbeat);
    clock.clearTimeout(client.ping);
    clock.clearTimeout(client.stall);
    client.socket.off('drain', client.onDrain);
    if (clients.size === 0) {
      unsubscribe?.();
      unsubscribe = undefined;
    }
  }

  function follow(ws: WebSocket, { req, since, key }: { req: IncomingMessage; since: number | undefined; key: string | undefined }): void {
    const { socket } = req;
    const client: Client = {
      ws,
      socket,
      remoteAddress: socket.remoteAddress,
      key,
      cursor: log.lastId(),
      paused: false,
      alive: true,
      heartbeat: undefined,
      ping: undefined,
      stall: undefined,
      onDrain: () => resume(client),
    };
    ws.on('pong', () => {
      client.alive = true;
    });
    ws.on('close', () => remove(client));
    socket.on('drain', client.onDrain);
    clients.add(client);
    // Subscribed while anyone listens: the log's subscribers are the live consumers.
    unsubscribe ??= log.subscribe(onEvent);
    const reset = since !== undefined && log.read({ after: since, limit: 1 }).reset;
    if (since !== undefined && !reset) client.cursor = since;
    sendJson(client, { type: 'hello', rev: client.cursor, heartbeatMs });
    if (reset) sendJson(client, { type: 'reset', rev: client.cursor });
    else if (since !== undefined) catchUp(client);
    client.heartbeat = clock.setTimeout(() => beat(client), heartbeatMs);
    client.heartbeat.unref();
    client.ping = clock.setTimeout(() => ping(client), pingMs);
    client.ping.unref();
  }

  function opened(
    ws: WebSocket,
    { req, authenticated, query, key }: { req: IncomingMessage; authenticated: boolean; query: Query; key: string | undefined },
  ): void {
    const remoteAddress = req.socket.remoteAddress;
    sockets.add(ws);
    ws.on('close', (code) => {
      sockets.delete(ws);
      wsLog.debug({ remoteAddress, code }, 'websocket closed');
    });
    // Errors of the peer's frames (too large, not UTF-8): ws closes the connection itself.
    ws.on('error', (error) => wsLog.debug({ remoteAddress, err: error }, 'websocket error'));
    ws.on('message', ignore);
    if (closing) {
      ws.close(CLOSE_CODES.goingAway, 'going away');
      return;
    }
    if (!authenticated) {
      wsLog.info({ remoteAddress }, 'websocket refused: missing or wrong key');
      ws.close(CLOSE_CODES.unauthorized, 'unauthorized');
      return;
    }
    if ('problem' in query) {
      ws.close(CLOSE_CODES.badRequest, query.problem);
      return;
    }
    wsLog.debug({ remoteAddress, since: query.since }, 'websocket opened');
    follow(ws, { req, since: query.since, key });
  }

  return {
    handleUpgrade(req, socket, head) {
      socket.on('error', ignore);
      if (closing) {
        socket.destroy();
        return;
      }
      if (req.headers.upgrade?.toLowerCase() !== 'websocket') {
        refuseUpgrade(socket, { error: new AppError('INVALID_REQUEST', { details: 'Only WebSocket upgrades are served here' }) });
        return;
      }
      const offered = offeredProtocols(req);
      if (!offered.includes(WEBSOCKET_PROTOCOL)) {
        refuseUpgrade(socket, {
          error: new AppError('INVALID_REQUEST', { details: `The WebSocket subprotocols (Sec-WebSocket-Protocol) must include ${WEBSOCKET_PROTOCOL}` }),
        });
        return;
      }
      if (!originAllowed(req)) {
        wsLog.info({ remoteAddress: req.socket.remoteAddress }, 'websocket refused: origin not allowed');
        refuseUpgrade(socket, {
          error: new AppError('ORIGIN_NOT_ALLOWED', { details: 'Pages from this Origin may not open the WebSocket; see [api] allowed_origins in system.ini' }),
        });
        return;
      }
      const key = presentedKey(req, offered);
      const authenticated = authenticate({ req, key });
      const query = parseQuery(req.url);
      server.handleUpgrade(req, socket, head, (ws) => opened(ws, { req, authenticated, query, key }));
    },

    clients: () =>
      [...clients].map((client) => ({ rev: client.cursor, bufferedAmount: client.ws.bufferedAmount, paused: client.paused, waitingForPong: !client.alive })),

    close() {
      closing ??= new Promise<void>((resolve) => {
        const open = [...sockets];
        let left = open.length;
        const grace = clock.setTimeout(() => {
          for (const ws of sockets) ws.terminate();
        }, CLOSE_GRACE_MS);
        grace.unref();
        const done = (): void => {
          clock.clearTimeout(grace);
          server.close();
          resolve();
        };
        if (left === 0) {
          done();
          return;
        }
        for (const ws of open) {
          ws.once('close', () => {
            left -= 1;
            if (left === 0) done();
          });
          ws.close(CLOSE_CODES.goingAway, 'going away');
        }
      });
      return closing;
    },
  };
}
