/**
 * WeCom (企业微信) group robots: `{"msgtype":"markdown","markdown":{"content"}}`, content at most
 * 4096 bytes of UTF-8.
 *
 * WeCom markdown mentions people with `<@userid>` and colours with `<font>`; a zero-width space
 * after every `<` from a value keeps it from opening either, and one after every `]` keeps a value
 * from forming a `[text](url)` link. Only our own `<font color>` tags are real markup.
 */
import type { Tone } from './event-summary.js';
import { type ChatDialect, countSuffix, defuseChatMarkdown, type FormatOptions, instanceSuffix, packText, summarize, TONE_ICONS } from './chat-text.js';
import { type CodedAnswerRules, type DeliveryAnswer, type DeliveryVerdict, judgeCodedAnswer } from './delivery-verdict.js';
import type { NotifyEvent } from './notify-event.js';
import { utf8Bytes } from './text-fit.js';

export const WECOM_LIMITS = Object.freeze({ markdownContentBytes: 4096, textContentBytes: 2048 });

/** WeCom's three markdown colours: green, orange-red, grey. */
const FONT_COLORS: Readonly<Record<Tone, string>> = Object.freeze({ good: 'info', bad: 'warning', warn: 'warning', info: 'comment' });

/** 45009: over the robot's rate (20 messages a minute); -1: system busy. */
const RATE_LIMITED = 45009;
const BUSY = -1;
/** 93000: invalid webhook URL (the robot was removed or the key is wrong). */
const GONE = 93000;
const RATE_WINDOW_MS = 60_000;

export const WECOM_DIALECT: ChatDialect = Object.freeze({
  escapeText: defuseChatMarkdown,
  measure: utf8Bytes,
  titleLine: (title: string, tone: Tone) => `<font color="${FONT_COLORS[tone]}">${TONE_ICONS[tone]} ${title}</font>`,
  lineBreak: '\n',
});

export function formatWecom(events: readonly NotifyEvent[], options?: FormatOptions): string {
  const summaries = summarize(events);
  const header = `**confhub**${defuseChatMarkdown(instanceSuffix(options) + countSuffix(summaries.length))}`;
  const content = packText({ summaries, dialect: WECOM_DIALECT, budget: WECOM_LIMITS.markdownContentBytes, header, separator: '\n\n' });
  return JSON.stringify({ msgtype: 'markdown', markdown: { content } });
}

/**
 * WeCom answers HTTP 200 with `{errcode, errmsg}`: 0 is delivered; 45009 (rate) and -1 (busy) are
 * retried; 93000 (invalid webhook URL) disables the webhook; other codes (40058 invalid parameter,
 * 40008 invalid message type, …) will fail again as sent, no retry. A 200 that is not JSON is
 * someone else answering (a proxy): retried.
 */
export function judgeWecom(answer: DeliveryAnswer): DeliveryVerdict {
  return judgeCodedAnswer(answer, WECOM_ANSWERS);
}

const WECOM_ANSWERS: CodedAnswerRules = Object.freeze({
  service: 'WeCom',
  codeFields: ['errcode'],
  messageFields: ['errmsg'],
  retry: new Map([
    [RATE_LIMITED, RATE_WINDOW_MS],
    [BUSY, undefined],
  ]),
  gone: new Set([GONE]),
});
