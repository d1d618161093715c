/**
 * The few Docker Engine API calls the reload driver makes, over node:http on the engine's unix
 * socket. dockerode loads docker-modem, ssh2, gRPC and protobuf for its other features, about
 * 25 MiB of resident memory in every thread that imports it (both of confhub's); these calls
 * need none of it. Unversioned paths: the engine answers with its own API version, as dockerode
 * does by default.
 *
 * Errors keep dockerode's shape, which the driver maps: `statusCode` and the engine's
 * `{message}` as `json` for refusals, node's `code` (ENOENT, ECONNREFUSED…) for a socket that is
 * not there, and an abort when the caller's signal fires.
 */
import { request, type IncomingMessage } from 'node:http';

export interface EngineCallInput {
  readonly socketPath: string;
  readonly method: 'GET' | 'POST' | 'DELETE';
  /** Path and query, e.g. `/containers/web/json`. */
  readonly path: string;
  readonly body?: unknown;
  readonly signal: AbortSignal;
}

export interface EngineApiError extends Error {
  statusCode?: number;
  json?: { message?: string } | null;
  code?: string;
}

/** Engine answers are small JSON documents (inspect, list); a larger one is not an engine talking. */
const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

function send({ socketPath, method, path, body, signal }: EngineCallInput): Promise<IncomingMessage> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        method,
        path,
        // Host only fills the Host header; the connection goes to the socket. No keep-alive agent:
        // nothing lingers between two reloads.
        host: 'localhost',
        agent: false,
        signal,
        headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      resolve,
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** Calls `onData` with each chunk until the answer ends; rejects when it breaks off (a destroyed socket, an abort). */
function consume(response: IncomingMessage, onData: (chunk: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    response.on('data', onData);
    response.on('end', resolve);
    response.on('error', reject);
    response.on('close', () => {
      if (!response.complete) reject(new Error('the engine closed the connection before the answer ended'));
    });
  });
}

async function readAll(response: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  await consume(response, (chunk) => {
    size += chunk.length;
    if (size > MAX_ANSWER_BYTES) response.destroy(new Error(`the engine's answer exceeds ${MAX_ANSWER_BYTES} bytes`));
    else chunks.push(chunk);
  });
  return Buffer.concat(chunks).toString('utf8');
}

function refusal(statusCode: number, text: string): EngineApiError {
  let json: { message?: string } | null = null;
  try {
    json = JSON.parse(text) as { message?: string };
  } catch {
    // not JSON: the status line says enough
  }
  const error: EngineApiError = new Error(json?.message ?? (text.trim() || `HTTP ${statusCode}`));
  error.statusCode = statusCode;
  error.json = json;
  return error;
}

/** One call; resolves with the parsed JSON answer (undefined for an empty one), rejects on a status >= 400. */
export async function engineCall<T>(input: EngineCallInput): Promise<T> {
  const response = await send(input);
  const text = await readAll(response);
  const status = response.statusCode ?? 0;
  if (status >= 400) throw refusal(status, text);
  if (text === '' || !(response.headers['content-type'] ?? '').includes('json')) return (text === '' ? undefined : text) as T;
  return JSON.parse(text) as T;
}

/**
 * A call whose answer is the output stream of a process (exec start without a TTY): the payload
 * of each stdout and stderr frame goes to `onPayload`, in order, until the engine closes the
 * stream, which it does when the process exits.
 */
export async function engineStream(input: EngineCallInput, onPayload: (payload: Buffer) => void): Promise<void> {
  const response = await send(input);
  const status = response.statusCode ?? 0;
  if (status >= 400) throw refusal(status, await readAll(response));
  await consume(response, createDemuxer(onPayload));
}

/**
 * Docker's multiplexed stream: frames of [stream type, 0, 0, 0, size (uint32 BE)] and `size`
 * bytes of payload, split across chunks anywhere.
 */
export function createDemuxer(onPayload: (payload: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 8) {
      const size = pending.readUInt32BE(4);
      if (pending.length < 8 + size) break;
      onPayload(pending.subarray(8, 8 + size));
      pending = pending.subarray(8 + size);
    }
  };
}
