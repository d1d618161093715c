/**
 * Console sessions: a browser signs in with the API key once and holds a cookie instead, so the
 * key is kept in neither the page nor its storage, and the cookie is not the key. The console
 * keeps, per session, the key it vouches for (in memory only: a restart of the console signs
 * everyone out) under the sha256 of the cookie's random value, and forgets a session idle for
 * `idleMs`. The oldest session goes when `maxSessions` are open.
 */
import { createHash, randomBytes } from 'node:crypto';

export const SESSION_COOKIE = 'confhub_session';
/** Its name over HTTPS (see console-server.ts). */
export const SECURE_SESSION_COOKIE = '__Host-confhub_session';
export const DEFAULT_SESSION_IDLE_MS = 30 * 60_000;
const MAX_SESSIONS = 1000;
/** 32 random bytes, base64url. */
const COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/;

export interface SessionStoreOptions {
  readonly idleMs?: number;
  readonly maxSessions?: number;
  readonly now?: () => number;
}

/** A connection a session opened (the live channel's WebSocket): it ends with the session. */
export interface SessionSocket {
  destroy(): void;
  once(event: 'close', listener: () => void): unknown;
}

interface Session {
  readonly key: string;
  lastUsed: number;
  readonly sockets: Set<SessionSocket>;
}

const digestOf = (value: string): string => createHash('sha256').update(value, 'utf8').digest('hex');

export function createSessionStore({ idleMs = DEFAULT_SESSION_IDLE_MS, maxSessions = MAX_SESSIONS, now = Date.now }: SessionStoreOptions = {}) {
  /** In the order they were last used: the first is the one idle longest. */
  const sessions = new Map<string, Session>();

  /** Ends a session: its cookie no longer signs in, and its WebSockets are closed. */
  function remove(id: string): void {
    const session = sessions.get(id);
    if (!session) return;
    sessions.delete(id);
    for (const socket of session.sockets) socket.destroy();
  }

  function sweep(at: number): void {
    for (const [id, session] of sessions) {
      if (at - session.lastUsed < idleMs) break;
      remove(id);
    }
  }

  return {
    idleMs,

    /** A new session for `key`; answers the cookie's value (shown to the browser only). */
    open(key: string): string {
      const at = now();
      sweep(at);
      const value = randomBytes(32).toString('base64url');
      sessions.set(digestOf(value), { key, lastUsed: at, sockets: new Set() });
      if (sessions.size > maxSessions) remove(sessions.keys().next().value!);
      return value;
    },

    /** The key of the session `value` names, when it is open; using it keeps it open. */
    keyOf(value: string | undefined): string | undefined {
      if (value === undefined || !COOKIE_VALUE.test(value)) return undefined;
      const at = now();
      sweep(at);
      const id = digestOf(value);
      const session = sessions.get(id);
      if (!session) return undefined;
      session.lastUsed = at;
      sessions.delete(id);
      sessions.set(id, session);
      return session.key;
    },

    close(value: string | undefined): void {
      if (value !== undefined && COOKIE_VALUE.test(value)) remove(digestOf(value));
    },

    /** Signs out every session of `key` (a key refused upstream: it was rotated). */
    closeKey(key: string): void {
      for (const [id, session] of sessions) if (session.key === key) remove(id);
    },

    /** Ties `socket` to the session `value` names: signing out, a refused key or idle expiry closes it. */
    attach(value: string | undefined, socket: SessionSocket): void {
      const session = value !== undefined && COOKIE_VALUE.test(value) ? sessions.get(digestOf(value)) : undefined;
      if (!session) {
        socket.destroy();
        return;
      }
      session.sockets.add(socket);
      socket.once('close', () => session.sockets.delete(socket));
    },

    /** Ends the sessions idle too long now (a timer calls it: a session may have only its WebSocket left). */
    expire(): void {
      sweep(now());
    },

    size: () => sessions.size,
  };
}

export type SessionStore = ReturnType<typeof createSessionStore>;

/** The value of one cookie of a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at === -1) continue;
    if (part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}

/** The Cookie header without `name`, or undefined when nothing else is left. */
export function cookiesWithout(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  const rest = header
    .split(';')
    .map((part) => part.trim())
    .filter((part) => part !== '' && part.split('=')[0]!.trim() !== name);
  return rest.length > 0 ? rest.join('; ') : undefined;
}
