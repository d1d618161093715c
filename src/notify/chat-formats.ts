/**
 * The chat kinds of webhook: for each, how a burst of events becomes one request body and how the
 * service's answer is judged. The sender picks an adapter by the webhook's kind; the `standard`
 * kind is signed (standard-webhooks.ts) and judged by `judgeStandard`.
 */
import type { FormatOptions } from './chat-text.js';
import type { DeliveryAnswer, DeliveryVerdict } from './delivery-verdict.js';
import { formatDingtalk, judgeDingtalk } from './dingtalk.js';
import { formatDiscord, judgeDiscord } from './discord.js';
import { formatFeishu, judgeFeishu } from './feishu.js';
import type { NotifyEvent } from './notify-event.js';
import { formatSlack, judgeSlack } from './slack.js';
import { formatWecom, judgeWecom } from './wecom.js';

export type { FormatOptions } from './chat-text.js';
export type { DeliveryAnswer, DeliveryVerdict } from './delivery-verdict.js';
export { judgeStandard } from './delivery-verdict.js';

export const CHAT_KINDS = ['slack', 'discord', 'wecom', 'dingtalk', 'feishu'] as const;
export type ChatKind = (typeof CHAT_KINDS)[number];

export interface ChatAdapter {
  readonly kind: ChatKind;
  /** The request's Content-Type (DingTalk asks for the charset to be named). */
  readonly contentType: string;
  /** One message for 1..N events (a burst coalesced), as the JSON request body. */
  readonly format: (events: readonly NotifyEvent[], options?: FormatOptions) => string;
  readonly judge: (answer: DeliveryAnswer) => DeliveryVerdict;
}

const JSON_UTF8 = 'application/json; charset=utf-8';

export const CHAT_ADAPTERS: Readonly<Record<ChatKind, ChatAdapter>> = Object.freeze({
  slack: Object.freeze({ kind: 'slack', contentType: JSON_UTF8, format: formatSlack, judge: judgeSlack }),
  discord: Object.freeze({ kind: 'discord', contentType: JSON_UTF8, format: formatDiscord, judge: judgeDiscord }),
  wecom: Object.freeze({ kind: 'wecom', contentType: JSON_UTF8, format: formatWecom, judge: judgeWecom }),
  dingtalk: Object.freeze({ kind: 'dingtalk', contentType: JSON_UTF8, format: formatDingtalk, judge: judgeDingtalk }),
  feishu: Object.freeze({ kind: 'feishu', contentType: JSON_UTF8, format: formatFeishu, judge: judgeFeishu }),
});

export function isChatKind(kind: string): kind is ChatKind {
  return (CHAT_KINDS as readonly string[]).includes(kind);
}
