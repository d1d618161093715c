/**
 * HTTP reload hooks (`reload = http:POST:URL`) and health probes (`health = http:URL`), with
 * Node's global fetch. Each request is cut by AbortSignal.timeout.
 *
 * URLs may carry credentials (`http://user:pass@127.0.0.1:81/reload`) or tokens in the query;
 * messages and logs only ever show origin and path (see safeUrl).
 */
import { sleep, systemClock, type Clock } from '../core/clock.js';
import { AppError } from '../core/errors.js';
import { safeUrl } from '../core/safe-url.js';

export interface HttpCallOptions {
  readonly timeoutMs: number;
  /** What messages show of the URL; default safeUrl(url). A templated URL brings its own (no secret values). */
  readonly shown?: string;
}

export interface ProbeHealthOptions extends HttpCallOptions {
  /** Pause between two probes while the service is not answering 2xx yet. */
  readonly intervalMs?: number;
  /**
   * How long the answers must stay 2xx, every probe in a row, before the service counts as
   * healthy (a reloaded server's old workers may answer for a moment and then stop). 0: the
   * first 2xx. Probed at least every third of it.
   */
  readonly stableMs?: number;
  /**
   * Times the pauses and the overall budget; each request's own timeout is real time, since it
   * guards real I/O. Default the system clock.
   */
  readonly clock?: Clock;
}

/**
 * fetch refuses URLs with userinfo ("Request cannot be constructed from a URL that includes
 * credentials"); they become a basic auth header instead.
 */
function requestParts(url: string, code: 'RELOAD_FAILED' | 'HEALTH_FAILED'): { url: string; headers: Record<string, string> } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new AppError(code, { message: 'Invalid URL', details: 'the URL cannot be parsed', cause: error });
  }
  const headers: Record<string, string> = {};
  if (parsed.username !== '' || parsed.password !== '') {
    const credentials = `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`;
    headers.authorization = `Basic ${Buffer.from(credentials).toString('base64')}`;
    parsed.username = '';
    parsed.password = '';
  }
  return { url: parsed.toString(), headers };
}

/** fetch's own timeout (AbortSignal.timeout) or an abort. */
export function isTimeout(error: unknown): boolean {
  const name = (error as { name?: string } | undefined)?.name;
  return name === 'TimeoutError' || name === 'AbortError';
}

/** undici reports "fetch failed" with the real reason (ECONNREFUSED, ENOTFOUND, …) on error.cause. */
export function networkReason(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  return cause?.code ?? cause?.message ?? (error as Error | undefined)?.message ?? String(error);
}

async function discardBody(response: Response): Promise<void> {
  // An unread body keeps the connection (and the process) busy.
  try {
    await response.body?.cancel();
  } catch {
    /* the body is of no interest */
  }
}

/** POST to a reload hook; anything but 2xx within the timeout is RELOAD_FAILED (TIMEOUT / SERVICE_UNREACHABLE when nothing answered). */
export async function postReload(url: string, { timeoutMs, shown = safeUrl(url) }: HttpCallOptions): Promise<void> {
  const request = requestParts(url, 'RELOAD_FAILED');
  let response: Response;
  try {
    // redirect: 'manual' — a reload hook that redirects is misconfigured; following it could
    // replay the POST somewhere else.
    response = await fetch(request.url, { method: 'POST', headers: request.headers, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    if (isTimeout(error)) {
      throw new AppError('TIMEOUT', {
        message: 'Reload hook did not answer in time',
        details: `POST ${shown}: no answer within ${timeoutMs} ms`,
        data: { url: shown },
        cause: error,
      });
    }
    throw new AppError('SERVICE_UNREACHABLE', {
      message: 'Reload hook unreachable',
      details: `POST ${shown}: ${networkReason(error)}`,
      data: { url: shown },
      cause: error,
    });
  }
  await discardBody(response);
  if (response.status < 200 || response.status > 299) {
    throw new AppError('RELOAD_FAILED', {
      message: `Reload hook answered ${response.status}`,
      details: `POST ${shown}: HTTP ${response.status}`,
      data: { url: shown, status: response.status },
    });
  }
}

/**
 * GET until the answers have been 2xx for stableMs in a row, for at most timeoutMs; HEALTH_FAILED
 * with the last status or error otherwise. A failing probe starts the window again.
 */
export async function probeHealth(url: string, options: ProbeHealthOptions): Promise<void> {
  const { timeoutMs, clock = systemClock, stableMs = 0, shown = safeUrl(url) } = options;
  const intervalMs = options.intervalMs ?? 250;
  const windowStepMs = Math.max(1, Math.min(intervalMs, Math.ceil(stableMs / 3)));
  const request = requestParts(url, 'HEALTH_FAILED');
  const deadline = clock.now() + timeoutMs;
  let last = 'no answer yet';
  let goodSince: number | undefined;
  for (;;) {
    const remaining = deadline - clock.now();
    if (remaining <= 0) break;
    try {
      const response = await fetch(request.url, { headers: request.headers, redirect: 'manual', signal: AbortSignal.timeout(remaining) });
      await discardBody(response);
      if (response.status >= 200 && response.status <= 299) {
        goodSince ??= clock.now();
        if (clock.now() - goodSince >= stableMs) return;
      } else {
        goodSince = undefined;
        last = `HTTP ${response.status}`;
      }
    } catch (error) {
      goodSince = undefined;
      last = isTimeout(error) ? 'no answer (timed out)' : networkReason(error);
    }
    const wait = Math.min(goodSince === undefined ? intervalMs : windowStepMs, deadline - clock.now());
    if (wait <= 0) break;
    await sleep(clock, wait, { keepAlive: true });
  }
  if (goodSince !== undefined) last = `2xx for ${clock.now() - goodSince} ms only`;
  throw new AppError('HEALTH_FAILED', {
    message: stableMs > 0 ? 'Health endpoint did not stay 2xx' : 'Health endpoint did not answer 2xx',
    details: `GET ${shown}: not 2xx${stableMs > 0 ? ` for ${stableMs} ms in a row` : ''} within ${timeoutMs} ms; last: ${last}`,
    data: { url: shown },
  });
}
