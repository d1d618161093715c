/**
 * One webhook delivery attempt: a POST that connects only to an address the policy allows.
 *
 * The check happens when connecting, on the resolved addresses, and the socket is pinned to the
 * address that was checked: a name checked once and resolved again by the HTTP client could
 * answer differently the second time (DNS rebinding). Every record of the name is checked; one
 * refused record refuses the delivery, since a rebinding name mixes a harmless record with the
 * target. Each attempt resolves and checks again: no agent, so no connection outlives its attempt
 * and none is reused for a name that now resolves elsewhere.
 *
 * node:http ignores HTTP_PROXY / HTTPS_PROXY: a proxy would connect to the target by itself,
 * after the check, and defeat it.
 *
 * The result is a value, never a throw: the outbox decides what to retry. `blocked` is permanent
 * (the same URL is refused the next time too); `failed` is worth retrying; `answered` is any
 * HTTP status, redirects included (a redirect is the receiver's answer, never followed: it could
 * point anywhere, and the policy judged this URL only).
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { type ClientRequest, type IncomingMessage, request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { type Clock, systemClock } from '../core/clock.js';
import { safeUrl } from '../core/safe-url.js';
import type { AddressPolicy } from './address-policy.js';
import { normaliseHostName } from './address-policy.js';
import { parseIp } from './ip-address.js';

export interface ResolvedAddress {
  readonly address: string;
  /** 4 or 6. */
  readonly family: number;
}

/** Every A/AAAA record of a name, in the resolver's order. */
export type HostLookup = (hostname: string) => Promise<readonly ResolvedAddress[]>;

export const defaultLookup: HostLookup = (hostname) => dnsLookup(hostname, { all: true, order: 'verbatim' });

export type FailureCode = 'timeout' | 'dns' | 'connect' | 'reset' | 'tls' | 'aborted' | 'other';

export type PostResult =
  | {
      readonly kind: 'answered';
      readonly status: number;
      readonly headers: { readonly retryAfter?: string; readonly contentType?: string };
      /** The first maxBodyBytes of the body, as UTF-8 (a character cut at the limit is left out). */
      readonly body: string;
      /** The receiver sent more than maxBodyBytes; the rest was not read. */
      readonly truncated: boolean;
      readonly durationMs: number;
      /** The address the request went to. */
      readonly address: string;
    }
  | { readonly kind: 'blocked'; readonly reason: string; readonly durationMs: number }
  | { readonly kind: 'failed'; readonly code: FailureCode; readonly message: string; readonly durationMs: number };

export interface PostInput {
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body: string | Uint8Array;
  /** The whole attempt: resolving, connecting, sending and reading the answer. Default 10 s. */
  readonly timeoutMs?: number;
  /** How messages name the URL (a chat webhook's path is its token); default without userinfo and query. */
  readonly shownUrl?: string;
  /** Ends the attempt at once (a stopping confhub): it fails as `aborted`. */
  readonly signal?: AbortSignal;
}

export interface GuardedPost {
  post(input: PostInput): Promise<PostResult>;
}

export interface GuardedPostOptions {
  readonly policy: AddressPolicy;
  /** Default: dns.lookup, all records, in the resolver's order. */
  readonly lookup?: HostLookup;
  readonly clock?: Clock;
  /** Bytes of the answer's body kept; the rest is not read. Default 4096. */
  readonly maxBodyBytes?: number;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_BODY_BYTES = 4096;

/** Node's and OpenSSL's codes for a failed TLS handshake or certificate check. */
function isTlsCode(code: string): boolean {
  return /^(ERR_TLS_|ERR_SSL_|EPROTO$)/.test(code) || /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/.test(code);
}

function failureCode(error: unknown): FailureCode {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string') return 'other';
  if (isTlsCode(code)) return 'tls';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED') return 'reset';
  if (['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EADDRNOTAVAIL'].includes(code)) return 'connect';
  if (code === 'ETIMEDOUT') return 'timeout';
  return 'other';
}

function errorText(error: unknown): string {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  const text = typeof message === 'string' && message !== '' ? message : String(error);
  return typeof code === 'string' && !text.includes(code) ? `${code}: ${text}` : text;
}

/** `user:password` for Basic authentication, undefined without userinfo, null when it does not decode. */
function userinfoOf(url: URL): string | undefined | null {
  if (url.username === '' && url.password === '') return undefined;
  try {
    return `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
  } catch {
    return null;
  }
}

/** A lookup for net.connect that answers the checked address, whatever it is asked. */
function pinnedLookup(pinned: ResolvedAddress): LookupFunction {
  return (_hostname, options, callback) => {
    // With autoSelectFamily (Node 20's default) net asks for every address at once.
    if (options.all) callback(null, [{ address: pinned.address, family: pinned.family }]);
    else callback(null, pinned.address, pinned.family);
  };
}

function headerValue(response: IncomingMessage, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export function createGuardedPost({
  policy,
  lookup = defaultLookup,
  clock = systemClock,
  maxBodyBytes = DEFAULT_MAX_BODY_BYTES,
}: GuardedPostOptions): GuardedPost {
  /** Where the request may go, or why it may not: literals are checked as they are, names on every record. */
  async function resolveChecked(url: URL): Promise<{ pinned: ResolvedAddress } | { blocked: string } | { failed: string }> {
    const host = normaliseHostName(url.hostname);
    const literal = parseIp(host);
    if (literal) {
      const verdict = policy.check({ host, address: host });
      return verdict.allowed ? { pinned: { address: host, family: literal.family } } : { blocked: verdict.reason };
    }
    let records: readonly ResolvedAddress[];
    try {
      records = await lookup(host);
    } catch (error) {
      return { failed: `cannot resolve ${host}: ${errorText(error)}` };
    }
    const first = records[0];
    if (!first) return { failed: `cannot resolve ${host}: no address` };
    for (const record of records) {
      const verdict = policy.check({ host, address: record.address });
      if (!verdict.allowed) return { blocked: verdict.reason };
    }
    return { pinned: first };
  }

  function attempt(input: PostInput, start: number): Promise<PostResult> {
    const shown = input.shownUrl ?? safeUrl(input.url);
    const timeoutMs = input.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const elapsed = (): number => clock.now() - start;
    const blocked = (reason: string): PostResult => ({ kind: 'blocked', reason: `POST ${shown}: ${reason}`, durationMs: elapsed() });
    const failed = (code: FailureCode, message: string): PostResult => ({ kind: 'failed', code, message: `POST ${shown}: ${message}`, durationMs: elapsed() });

    let url: URL;
    try {
      url = new URL(input.url);
    } catch {
      return Promise.resolve(blocked('not a URL'));
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return Promise.resolve(blocked(`only http and https URLs are delivered, not ${url.protocol}`));
    const auth = userinfoOf(url);
    if (auth === null) return Promise.resolve(blocked("the URL's user name or password is not valid percent-encoding"));
    if (input.signal?.aborted) return Promise.resolve(failed('aborted', 'aborted'));

    return new Promise<PostResult>((resolve) => {
      let settled = false;
      let req: ClientRequest | undefined;
      const finish = (result: PostResult): void => {
        if (settled) return;
        settled = true;
        clock.clearTimeout(timer);
        // The signal outlives the attempt (one per outbox run): its listener must not.
        input.signal?.removeEventListener('abort', onAbort);
        // Whatever is still open (an unread body, a request waiting for its answer) goes now.
        req?.destroy();
        resolve(result);
      };
      const timer = clock.setTimeout(() => finish(failed('timeout', `no answer within ${timeoutMs} ms`)), timeoutMs);
      timer.unref();
      const onAbort = (): void => finish(failed('aborted', 'aborted'));
      input.signal?.addEventListener('abort', onAbort, { once: true });

      const send = (pinned: ResolvedAddress): void => {
        const isHttps = url.protocol === 'https:';
        const host = normaliseHostName(url.hostname);
        const options: RequestOptions & { servername?: string; rejectUnauthorized?: boolean } = {
          method: 'POST',
          hostname: host,
          port: url.port === '' ? undefined : Number(url.port),
          path: `${url.pathname}${url.search}`,
          // Last, so it wins over a caller's Content-Length in any case (node sets headers case-insensitively).
          headers: { ...input.headers, 'content-length': String(Buffer.byteLength(input.body)) },
          agent: false,
          lookup: pinnedLookup(pinned),
          ...(auth !== undefined ? { auth } : {}),
        };
        if (isHttps) {
          // The certificate is verified against the name, not the pinned address (SNI must not be an IP).
          if (parseIp(host) === undefined) options.servername = host;
          options.rejectUnauthorized = true;
        }
        try {
          req = (isHttps ? httpsRequest : httpRequest)(options);
        } catch (error) {
          finish(failed('other', errorText(error)));
          return;
        }
        req.on('error', (error) => finish(failed(failureCode(error), errorText(error))));
        req.on('response', (response) => readAnswer(response, pinned.address));
        req.end(input.body);
      };

      const readAnswer = (response: IncomingMessage, address: string): void => {
        const chunks: Buffer[] = [];
        let kept = 0;
        const answer = (truncated: boolean): void => {
          const decoder = new StringDecoder('utf8');
          // write() holds back a character the limit cut in two; end() would turn it into U+FFFD.
          const body = decoder.write(Buffer.concat(chunks).subarray(0, maxBodyBytes));
          const retryAfter = headerValue(response, 'retry-after');
          const contentType = headerValue(response, 'content-type');
          finish({
            kind: 'answered',
            status: response.statusCode ?? 0,
            headers: { ...(retryAfter === undefined ? {} : { retryAfter }), ...(contentType === undefined ? {} : { contentType }) },
            body,
            truncated,
            durationMs: elapsed(),
            address,
          });
        };
        response.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          kept += chunk.length;
          // Stop reading (and close the socket in finish) once past the limit: a receiver must not make us download a huge body.
          if (kept > maxBodyBytes) answer(true);
        });
        response.on('end', () => answer(false));
        response.on('error', (error) => finish(failed(failureCode(error), `the answer (HTTP ${response.statusCode}) broke off: ${errorText(error)}`)));
      };

      resolveChecked(url).then(
        (checked) => {
          if (settled) return;
          if ('blocked' in checked) finish(blocked(checked.blocked));
          else if ('failed' in checked) finish(failed('dns', checked.failed));
          else {
            try {
              send(checked.pinned);
            } catch (error) {
              finish(failed('other', errorText(error)));
            }
          }
        },
        (error: unknown) => finish(failed('other', errorText(error))),
      );
    });
  }

  return {
    post(input) {
      const start = clock.now();
      return attempt(input, start).catch((error: unknown) => ({
        kind: 'failed' as const,
        code: 'other' as const,
        message: `POST ${safeUrl(input.url)}: ${errorText(error)}`,
        durationMs: clock.now() - start,
      }));
    },
  };
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const TIME = String.raw`(\d{2}):(\d{2}):(\d{2})`;
/** IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT` */
const IMF_FIXDATE = new RegExp(String.raw`^[a-z]{3}, (\d{2}) ([a-z]{3}) (\d{4}) ${TIME} GMT$`, 'i');
/** Obsolete RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT` */
const RFC_850 = new RegExp(String.raw`^[a-z]{6,9}, (\d{2})-([a-z]{3})-(\d{2}) ${TIME} GMT$`, 'i');
/** Obsolete asctime: `Sun Nov  6 08:49:37 1994` */
const ASCTIME = new RegExp(String.raw`^[a-z]{3} ([a-z]{3}) ([ \d]\d) ${TIME} (\d{4})$`, 'i');

interface DateParts {
  year: number;
  month: string;
  day: string;
  hour: string;
  minute: string;
  second: string;
}

function dateParts(value: string, nowMs: number): DateParts | undefined {
  let m = IMF_FIXDATE.exec(value);
  if (m) return { day: m[1]!, month: m[2]!, year: Number(m[3]), hour: m[4]!, minute: m[5]!, second: m[6]! };
  m = RFC_850.exec(value);
  if (m) {
    // RFC 9110 §5.6.7: a two-digit year more than 50 years ahead is in the past century.
    const nowYear = new Date(nowMs).getUTCFullYear();
    let year = Math.floor(nowYear / 100) * 100 + Number(m[3]);
    if (year > nowYear + 50) year -= 100;
    return { day: m[1]!, month: m[2]!, year, hour: m[4]!, minute: m[5]!, second: m[6]! };
  }
  m = ASCTIME.exec(value);
  if (m) return { month: m[1]!, day: m[2]!.trim(), hour: m[3]!, minute: m[4]!, second: m[5]!, year: Number(m[6]) };
  return undefined;
}

/**
 * Retry-After as milliseconds from `nowMs`: delta-seconds or an HTTP-date (the three forms of
 * RFC 9110); a date in the past is 0; undefined when absent or unreadable. How long is too long
 * is the caller's business.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  // Not valid delta-seconds, but a receiver that writes -1 means "now", not "never".
  if (/^-\d+$/.test(text)) return 0;
  if (/^\d+$/.test(text)) {
    const ms = Number(text) * 1000;
    return Number.isFinite(ms) ? ms : undefined;
  }
  const parts = dateParts(text, nowMs);
  if (!parts) return undefined;
  const month = MONTHS.indexOf(parts.month.toLowerCase());
  const [day, hour, minute, second] = [parts.day, parts.hour, parts.minute, parts.second].map(Number) as [number, number, number, number];
  if (month < 0 || hour > 23 || minute > 59 || second > 60) return undefined;
  const at = Date.UTC(parts.year, month, day, hour, minute, Math.min(second, 59));
  // Date.UTC rolls 31 Feb over into March: such a date is not a date.
  if (new Date(at).getUTCDate() !== day) return undefined;
  return Math.max(0, at - nowMs);
}

/** Longest endpoint URL accepted; longer ones are almost surely a mistake (or an attack on logs). */
export const MAX_ENDPOINT_URL_LENGTH = 2048;

/**
 * Why an endpoint URL cannot be a webhook endpoint, or undefined when it can. For the API, when
 * a webhook is created: obviously bad URLs are refused there instead of failing every delivery.
 * A literal address is judged by `policy` (the allow list counts); names are judged at delivery,
 * since what they resolve to may change. Never shows credentials or the query of the URL.
 */
export function endpointUrlProblem(url: string, policy: AddressPolicy): string | undefined {
  if (url.length > MAX_ENDPOINT_URL_LENGTH) return `the URL is longer than ${MAX_ENDPOINT_URL_LENGTH} characters`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'not a URL';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return `the scheme must be http or https, not ${parsed.protocol.replace(/:$/, '')}`;
  if (parsed.hostname === '') return 'the URL has no host';
  if (userinfoOf(parsed) === null) return "the URL's user name or password is not valid percent-encoding";
  // A fragment is never sent: a URL carrying one is a mistake (or pasted from a browser).
  if (parsed.hash !== '' || url.includes('#')) return 'the URL has a fragment (#…), which is never sent';
  const host = normaliseHostName(parsed.hostname);
  if (parseIp(host)) {
    const verdict = policy.check({ host, address: host });
    if (!verdict.allowed) return verdict.reason;
  }
  return undefined;
}
