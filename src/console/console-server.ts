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
import { pipeline } from 'node:stream';

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

export function statusPage(settings: ConsoleSettings, startedAt: string): string {
  const title = escapeHtml(settings.title);
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${title}</title></head>
<body>
<h1>${title}</h1>
<p>Settings API: <a href="/api/v1/openapi.json">/api/v1</a> (send the API key as the x-api-key header).</p>
<p>Console started at ${escapeHtml(startedAt)}.</p>
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

function proxy(upstream: URL, req: IncomingMessage, res: ServerResponse): void {
  const headers = { ...forwardHeaders(req.headers), 'x-forwarded-for': req.socket.remoteAddress ?? '' };
  // Node decodes a chunked body; it goes on chunked too. Dropping the framing would let a body
  // on a GET reach confhub as a request of its own.
  if (req.headers['transfer-encoding'] !== undefined) headers['transfer-encoding'] = 'chunked';
  const outbound = request(
    {
      protocol: upstream.protocol,
      hostname: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers,
      timeout: UPSTREAM_IDLE_TIMEOUT_MS,
    },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, forwardHeaders(answer.headers));
      // Either side ending early ends the other: an event stream the browser closed is not kept open.
      pipeline(answer, res, () => undefined);
    },
  );
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

export interface StartConsoleInput {
  readonly settings: ConsoleSettings;
  readonly upstream: URL;
}

export function createConsoleServer({ settings, upstream }: StartConsoleInput): ReturnType<typeof createServer> {
  const startedAt = new Date().toISOString();
  const page = statusPage(settings, startedAt);
  const health = JSON.stringify({ status: 'ok', pid: process.pid, startedAt, title: settings.title });
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/api' || path?.startsWith('/api/')) {
      proxy(upstream, req, res);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') res.writeHead(200, { 'content-type': 'application/json' }).end(health);
    else if (path === '/') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
    else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
}
