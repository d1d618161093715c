/**
 * Which web pages may open the WebSocket channel. A browser sends `Origin` with every WebSocket
 * handshake and, unlike fetch, enforces no CORS on it: without this check any page a logged-in
 * admin visits could open the channel with a key it got hold of, or probe for one. Requests
 * without `Origin` come from programs, not pages, and pass; a page served from the address the
 * request was sent to (its Host, over http or https) passes; other pages only when system.ini
 * lists their origin in `[api] allowed_origins`.
 */
import type { IncomingMessage } from 'node:http';
import { AppError } from '../core/errors.js';
import type { IniDocument } from '../ini/document.js';

const SECTION = 'api';
const KEYS = ['allowed_origins'];

function invalid(key: string | undefined, problem: string): AppError {
  const where = key ? `system.ini [${SECTION}] ${key}` : `system.ini [${SECTION}]`;
  return new AppError('TARGET_INVALID', { message: `${where}: ${problem}` });
}

/** An entry as an error message may show it: cut, control characters escaped. */
function shown(text: string): string {
  const cut = text.length > 200 ? `${text.slice(0, 200)}…` : text;
  return JSON.stringify(cut).slice(1, -1);
}

/** `https://admin.example.com` (scheme and host lowercased, a default port dropped), or the reason it is not an origin. */
function normalizedOrigin(entry: string): { origin: string } | { problem: string } {
  if (entry.includes('*')) return { problem: 'wildcards are not supported; list each origin' };
  let url: URL;
  try {
    url = new URL(entry);
  } catch {
    return { problem: 'is not an origin such as https://admin.example.com' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { problem: 'must be an http or https origin' };
  if (url.username || url.password || url.search || url.hash || url.pathname !== '/' || /[?#]/.test(entry)) {
    return { problem: 'must be an origin only: scheme, host and port, no path, query or user' };
  }
  return { origin: url.origin };
}

/**
 * The origins `[api] allowed_origins` of system.ini lists (comma separated, normalized); none
 * without the key. Throws TARGET_INVALID naming the entry and what is wrong with it.
 */
export function parseAllowedOrigins(systemIni: IniDocument): readonly string[] {
  const section = systemIni.byName.get(SECTION);
  if (!section) return [];
  for (const entry of section.entries) {
    if (!KEYS.includes(entry.keyLower)) throw invalid(shown(entry.key), `unknown key; expected one of ${KEYS.join(', ')}`);
  }
  const value = section.byKey.get('allowed_origins')?.value ?? '';
  const origins: string[] = [];
  for (const raw of value.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const result = normalizedOrigin(entry);
    if ('problem' in result) throw invalid('allowed_origins', `"${shown(entry)}" ${result.problem}`);
    origins.push(result.origin);
  }
  return Object.freeze([...new Set(origins)]);
}

/** The check the channel runs on every handshake, before upgrading. */
export function createOriginCheck({ allowed }: { allowed: readonly string[] }): (req: IncomingMessage) => boolean {
  const listed = new Set(allowed);
  return (req) => {
    const origin = req.headers.origin;
    if (origin === undefined) return true;
    const parsed = normalizedOrigin(origin);
    if ('problem' in parsed) return false;
    if (listed.has(parsed.origin)) return true;
    // The page came from the address the request was sent to: confhub's own, or the proxy's in front of it.
    const host = req.headers.host;
    if (!host) return false;
    return [`http://${host}`, `https://${host}`].some((own) => {
      const self = normalizedOrigin(own);
      return 'origin' in self && self.origin === parsed.origin;
    });
  };
}
