/**
 * Judging a receiver's answer: delivered, or failed — and then whether to retry later, and whether
 * the endpoint is gone for good (disable it). Each chat service says success its own way; the
 * standard kind follows the Standard Webhooks recommendations.
 *
 * Reasons end up in the delivery log: they name the status and the service's error code, never
 * more than a short, single-line piece of the body.
 */
import { cutCodePoints, plainLine } from './text-fit.js';

export interface DeliveryAnswer {
  readonly status: number;
  /** The first 4 KB of the body, as text. */
  readonly body: string;
  /** From a `Retry-After` header, when the answer had one. */
  readonly retryAfterMs?: number;
}

export type DeliveryVerdict =
  | { readonly ok: true }
  | { readonly ok: false; readonly retry: boolean; readonly disable?: boolean; readonly reason: string; readonly retryAfterMs?: number };

export const DELIVERED: DeliveryVerdict = Object.freeze({ ok: true });

const MAX_QUOTE_CODE_POINTS = 120;

export function retryLater(reason: string, retryAfterMs?: number): DeliveryVerdict {
  return retryAfterMs === undefined ? { ok: false, retry: true, reason } : { ok: false, retry: true, reason, retryAfterMs };
}

export function giveUp(reason: string): DeliveryVerdict {
  return { ok: false, retry: false, reason };
}

export function disableEndpoint(reason: string): DeliveryVerdict {
  return { ok: false, retry: false, disable: true, reason };
}

/** A piece of a service's answer fit for a log line. */
export function quote(value: unknown): string {
  return cutCodePoints(plainLine(String(value)).trim(), MAX_QUOTE_CODE_POINTS);
}

/** The body as a JSON object, or undefined. */
export function jsonObject(body: string): Readonly<Record<string, unknown>> | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What every kind shares: a redirect is never followed (the URL should be updated) and is retried;
 * 408, 429 and 5xx are the receiver's load or trouble, retried; 1xx never ends a request properly.
 * Undefined when the kind's own rules decide.
 */
export function judgeTransport(answer: DeliveryAnswer, service: string): DeliveryVerdict | undefined {
  const { status, retryAfterMs } = answer;
  if (status >= 300 && status < 400) return retryLater(`${service} answered HTTP ${status} (a redirect, not followed: update the webhook URL)`);
  if (status === 429) return retryLater(`${service} answered HTTP 429 (rate limited)`, retryAfterMs);
  if (status === 408) return retryLater(`${service} answered HTTP 408 (request timeout)`, retryAfterMs);
  if (status >= 500) return retryLater(`${service} answered HTTP ${status} (server error)`, retryAfterMs);
  if (status < 200) return retryLater(`${service} answered HTTP ${status}`);
  return undefined;
}

/**
 * The standard kind (Standard Webhooks, "Delivery success and failure"): 2xx delivered; 410 Gone
 * disables the endpoint; anything else fails and is retried on the schedule, with the status named.
 */
export function judgeStandard(answer: DeliveryAnswer): DeliveryVerdict {
  const { status } = answer;
  if (status >= 200 && status < 300) return DELIVERED;
  if (status === 410) return disableEndpoint('the receiver answered HTTP 410 Gone: it no longer accepts webhooks');
  return judgeTransport(answer, 'the receiver') ?? retryLater(`the receiver answered HTTP ${status}`, answer.retryAfterMs);
}

export interface CodedAnswerRules {
  readonly service: string;
  /** Where the service puts its result code (the first numeric one counts) and its message. */
  readonly codeFields: readonly string[];
  readonly messageFields: readonly string[];
  /** Codes worth retrying, each with the wait the service's rule implies (or none). */
  readonly retry: ReadonlyMap<number, number | undefined>;
  /** Codes saying the webhook itself is gone or invalid. */
  readonly gone: ReadonlySet<number>;
}

/**
 * Services that answer a JSON result code, WeCom's and DingTalk's `errcode`, Feishu's `code`: code 0
 * in a 200 body is delivered, and nothing else is. A 2xx without a code, or another 2xx than 200,
 * is not the service answering (a proxy, a portal): retried. Codes neither retried nor gone will
 * fail again as sent: no retry.
 */
export function judgeCodedAnswer(answer: DeliveryAnswer, rules: CodedAnswerRules): DeliveryVerdict {
  const transport = judgeTransport(answer, rules.service);
  if (transport !== undefined) return transport;
  const { status, body } = answer;
  const json = jsonObject(body) ?? {};
  const code = rules.codeFields.map((field) => json[field]).find((value): value is number => typeof value === 'number');
  if (code === undefined) {
    if (status >= 200 && status < 300) return retryLater(`${rules.service} answered HTTP ${status} without a result code (${quote(body) || 'empty body'})`);
    return giveUp(`${rules.service} answered HTTP ${status}`);
  }
  if (code === 0 && status === 200) return DELIVERED;
  if (code === 0) return retryLater(`${rules.service} answered HTTP ${status} with code 0, not 200 (not the service's answer; is something in between?)`);
  const message = rules.messageFields.map((field) => json[field]).find((value) => typeof value === 'string');
  const reason = `${rules.service} answered HTTP ${status}, code ${code}${message === undefined ? '' : ` (${quote(message)})`}`;
  if (rules.retry.has(code)) return retryLater(reason, answer.retryAfterMs ?? rules.retry.get(code));
  if (rules.gone.has(code)) return disableEndpoint(reason);
  return giveUp(reason);
}
