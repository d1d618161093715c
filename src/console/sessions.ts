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

interface Session {
  readonly key: string;
  lastUsed: number;
}

const digestOf = (value: string): string => createHash('sha256').update(value, 'utf8').digest('hex');

export function createSessionStore({ idleMs = DEFAULT_SESSION_IDLE_MS, maxSessions = MAX_SESSIONS, now = Date.now }: SessionStoreOptions = {}) {
  /** In the order they were last used: the first is the one idle longest. */
  const sessions = new Map<string, Session>();

  function sweep(at: number): void {
    for (const [id, session] of sessions) {
      if (at - session.lastUsed < idleMs) break;
      sessions.delete(id);
    }
  }

  return {
    idleMs,

    /** A new session for `key`; answers the cookie's value (shown to the browser only). */
    open(key: string): string {
      const at = now();
      sweep(at);
      const value = randomBytes(32).toString('base64url');
      sessions.set(digestOf(value), { key, lastUsed: at });
      if (sessions.size > maxSessions) sessions.delete(sessions.keys().next().value!);
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
      if (value !== undefined && COOKIE_VALUE.test(value)) sessions.delete(digestOf(value));
    },

    /** Signs out every session of `key` (a key refused upstream: it was rotated). */
    closeKey(key: string): void {
      for (const [id, session] of sessions) if (session.key === key) sessions.delete(id);
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
