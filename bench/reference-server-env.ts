/**
 * Shared start-up of the two reference servers (Express ceiling, node:http floor): what they
 * serve and the key they accept come from the bench process through the environment, and the
 * expected key's sha256 is computed once, as confhub caches it. Not used while answering.
 */
import { createHash } from 'node:crypto';

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

export const UNAUTHORIZED_BODY = '{"error":"Unauthorized"}';
