/**
 * How a delivery becomes a request and how its answer is judged, by endpoint kind: a Standard
 * Webhooks message (one event, signed) or a chat message (a burst, in the service's own shape).
 */
import { CHAT_ADAPTERS, isChatKind, judgeStandard } from './chat-formats.js';
import type { DeliveryFormat } from './outbox.js';
import { signDingtalkUrl } from './dingtalk.js';
import { signFeishuBody } from './feishu.js';
import { signStandard, standardPayload } from './standard-webhooks.js';

export interface DeliveryFormatOptions {
  /** The User-Agent of every attempt. */
  readonly userAgent: string;
  /** Named in chat messages (which confhub speaks), when set. */
  readonly instance?: string;
}

export function createDeliveryFormat({ userAgent, instance }: DeliveryFormatOptions): DeliveryFormat {
  return {
    request({ kind, url, events, messageId, nowMs, secrets }) {
      const timestampSeconds = Math.floor(nowMs / 1000);
      if (isChatKind(kind)) {
        const adapter = CHAT_ADAPTERS[kind];
        const body = adapter.format(events, instance ? { instance } : undefined);
        const headers = { 'content-type': adapter.contentType, 'user-agent': userAgent };
        // A robot with its signature check on gets its own signature, made fresh for each attempt.
        const [secret] = secrets;
        if (secret !== undefined && kind === 'dingtalk') return { url: signDingtalkUrl(url, { secret, timestampMs: nowMs }), body, headers };
        if (secret !== undefined && kind === 'feishu') return { url, body: signFeishuBody(body, { secret, timestampSeconds }), headers };
        return { url, body, headers };
      }
      // One event per standard message: the outbox never gathers them.
      const body = standardPayload(events[0]!);
      return { url, body, headers: { ...signStandard({ msgId: messageId, timestampSeconds, body, secrets }), 'user-agent': userAgent } };
    },
    judge(kind, answer) {
      return isChatKind(kind) ? CHAT_ADAPTERS[kind].judge(answer) : judgeStandard(answer);
    },
  };
}
