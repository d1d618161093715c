/**
 * Feishu (飞书) / Lark custom bots: `{"msg_type":"text","content":{"text"}}`, the whole request
 * body at most 20 KB.
 *
 * A text message mentions people only through `<at user_id="…">` tags: a zero-width space after
 * every `<` from a value keeps it from opening one (`<at user_id="all">` included), and `@` is
 * defused.
 */
import { createHmac } from 'node:crypto';
import type { Tone } from './event-summary.js';
import { type ChatDialect, countSuffix, defuseMentions, type FormatOptions, instanceSuffix, packText, summarize, TONE_ICONS } from './chat-text.js';
import { type CodedAnswerRules, type DeliveryAnswer, type DeliveryVerdict, judgeCodedAnswer } from './delivery-verdict.js';
import type { NotifyEvent } from './notify-event.js';
import { jsonStringBytes, ZERO_WIDTH_SPACE } from './text-fit.js';

/** 20 KB read as 20 000 bytes, the stricter reading. */
export const FEISHU_LIMITS = Object.freeze({ bodyBytes: 20_000 });

/** Room for `timestamp` and `sign` when the bot checks signatures (see signFeishuBody). */
const SIGNATURE_ROOM = 128;
const EMPTY_BODY_BYTES = Buffer.byteLength(JSON.stringify({ msg_type: 'text', content: { text: '' } }), 'utf8');

export function escapeFeishu(plain: string): string {
  return defuseMentions(plain).replace(/</g, `<${ZERO_WIDTH_SPACE}`);
}

export const FEISHU_DIALECT: ChatDialect = Object.freeze({
  escapeText: escapeFeishu,
  // The limit is on the body: count what the text takes inside the JSON string.
  measure: jsonStringBytes,
  titleLine: (title: string, tone: Tone) => `${TONE_ICONS[tone]} ${title}`,
  lineBreak: '\n',
});

export function formatFeishu(events: readonly NotifyEvent[], options?: FormatOptions): string {
  const summaries = summarize(events);
  const header = escapeFeishu(`confhub${instanceSuffix(options)}${countSuffix(summaries.length)}`);
  const budget = FEISHU_LIMITS.bodyBytes - EMPTY_BODY_BYTES - SIGNATURE_ROOM;
  const text = packText({ summaries, dialect: FEISHU_DIALECT, budget, header, separator: '\n\n' });
  return JSON.stringify({ msg_type: 'text', content: { text } });
}

export interface FeishuSignature {
  /** The bot's signing secret. */
  readonly secret: string;
  /** Now, in epoch seconds: Feishu refuses a timestamp more than an hour away. */
  readonly timestampSeconds: number;
}

/**
 * The body for a bot with signature verification (签名校验): `timestamp` and
 * `sign` = base64(HMAC-SHA256(key `${timestamp}\n${secret}`, empty message)) added to it.
 */
export function signFeishuBody(body: string, signature: FeishuSignature): string {
  const { secret, timestampSeconds } = signature;
  const timestamp = String(timestampSeconds);
  const sign = createHmac('sha256', `${timestamp}\n${secret}`).update('').digest('base64');
  return JSON.stringify({ timestamp, sign, ...(JSON.parse(body) as object) });
}

const FEISHU_ANSWERS: CodedAnswerRules = Object.freeze({
  service: 'Feishu',
  // `code`/`msg` today, `StatusCode`/`StatusMessage` from older bots.
  codeFields: ['code', 'StatusCode'],
  messageFields: ['msg', 'StatusMessage'],
  retry: new Map<number, number | undefined>([[11232, 60_000]]),
  // "incoming webhook access token invalid": the bot was removed or the URL is wrong.
  gone: new Set([19001]),
});

/**
 * Feishu answers `{code, msg}` (older bots `{StatusCode, StatusMessage}`): 0 is delivered; 11232
 * (frequency limited) is retried; 19001 (access token invalid) disables the webhook; 19021
 * (signature), 19024 (keyword), 9499 (bad request) and other codes will fail again as sent.
 */
export function judgeFeishu(answer: DeliveryAnswer): DeliveryVerdict {
  return judgeCodedAnswer(answer, FEISHU_ANSWERS);
}
