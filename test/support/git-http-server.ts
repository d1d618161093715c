/**
 * A git smart-HTTP server for tests: a small Node http server on 127.0.0.1 that checks HTTP basic
 * auth and runs the real `git http-backend` as a CGI per request. Closing it kills only the
 * processes it spawned (by their ChildProcess handles, i.e. by pid).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const GIT_HTTP_BACKEND = '/usr/lib/git-core/git-http-backend';

export interface GitHttpServerOptions {
  /** GIT_PROJECT_ROOT: the directory holding the bare repositories. */
  root: string;
  user: string;
  token: string;
  /** Default: any free port. */
  port?: number;
}

export interface GitHttpRequestRecord {
  method: string;
  path: string;
  status: number;
  /** The Authorization header as received (tests assert the token travelled only there). */
  authorization: string | undefined;
}

export interface GitHttpServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  requests: GitHttpRequestRecord[];
  close(): Promise<void>;
}

function basic(user: string, token: string): string {
  return `Basic ${Buffer.from(`${user}:${token}`, 'utf8').toString('base64')}`;
}

/** Splits a CGI response head ("Status: 200 OK", headers, blank line) from its body. */
function headEnd(buffer: Buffer): { end: number; separator: number } | undefined {
  const crlf = buffer.indexOf('\r\n\r\n');
  const lf = buffer.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { end: crlf, separator: 4 };
  if (lf >= 0) return { end: lf, separator: 2 };
  return undefined;
}

export async function startGitHttpServer({ root, user, token, port = 0 }: GitHttpServerOptions): Promise<GitHttpServer> {
  const expected = basic(user, token);
  const children = new Set<ChildProcess>();
  const requests: GitHttpRequestRecord[] = [];

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const record: GitHttpRequestRecord = { method: req.method ?? 'GET', path: url.pathname, status: 0, authorization: req.headers.authorization };
    requests.push(record);
    if (req.headers.authorization !== expected) {
      record.status = 401;
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="x"', 'Content-Type': 'text/plain' });
      res.end('unauthorized\n');
      return;
    }
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_PROTOCOL: 'HTTP/1.1',
      REQUEST_METHOD: req.method ?? 'GET',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.replace(/^\?/, ''),
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_USER: user,
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
    };
    if (req.headers['content-length'] !== undefined) env.CONTENT_LENGTH = req.headers['content-length'];
    if (req.headers['content-encoding'] !== undefined) env.HTTP_CONTENT_ENCODING = req.headers['content-encoding'];
    const protocol = req.headers['git-protocol'];
    if (typeof protocol === 'string') env.GIT_PROTOCOL = protocol;

    const child = spawn(GIT_HTTP_BACKEND, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    child.on('close', () => children.delete(child));
    child.on('error', () => children.delete(child));
    child.stdin.on('error', () => undefined);
    child.stderr.resume();
    req.pipe(child.stdin);

    let head = Buffer.alloc(0);
    let headersSent = false;
    child.stdout.on('data', (chunk: Buffer) => {
      if (headersSent) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const split = headEnd(head);
      if (!split) return;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, split.end).toString('latin1').split(/\r?\n/)) {
        const colon = line.indexOf(':');
        if (colon <= 0) continue;
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 500;
        else headers[name] = value;
      }
      record.status = status;
      res.writeHead(status, headers);
      headersSent = true;
      res.write(head.subarray(split.end + split.separator));
    });
    child.stdout.on('end', () => {
      if (!headersSent) {
        record.status = 502;
        res.writeHead(502, { 'Content-Type': 'text/plain' });
      }
      res.end();
    });
    res.on('close', () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
  }

  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actualPort = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actualPort}`,
    port: actualPort,
    requests,
    async close() {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
