/**
 * The console: the internal program supervisord runs beside confhub in the container. It serves
 * a status page and passes /api/ through to confhub, so one address gives people both. It sets
 * x-forwarded-for to the address it saw; the image trusts that header from loopback only
 * (CONFHUB_TRUST_PROXY=loopback), so rate limits and the audit log see real clients.
 *
 * confhub renders the [console] section of config.ini to JSON (target `console`, format json)
 * and restarts this program through supervisord's XML-RPC; the settings are read once, at start.
 * A missing file means confhub has not rendered it yet (first boot): the defaults apply until
 * the restart that follows. A file that cannot be used ends the program with exit code 2, which
 * supervisord reports as FATAL, so confhub's health check fails and it rolls the change back.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIPv4 } from 'node:net';
import { type Duplex, pipeline } from 'node:stream';
import { readFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { cookiesWithout, cookieValue, createSessionStore, SECURE_SESSION_COOKIE, SESSION_COOKIE, type SessionStore } from './sessions.js';

export interface ConsoleSettings {
  readonly title: string;
  readonly bind: string;
  readonly port: number;
}

export const CONSOLE_DEFAULTS: ConsoleSettings = Object.freeze({ title: 'confhub console', bind: '127.0.0.1', port: 9080 });

/** The JSON confhub renders: `{"console": {"title": "…", "bind": "…", "port": "…"}}`, values as strings. */
export function parseConsoleSettings(text: string): ConsoleSettings {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error('the settings file is not JSON');
  }
  const section = (parsed as { console?: unknown } | null)?.console;
  if (typeof section !== 'object' || section === null) throw new Error('the settings file has no "console" object');
  const values = section as Record<string, unknown>;
  const title = values.title ?? CONSOLE_DEFAULTS.title;
  const bind = values.bind ?? CONSOLE_DEFAULTS.bind;
  const portText = values.port ?? String(CONSOLE_DEFAULTS.port);
  if (typeof title !== 'string') throw new Error('console.title must be a string');
  if (typeof bind !== 'string' || !isIPv4(bind)) throw new Error('console.bind must be an IPv4 address');
  const port = Number(portText);
  if (typeof portText !== 'string' || !/^\d+$/.test(portText) || port < 1 || port > 65535)
    throw new Error('console.port must be a port number from 1 to 65535');
  return Object.freeze({ title, bind, port });
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);

/** The console's page: the title from config.ini, the sign-in form and the app; its script and styles are the web/ assets. */
export function consolePage(settings: ConsoleSettings, startedAt: string): string {
  const title = escapeHtml(settings.title);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/console.css">
<script type="module" src="/assets/console.js"></script>
</head>
<body>
<a class="skip" href="#main">Skip to the content</a>
<header><h1>${title}</h1><p id="live" data-state="offline" role="status" hidden><span id="live-state">Live updates: offline</span><span id="live-detail" aria-hidden="true"></span></p><button id="signout" class="secondary" type="button" hidden>Sign out</button></header>
<main id="main" tabindex="-1">
<form id="signin" class="stacked" hidden aria-labelledby="signin-title">
<h2 id="signin-title">Sign in</h2>
<p><label for="key">API key</label><input id="key" name="key" type="password" autocomplete="current-password" required></p>
<p><button type="submit">Sign in</button></p>
<p id="signin-error" class="error" role="alert"></p>
</form>
<div id="app" hidden>
<nav aria-label="Views"><a href="#status">Status</a><a href="#settings">Settings</a><a href="#history">History</a></nav>
<div id="activity" role="status" aria-live="polite"></div>
<section id="view-status" aria-labelledby="status-title">
<h2 id="status-title" tabindex="-1">Status</h2>
<p id="status-notes" class="error" role="alert"></p>
<table id="targets"><caption>Each target: the files confhub renders for one service, and that service</caption><thead><tr><th scope="col">Target</th><th scope="col">State</th><th scope="col">Revision</th><th scope="col">Connection</th><th scope="col">Last error</th></tr></thead><tbody></tbody></table>
</section>
<section id="view-settings" aria-labelledby="settings-title" hidden>
<h2 id="settings-title" tabindex="-1">Settings</h2>
<p class="hint">config.ini, as written: a value with a reference shows the reference. Save a section alone, or every changed section as one batch.</p>
<div id="conflict" role="region" aria-labelledby="conflict-title" hidden></div>
<p id="settings-notice" class="notice" role="status"></p>
<form id="settings-form" novalidate>
<div id="sections"></div>
<p id="settings-error" class="error" role="alert"></p>
<p class="actions"><button type="submit" id="save-all">Save all changes</button> <button type="button" id="discard" class="secondary">Discard changes</button></p>
</form>
</section>
<section id="view-history" aria-labelledby="history-title" hidden>
<h2 id="history-title" tabindex="-1">History</h2>
<form id="compare" class="inline-form"><p><label for="compare-from">Compare from</label><select id="compare-from"></select></p><p><label for="compare-to">to</label><select id="compare-to"></select></p><p><button type="submit" class="secondary">Compare</button></p></form>
<section id="diff-view" aria-labelledby="diff-title" hidden>
<h3 id="diff-title" tabindex="-1"></h3>
<fieldset class="layout"><legend>Show the changes</legend><label><input type="radio" name="layout" value="split" checked> side by side</label><label><input type="radio" name="layout" value="inline"> inline</label></fieldset>
<div id="diff"></div>
</section>
<table id="commits"><caption>Revisions of config.ini, newest first</caption><thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">Source</th><th scope="col">Keys</th><th scope="col">Sync</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead><tbody></tbody></table>
<p><button type="button" id="older" class="secondary" hidden>Load older revisions</button></p>
</section>
</div>
<dialog id="rollback-dialog" aria-labelledby="rollback-title">
<h2 id="rollback-title">Roll back</h2>
<p id="rollback-summary"></p>
<div id="rollback-diff"></div>
<form method="dialog" class="actions"><button value="cancel" id="rollback-cancel" class="secondary">Cancel</button> <button value="confirm" id="rollback-confirm">Roll back</button></form>
</dialog>
<p><small>Console started at ${escapeHtml(startedAt)}. Programs use the API at <a href="/api/v1/openapi.json">/api/v1</a> with the x-api-key header.</small></p>
</main>
</body>
</html>
`;
}

// Hop-by-hop headers (RFC 9110 §7.6.1) are not forwarded, nor the ones Connection names.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);
/** Longer than confhub's longest answer (?wait=true waits up to 120 s). */
const UPSTREAM_IDLE_TIMEOUT_MS = 130_000;

function forwardHeaders(headers: IncomingMessage['headers']): IncomingMessage['headers'] {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((token) => token.trim().toLowerCase())
      .filter((token) => token !== ''),
  );
  const out: IncomingMessage['headers'] = {};
  for (const [name, value] of Object.entries(headers)) if (!HOP_BY_HOP.has(name) && !named.has(name) && value !== undefined) out[name] = value;
  return out;
}

function sendJson(res: ServerResponse, answer: { status: number; body: unknown; headers?: Record<string, string | string[]> }): void {
  const text = JSON.stringify(answer.body);
  res.writeHead(answer.status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
    ...answer.headers,
  });
  res.end(text);
}

/** Whether the request came over HTTPS: itself, or through a proxy on loopback that says so. */
const fromLoopback = (req: IncomingMessage): boolean => /^(127\.|::1$|::ffff:127\.)/.test(req.socket.remoteAddress ?? '');

function secure(req: IncomingMessage): boolean {
  if ((req.socket as { encrypted?: boolean }).encrypted) return true;
  return fromLoopback(req) && String(req.headers['x-forwarded-proto'] ?? '').toLowerCase() === 'https';
}

/**
 * X-Forwarded-For for confhub: the client's address; behind a proxy on loopback (TLS), the chain
 * that proxy sent with this hop added, so confhub (trusting loopback) still sees each client and
 * its rate limits do not lump every browser together.
 */
function forwardedFor(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? '';
  const incoming = req.headers['x-forwarded-for'];
  return fromLoopback(req) && typeof incoming === 'string' && incoming.trim() !== '' ? `${incoming}, ${address}` : address;
}

/**
 * A page of this console's own origin: `Origin` names the host the request was sent to. Browsers
 * send Origin with every request that changes state, so a write with the session cookie and no
 * Origin, or another one, is a page elsewhere using the administrator's cookie (CSRF).
 */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (typeof origin !== 'string' || req.headers.host === undefined) return false;
  try {
    // The whole origin, scheme too: an http:// page (which a network attacker can write) is not the https:// console.
    return new URL(origin).origin === `${secure(req) ? 'https' : 'http'}://${req.headers.host.toLowerCase()}`;
  } catch {
    return false;
  }
}

const CHANGES_STATE = (method: string | undefined): boolean => method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';
const ORIGIN_REFUSED = {
  code: 'ORIGIN_NOT_ALLOWED',
  message: 'Forbidden',
  details: "a request that changes something with the console's session cookie must come from the console's own page (Origin)",
};

/**
 * The session cookie: no Max-Age while signed in (the console ends a session idle too long; a
 * lifetime in the browser would end an active one), Max-Age=0 to sign out.
 */
function sessionCookie(req: IncomingMessage, value: string, { clear }: { clear: boolean }): string {
  return `${cookieName(req)}=${value}; Path=/; HttpOnly; SameSite=Strict${clear ? '; Max-Age=0' : ''}${secure(req) ? '; Secure' : ''}`;
}

/**
 * Over HTTPS the cookie is `__Host-confhub_session`: browsers take a cookie of that name only when
 * Secure, for Path=/ and without Domain, so neither an http:// page nor a sibling subdomain can set
 * one the console would read. (Another HTTPS service on the same host can: cookies ignore ports.
 * Sign-in always makes a new value, so a planted cookie can sign the admin out, never in as someone
 * else.) Over plain HTTP it cannot be, and is `confhub_session`.
 */
function cookieName(req: IncomingMessage): string {
  return secure(req) ? SECURE_SESSION_COOKIE : SESSION_COOKIE;
}

/**
 * Over HTTPS, the Set-Cookie that ends the plain-HTTP cookie of an earlier sign-in without TLS,
 * which would otherwise still sign in over HTTP; over HTTP, none.
 */
function plainCookieCleared(req: IncomingMessage): string[] {
  return secure(req) ? [`${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure`] : [];
}

/** Closes the sessions of both cookie names the request carries. */
function closeSessions(sessions: SessionStore, req: IncomingMessage): void {
  sessions.close(cookieValue(req.headers.cookie, SESSION_COOKIE));
  if (secure(req)) sessions.close(cookieValue(req.headers.cookie, SECURE_SESSION_COOKIE));
}

/** The key the request's session cookie vouches for, if it has one and no x-api-key of its own. */
function sessionKeyOf(sessions: SessionStore, req: IncomingMessage): string | undefined {
  return req.headers['x-api-key'] === undefined ? sessions.keyOf(cookieValue(req.headers.cookie, cookieName(req))) : undefined;
}

/** Where confhub listens, as node:http's request options say it. */
function upstreamAt(upstream: URL): { protocol: string; hostname: string; port: string } {
  return { protocol: upstream.protocol, hostname: upstream.hostname, port: upstream.port };
}

/** What goes on to confhub: end-to-end headers, the client's address, the key a session vouches for, never the session cookie. */
function upstreamHeaders(req: IncomingMessage, sessionKey: string | undefined): IncomingMessage['headers'] {
  const headers: IncomingMessage['headers'] = { ...forwardHeaders(req.headers), 'x-forwarded-for': forwardedFor(req) };
  const cookies = cookiesWithout(cookiesWithout(req.headers.cookie, SESSION_COOKIE), SECURE_SESSION_COOKIE);
  if (cookies === undefined) delete headers.cookie;
  else headers.cookie = cookies;
  if (sessionKey !== undefined) headers['x-api-key'] = sessionKey;
  return headers;
}

interface ProxyInput {
  readonly upstream: URL;
  /** The key a session vouches for: sent as x-api-key; a 401 for it signs the session out. */
  readonly sessionKey?: string | undefined;
  readonly onRefusedKey?: () => void;
}

function proxy({ upstream, sessionKey, onRefusedKey }: ProxyInput, req: IncomingMessage, res: ServerResponse): void {
  const headers = upstreamHeaders(req, sessionKey);
  // Node decodes a chunked body; it goes on chunked too. Dropping the framing would let a body
  // on a GET reach confhub as a request of its own.
  if (req.headers['transfer-encoding'] !== undefined) headers['transfer-encoding'] = 'chunked';
  const outbound = request({ ...upstreamAt(upstream), method: req.method, path: req.url, headers, timeout: UPSTREAM_IDLE_TIMEOUT_MS }, (answer) => {
    if (sessionKey !== undefined && answer.statusCode === 401) onRefusedKey?.();
    res.writeHead(answer.statusCode ?? 502, forwardHeaders(answer.headers));
    // Either side ending early ends the other: an event stream the browser closed is not kept open.
    pipeline(answer, res, () => undefined);
  });
  outbound.on('timeout', () => outbound.destroy(new Error('timeout')));
  outbound.on('error', () => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.writeHead(502, { 'content-type': 'application/json' });
    res.end('{"message":"confhub is not answering","details":"the console could not reach the confhub API"}');
  });
  res.on('close', () => {
    if (!res.writableFinished) outbound.destroy();
  });
  pipeline(req, outbound, () => undefined);
}

/** Answers a refused upgrade on its raw socket and ends it. */
function refuseUpgrade(socket: Duplex, { status, reason, body }: { status: number; reason: string; body: unknown }): void {
  const text = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
  );
}

/** How long confhub may take to answer a WebSocket handshake passed on. */
const UPGRADE_TIMEOUT_MS = 10_000;

/**
 * A WebSocket of confhub's live channel through the console. With a session cookie the page must
 * be of the console's own origin (cross-site WebSocket hijacking), its key is checked first (a
 * rotated key ends the session instead of counting as a failed sign-in at every reconnect) and sent
 * as x-api-key. Origin and Host go on: confhub judges the origin as its own or by its allow-list.
 */
async function proxyUpgrade(
  { upstream, sessions }: { upstream: URL; sessions: SessionStore },
  { req, socket, head }: { req: IncomingMessage; socket: Duplex; head: Buffer },
): Promise<void> {
  let clientGone = false;
  socket.on('error', () => socket.destroy());
  socket.once('close', () => {
    clientGone = true;
  });
  const path = (req.url ?? '/').split('?')[0];
  if (!(path === '/api' || path?.startsWith('/api/'))) {
    refuseUpgrade(socket, { status: 404, reason: 'Not Found', body: { code: 'NOT_FOUND', message: 'Not Found', details: 'only /api/ is passed on' } });
    return;
  }
  const sessionKey = sessionKeyOf(sessions, req);
  const cookie = cookieValue(req.headers.cookie, cookieName(req));
  if (sessionKey !== undefined && !sameOrigin(req)) {
    refuseUpgrade(socket, { status: 403, reason: 'Forbidden', body: ORIGIN_REFUSED });
    return;
  }
  if (sessionKey !== undefined) {
    const checked = await checkKey(upstream, { key: sessionKey, forwardedFor: forwardedFor(req) });
    if (checked.status === 401) sessions.closeKey(sessionKey);
    if (checked.status !== 200) {
      refuseUpgrade(socket, {
        status: checked.status,
        reason: checked.status === 401 ? 'Unauthorized' : 'Error',
        body: JSON.parse(checked.body || '{}') as unknown,
      });
      return;
    }
    if (clientGone) return;
  }
  const headers: IncomingMessage['headers'] = { ...upstreamHeaders(req, sessionKey), connection: 'Upgrade', upgrade: 'websocket' };
  delete headers['content-length'];
  const outbound = request({ ...upstreamAt(upstream), method: req.method, path: req.url, headers, timeout: UPGRADE_TIMEOUT_MS });
  socket.once('close', () => outbound.destroy());
  outbound.on('timeout', () => outbound.destroy(new Error('timeout')));
  outbound.on('upgrade', (answer, upstreamSocket, upstreamHead) => {
    if (clientGone) {
      upstreamSocket.destroy();
      return;
    }
    const lines = [`HTTP/1.1 ${answer.statusCode ?? 101} ${answer.statusMessage ?? 'Switching Protocols'}`];
    for (let i = 0; i < answer.rawHeaders.length; i += 2) lines.push(`${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (upstreamHead.length > 0) socket.write(upstreamHead);
    if (sessionKey !== undefined) sessions.attach(cookie, socket);
    if (head.length > 0) upstreamSocket.write(head);
    upstreamSocket.on('error', () => socket.destroy());
    socket.on('close', () => upstreamSocket.destroy());
    upstreamSocket.on('close', () => socket.destroy());
    upstreamSocket.pipe(socket);
    socket.pipe(upstreamSocket);
  });
  // No upgrade: confhub's answer (401, 403, 426, 429) goes back as it is.
  outbound.on('response', (answer) => {
    const lines = [`HTTP/1.1 ${answer.statusCode ?? 502} ${answer.statusMessage ?? ''}`];
    for (let i = 0; i < answer.rawHeaders.length; i += 2) {
      const name = answer.rawHeaders[i]!.toLowerCase();
      if (!HOP_BY_HOP.has(name) && name !== 'content-length') lines.push(`${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}`);
    }
    const chunks: Buffer[] = [];
    answer.on('error', () => socket.destroy());
    answer.on('data', (chunk: Buffer) => chunks.push(chunk));
    answer.on('end', () => {
      const body = Buffer.concat(chunks);
      socket.end(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`), body]));
    });
  });
  outbound.on('error', () => {
    if (clientGone) return;
    refuseUpgrade(socket, {
      status: 502,
      reason: 'Bad Gateway',
      body: { message: 'confhub is not answering', details: 'the console could not reach the confhub API' },
    });
  });
  outbound.end();
}

/** The page's own files (web/ of the package and the image), by path, with their types. */
const ASSETS: ReadonlyMap<string, { file: string; type: string }> = new Map([
  ['/assets/console.js', { file: 'console.js', type: 'text/javascript; charset=utf-8' }],
  ['/assets/console.css', { file: 'console.css', type: 'text/css; charset=utf-8' }],
]);
const WEB_DIR = new URL('../../web/', import.meta.url);

/**
 * Nothing but the console's own origin: no inline script, no other site's script, frame or font;
 * the live channel is a WebSocket to the same host. The page may not be framed (clickjacking).
 */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
} as const;

/** A body as sent: gzip when the client takes it (the page's files shrink to about a quarter). */
interface Encoded {
  readonly raw: Buffer;
  readonly gzip: Buffer;
  /** Of the content: a browser revalidates with it (304) instead of fetching the page's files again. */
  readonly etag: string;
}

function encode(raw: Buffer): Encoded {
  return { raw, gzip: gzipSync(raw, { level: 9 }), etag: createHash('sha256').update(raw).digest('base64url').slice(0, 22) };
}

/** Whether Accept-Encoding takes gzip (RFC 9110 §12.5.3): named with q above 0, or, when not named, `*` so. */
function acceptsGzip(header: string | undefined): boolean {
  const weights = new Map<string, number>();
  for (const part of String(header ?? '').split(',')) {
    const [coding, ...params] = part.split(';').map((piece) => piece.trim().toLowerCase());
    const q = params.find((param) => param.startsWith('q='));
    if (coding) weights.set(coding, q === undefined ? 1 : Number(q.slice(2)));
  }
  return (weights.get('gzip') ?? weights.get('*') ?? 0) > 0;
}

function sendEncoded(req: IncomingMessage, res: ServerResponse, { body, headers }: { body: Encoded; headers: Record<string, string> }): void {
  const gzip = acceptsGzip(req.headers['accept-encoding']);
  const content = gzip ? body.gzip : body.raw;
  // Each encoding is its own representation, with its own strong ETag.
  const etag = `"${body.etag}${gzip ? '-gz' : ''}"`;
  const cache = { vary: 'accept-encoding', etag, 'cache-control': headers['cache-control'] ?? 'no-cache' };
  const wanted = String(req.headers['if-none-match'] ?? '');
  if (wanted === '*' || wanted.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag)) {
    res.writeHead(304, cache).end();
    return;
  }
  res.writeHead(200, { ...headers, ...cache, 'content-length': content.length, ...(gzip ? { 'content-encoding': 'gzip' } : {}) });
  res.end(req.method === 'HEAD' ? undefined : content);
}

function createAssetReader() {
  const read = new Map<string, Promise<Encoded>>();
  return {
    async send(path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
      const asset = ASSETS.get(path)!;
      let body = read.get(path);
      if (!body) {
        body = readFile(new URL(asset.file, WEB_DIR)).then(encode);
        read.set(path, body);
      }
      try {
        sendEncoded(req, res, { body: await body, headers: { 'content-type': asset.type, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' } });
      } catch {
        read.delete(path);
        res.writeHead(500, { 'content-type': 'text/plain' }).end('the console is missing its files\n');
      }
    },
  };
}

export interface StartConsoleInput {
  readonly settings: ConsoleSettings;
  readonly upstream: URL;
  readonly sessions?: SessionStore;
}

/** The most a sign-in body may be: `{"key": "…"}`. */
const SESSION_BODY_LIMIT = 4096;

/**
 * The body, or undefined when it is over `limit`: read to its end so the client gets the answer
 * (up to 16 times the limit; a body larger than that ends the connection).
 */
function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else if (size > limit * 16) {
        resolve(undefined);
        req.destroy();
      }
    });
    req.on('end', () => resolve(size > limit ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(undefined));
  });
}

/** Asks confhub whether `key` is its API key: any answer but 200 is passed on. */
function checkKey(upstream: URL, { key, forwardedFor }: { key: string; forwardedFor: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const outbound = request(
      {
        ...upstreamAt(upstream),
        method: 'GET',
        path: '/api/v1/init/status',
        headers: { 'x-api-key': key, 'x-forwarded-for': forwardedFor },
        timeout: 10_000,
      },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => resolve({ status: answer.statusCode ?? 502, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    outbound.on('timeout', () => outbound.destroy(new Error('timeout')));
    outbound.on('error', () =>
      resolve({ status: 502, body: '{"message":"confhub is not answering","details":"the console could not reach the confhub API"}' }),
    );
    outbound.end();
  });
}

/** /session: GET says whether the cookie is signed in, POST {"key"} signs in, DELETE signs out. */
async function session({ upstream, sessions }: { upstream: URL; sessions: SessionStore }, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const idleSeconds = Math.floor(sessions.idleMs / 1000);
  const current = cookieValue(req.headers.cookie, cookieName(req));
  if (req.method === 'GET' || req.method === 'HEAD') {
    sendJson(res, { status: 200, body: { signedIn: sessions.keyOf(current) !== undefined, idleSeconds } });
    return;
  }
  if (req.method !== 'POST' && req.method !== 'DELETE') {
    res.writeHead(405, { allow: 'GET, HEAD, POST, DELETE' }).end();
    return;
  }
  // A page elsewhere may neither sign the browser in (to an account it chose) nor out.
  if (req.headers.origin !== undefined && !sameOrigin(req)) {
    sendJson(res, { status: 403, body: ORIGIN_REFUSED });
    return;
  }
  if (req.method === 'DELETE') {
    closeSessions(sessions, req);
    sendJson(res, { status: 200, body: { signedIn: false }, headers: { 'set-cookie': [sessionCookie(req, '', { clear: true }), ...plainCookieCleared(req)] } });
    return;
  }
  if (
    !String(req.headers['content-type'] ?? '')
      .toLowerCase()
      .startsWith('application/json')
  ) {
    sendJson(res, {
      status: 415,
      body: { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Unsupported Media Type', details: 'sign in with a JSON body {"key": "..."}' },
    });
    return;
  }
  const text = await readBody(req, SESSION_BODY_LIMIT);
  let key: unknown;
  try {
    key = text === undefined ? undefined : (JSON.parse(text) as { key?: unknown } | null)?.key;
  } catch {
    key = undefined;
  }
  if (typeof key !== 'string' || key === '') {
    sendJson(res, {
      status: 400,
      body: { code: 'INVALID_REQUEST', message: 'Invalid Request', details: 'sign in with a JSON body {"key": "..."} (at most 4 KiB)' },
    });
    return;
  }
  const checked = await checkKey(upstream, { key, forwardedFor: forwardedFor(req) });
  if (checked.status !== 200) {
    // confhub's own answer: 401 API_KEY_INVALID, 429 with Retry-After counted against this address.
    res.writeHead(checked.status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(checked.body);
    return;
  }
  closeSessions(sessions, req);
  const value = sessions.open(key);
  sendJson(res, {
    status: 200,
    body: { signedIn: true, idleSeconds },
    headers: { 'set-cookie': [sessionCookie(req, value, { clear: false }), ...plainCookieCleared(req)] },
  });
}

export function createConsoleServer({ settings, upstream, sessions = createSessionStore() }: StartConsoleInput): ReturnType<typeof createServer> {
  const startedAt = new Date().toISOString();
  const page = encode(Buffer.from(consolePage(settings, startedAt)));
  const assets = createAssetReader();
  const health = JSON.stringify({ status: 'ok', pid: process.pid, startedAt, title: settings.title });
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/api' || path?.startsWith('/api/')) {
      // A program sends its key; a browser its session cookie, whose writes must come from this console's page.
      const sessionKey = sessionKeyOf(sessions, req);
      if (sessionKey !== undefined && CHANGES_STATE(req.method) && !sameOrigin(req)) {
        req.resume();
        sendJson(res, { status: 403, body: ORIGIN_REFUSED });
        return;
      }
      proxy({ upstream, sessionKey, onRefusedKey: () => sessionKey !== undefined && sessions.closeKey(sessionKey) }, req, res);
      return;
    }
    if (path === '/session') {
      void session({ upstream, sessions }, req, res);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') res.writeHead(200, { 'content-type': 'application/json' }).end(health);
    else if (path === '/') sendEncoded(req, res, { body: page, headers: { 'content-type': 'text/html; charset=utf-8', ...PAGE_HEADERS } });
    else if (path !== undefined && ASSETS.has(path)) void assets.send(path, req, res);
    else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  server.on('upgrade', (req, socket, head) => void proxyUpgrade({ upstream, sessions }, { req, socket, head }));
  // A page left open keeps only its WebSocket: idle expiry must still end it.
  const sweeper = setInterval(() => sessions.expire(), 60_000).unref();
  server.on('close', () => clearInterval(sweeper));
  return server;
}
