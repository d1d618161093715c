/**
 * DingTalk (钉钉) custom robots: `{"msgtype":"markdown","markdown":{"title","text"}}`. The text is
 * kept within 5000 characters (DingTalk documents no exact markdown limit); the title is what the
 * chat list and notifications show.
 *
 * There is no `at` field: a robot message pings nobody unless `at` names them. Every `@` from a
 * value is defused too, so one that looks like a mobile number cannot read as a mention, and
 * `<` and `]` are defused as for WeCom (tags, links).
 * Both title and text contain "confhub", so a robot whose security setting is the keyword
 * "confhub" accepts every message.
 */
import { createHmac } from 'node:crypto';
import type { Tone } from './event-summary.js';
import { type ChatDialect, countSuffix, defuseChatMarkdown, type FormatOptions, instanceSuffix, packText, summarize, TONE_ICONS } from './chat-text.js';
import { type CodedAnswerRules, type DeliveryAnswer, type DeliveryVerdict, judgeCodedAnswer } from './delivery-verdict.js';
import type { NotifyEvent } from './notify-event.js';
import { fitEscaped, utf16Units } from './text-fit.js';

export const DINGTALK_LIMITS = Object.freeze({ text: 5000, title: 64 });

export const DINGTALK_DIALECT: ChatDialect = Object.freeze({
  escapeText: defuseChatMarkdown,
  measure: utf16Units,
  titleLine: (title: string, tone: Tone) => `${TONE_ICONS[tone]} **${title}**`,
  // DingTalk markdown joins single newlines; two trailing spaces make the break.
  lineBreak: '  \n',
});

export function formatDingtalk(events: readonly NotifyEvent[], options?: FormatOptions): string {
  const summaries = summarize(events);
  const header = `#### confhub${defuseChatMarkdown(instanceSuffix(options) + countSuffix(summaries.length))}`;
  const text = packText({ summaries, dialect: DINGTALK_DIALECT, budget: DINGTALK_LIMITS.text, header, separator: '\n\n' });
  const first = summaries[0]?.title ?? '';
  const title = fitEscaped({
    text: summaries.length === 1 ? `confhub: ${first}` : `confhub: ${summaries.length} events`,
    budget: DINGTALK_LIMITS.title,
    escapeText: defuseChatMarkdown,
    measure: utf16Units,
  });
  return JSON.stringify({ msgtype: 'markdown', markdown: { title, text } });
}

export interface DingtalkSignature {
  /** The robot's signing secret (`SEC…`). */
  readonly secret: string;
  /** Now, in epoch ms: DingTalk refuses signatures older than an hour. */
  readonly timestampMs: number;
}

/**
 * The URL of one request to a robot with the "signature" (加签) security setting: `timestamp` and
 * `sign` = base64(HMAC-SHA256(secret, `${timestamp}\n${secret}`)) added to the query.
 */
export function signDingtalkUrl(url: string, signature: DingtalkSignature): string {
  const { secret, timestampMs } = signature;
  const sign = createHmac('sha256', secret).update(`${timestampMs}\n${secret}`, 'utf8').digest('base64');
  const signed = new URL(url);
  signed.searchParams.set('timestamp', String(timestampMs));
  signed.searchParams.set('sign', sign);
  return signed.toString();
}

/** 130101: over 20 messages a minute, after which DingTalk throttles the robot for 10 minutes. */
const THROTTLE_MS = 10 * 60_000;

const DINGTALK_ANSWERS: CodedAnswerRules = Object.freeze({
  service: 'DingTalk',
  codeFields: ['errcode'],
  messageFields: ['errmsg'],
  retry: new Map<number, number | undefined>([
    [130101, THROTTLE_MS],
    [660026, THROTTLE_MS],
    [-1, undefined],
  ]),
  // "token is not exist": the robot was removed or the access token is wrong.
  gone: new Set([300001, 300005]),
});

/**
 * DingTalk answers HTTP 200 with `{errcode, errmsg}`: 0 is delivered; 130101 (and 660026) are
 * rate limits, retried after the throttle; -1 (busy) is retried; 300001/300005 (token does not
 * exist) disable the webhook; 310000 (keyword, signature or IP allow-list refused) and other codes
 * will fail again as sent, no retry.
 */
export function judgeDingtalk(answer: DeliveryAnswer): DeliveryVerdict {
  return judgeCodedAnswer(answer, DINGTALK_ANSWERS);
}
