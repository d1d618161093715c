/**
 * One GET against a service URL for the connection tests: the status code, or why nothing
 * answered. Unlike the sync's health probe (reload/http.ts) it does not retry until 2xx: a
 * connection test reports what the service says right now, within one timeout.
 *
 * URLs from config.ini may carry credentials (`http://user:pass@host/…`) or tokens in the query.
 * Messages only ever show safeUrl(), and whatever the network stack says is scrubbed of the
 * URL's secret parts before it is shown, since its wording is not ours to control.
 */
import { AppError } from '../core/errors.js';
import { safeUrl } from '../core/safe-url.js';
import { isTimeout, networkReason } from '../reload/http.js';

export interface HttpProbeResult {
  readonly status: number;
}

/** Resolves with the status of any HTTP answer; rejects with TIMEOUT or SERVICE_UNREACHABLE when none came. */
export type HttpProbe = (url: string, options: { readonly timeoutMs: number }) => Promise<HttpProbeResult>;

export interface CreateHttpProbeInput {
  /** Defaults to Node's global fetch. */
  readonly fetch?: typeof fetch;
}

function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The parts of a URL that must never be shown: userinfo, query, fragment. */
function secretParts(url: string): string[] {
  try {
    const parsed = new URL(url);
    const parts = [
      parsed.username,
      parsed.password,
      decoded(parsed.username),
      decoded(parsed.password),
      parsed.search,
      parsed.search.slice(1),
      parsed.hash,
      parsed.hash.slice(1),
    ];
    for (const value of parsed.searchParams.values()) parts.push(value);
    // Short fragments ("a", "1") would shred the message without protecting anything.
    return [...new Set(parts.filter((p) => p.length >= 3))].sort((a, b) => b.length - a.length);
  } catch {
    return [];
  }
}

/** Removes the URL (and each of its secret parts) from text that came from elsewhere. */
export function scrubUrlSecrets(text: string, url: string): string {
  let out = text.split(url).join(safeUrl(url));
  for (const part of secretParts(url)) out = out.split(part).join('[redacted]');
  return out;
}

export function createHttpProbe(input: CreateHttpProbeInput = {}): HttpProbe {
  const fetchImpl = input.fetch ?? globalThis.fetch;
  return async (url, { timeoutMs }) => {
    const shown = safeUrl(url);
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch (error) {
      throw new AppError('SERVICE_UNREACHABLE', { message: 'Invalid URL', details: 'the URL cannot be parsed', cause: error });
    }
    // fetch refuses URLs with userinfo; they become a basic auth header, as a browser would send.
    const headers: Record<string, string> = {};
    if (parsed.username !== '' || parsed.password !== '') {
      headers.authorization = `Basic ${Buffer.from(`${decoded(parsed.username)}:${decoded(parsed.password)}`).toString('base64')}`;
      parsed.username = '';
      parsed.password = '';
    }
    let response: Response;
    try {
      // A redirect is an answer: following it could leave the service (and carry the credentials along).
      response = await fetchImpl(parsed.toString(), { method: 'GET', headers, redirect: 'manual', signal: AbortSignal.timeout(Math.max(1, timeoutMs)) });
    } catch (error) {
      if (isTimeout(error)) {
        throw new AppError('TIMEOUT', { message: 'No answer in time', details: `GET ${shown}: no answer within ${timeoutMs} ms`, data: { url: shown } });
      }
      throw new AppError('SERVICE_UNREACHABLE', { details: scrubUrlSecrets(`GET ${shown}: ${networkReason(error)}`, url), data: { url: shown } });
    }
    try {
      // An unread body keeps the connection busy.
      await response.body?.cancel();
    } catch {
      /* the body is of no interest */
    }
    return { status: response.status };
  };
}
