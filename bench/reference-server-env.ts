/**
 * Shared start-up of the two reference servers (Express ceiling, node:http floor): what they
 * serve and the key they accept come from the bench process through the environment, and the
 * expected key's sha256 is computed once, as confhub caches it. Not used while answering. The
 * bundle servers of bench/pull.ts get the tar and its token the same way.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface ReferenceServerEnv {
  /** The exact body confhub answered for GET /api/v1/settings/gitea. */
  readonly body: string;
  /** sha256 of the configured API key. */
  readonly expectedDigest: Buffer;
  readonly host: string;
  readonly port: number;
  readonly path: string;
}

export function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

export function loadReferenceServerEnv(): ReferenceServerEnv {
  const { BENCH_API_KEY: apiKey, BENCH_BODY: body, BENCH_PORT: port = '0', BENCH_PATH: path = '/api/v1/settings/gitea' } = process.env;
  if (!apiKey || body === undefined) {
    process.stderr.write('reference server: BENCH_API_KEY and BENCH_BODY must be set (bench/run.ts sets them)\n');
    process.exit(2);
  }
  return { body, expectedDigest: sha256(apiKey), host: '127.0.0.1', port: Number(port), path };
}

/** The line bench/run.ts waits for. */
export function announceReady(port: number): void {
  process.stdout.write(`READY ${port}\n`);
}

/**
 * Listens as the Express ceilings do (Node's default keep-alive raised as confhub raises it), says
 * READY with the port, and closes on SIGTERM.
 */
export function listenExpress(app: import('express').Express, { port, host }: { port: number; host: string }): void {
  const server = app.listen(port, host, (error?: Error) => {
    if (error) throw error;
    announceReady((server.address() as import('node:net').AddressInfo).port);
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

export const UNAUTHORIZED_BODY = '{"error":"Unauthorized"}';

/** What the bundle reference servers serve: a target's bundle behind its token (bench/pull.ts). */
export interface BundleServerEnv {
  /** The tar confhub answered, byte for byte. */
  readonly body: Buffer;
  /** sha256 of the target's token, as presented after `Bearer `. */
  readonly expectedDigest: Buffer;
  /** confhub's headers of the answer that describe the bundle (ETag, Cache-Control, …). */
  readonly headers: Readonly<Record<string, string>>;
  readonly host: string;
  readonly port: number;
  readonly path: string;
}

export function loadBundleServerEnv(): BundleServerEnv {
  const { BENCH_TOKEN: token, BENCH_BODY_FILE: bodyFile, BENCH_HEADERS: headers, BENCH_PORT: port = '0', BENCH_PATH: path } = process.env;
  if (!token || !bodyFile || !headers || !path) {
    process.stderr.write('bundle reference server: BENCH_TOKEN, BENCH_BODY_FILE, BENCH_HEADERS and BENCH_PATH must be set (bench/pull.ts sets them)\n');
    process.exit(2);
  }
  return {
    body: readFileSync(bodyFile),
    expectedDigest: sha256(token),
    headers: JSON.parse(headers) as Record<string, string>,
    host: '127.0.0.1',
    port: Number(port),
    path,
  };
}

/** confhub's own pattern for a Bearer credential. */
export const BEARER = /^Bearer +([\x21-\x7e]+) *$/i;
