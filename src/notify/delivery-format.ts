/**
 * How a delivery becomes a request and how its answer is judged, by endpoint kind: a Standard
 * Webhooks message (one event, signed) or a chat message (a burst, in the service's own shape).
 */
import { CHAT_ADAPTERS, isChatKind, judgeStandard } from './chat-formats.js';
import type { DeliveryFormat } from './outbox.js';
import { signStandard, standardPayload } from './standard-webhooks.js';

export interface DeliveryFormatOptions {
  /** The User-Agent of every attempt. */
  readonly userAgent: string;
  /** Named in chat messages (which confhub speaks), when set. */
  readonly instance?: string;
}

export function createDeliveryFormat({ userAgent, instance }: DeliveryFormatOptions): DeliveryFormat {
  return {
    request({ kind, events, messageId, timestampSeconds, secrets }) {
      if (isChatKind(kind)) {
        const adapter = CHAT_ADAPTERS[kind];
        return { body: adapter.format(events, instance ? { instance } : undefined), headers: { 'content-type': adapter.contentType, 'user-agent': userAgent } };
      }
      // One event per standard message: the outbox never gathers them.
      const body = standardPayload(events[0]!);
      return { body, headers: { ...signStandard({ msgId: messageId, timestampSeconds, body, secrets }), 'user-agent': userAgent } };
    },
    judge(kind, answer) {
      return isChatKind(kind) ? CHAT_ADAPTERS[kind].judge(answer) : judgeStandard(answer);
    },
  };
}
