/**
 * Discord webhooks: a short `content` line and one embed per event (colour by outcome, timestamp
 * of the event), within Discord's limits: content ≤ 2000, ≤ 10 embeds, title ≤ 256,
 * description ≤ 4096, footer ≤ 2048, and all embed text together ≤ 6000.
 *
 * `allowed_mentions: {parse: []}` means no value can ping anyone; markdown in values is
 * backslash-escaped (masked links, `<@…>`, `<#…>`, emphasis), and `@` is defused so
 * `@everyone` does not even read as a mention.
 */
import type { EventSummary, Tone } from './event-summary.js';
import {
  type ChatDialect,
  countSuffix,
  defuseMentions,
  fitBody,
  fitTitle,
  type FormatOptions,
  instanceSuffix,
  metaText,
  moreEventsText,
  summarize,
  TONE_ICONS,
} from './chat-text.js';
import {
  DELIVERED,
  type DeliveryAnswer,
  type DeliveryVerdict,
  disableEndpoint,
  giveUp,
  jsonObject,
  judgeTransport,
  quote,
  retryLater,
} from './delivery-verdict.js';
import type { NotifyEvent } from './notify-event.js';
import { fitEscaped, utf16Units } from './text-fit.js';

export const DISCORD_LIMITS = Object.freeze({
  content: 2000,
  embeds: 10,
  title: 256,
  description: 4096,
  fields: 25,
  fieldName: 256,
  fieldValue: 1024,
  footer: 2048,
  author: 256,
  embedTotal: 6000,
});

const COLORS: Readonly<Record<Tone, number>> = Object.freeze({ good: 0x2eb67d, bad: 0xe01e5a, warn: 0xecb22e, info: 0x36c5f0 });
/** Discord's unknown-webhook and invalid-webhook-token codes: the URL will never work again. */
const GONE_CODES = new Set([10015, 50027]);

/** Backslash before every character Discord markdown acts on inside a line. */
export function escapeDiscord(plain: string): string {
  return defuseMentions(plain).replace(/[\\*_~`|<>[\]()]/g, '\\$&');
}

export const DISCORD_DIALECT: ChatDialect = Object.freeze({
  escapeText: escapeDiscord,
  measure: utf16Units,
  titleLine: (title: string, tone: Tone) => `${TONE_ICONS[tone]} ${title}`,
  lineBreak: '\n',
});

/** Footers are not markdown: plain text, mentions defused all the same. */
const escapeFooter = defuseMentions;

interface Embed {
  readonly title: string;
  readonly description?: string;
  readonly color: number;
  readonly timestamp: string;
  readonly footer: { readonly text: string };
}

export function formatDiscord(events: readonly NotifyEvent[], options?: FormatOptions): string {
  const summaries = summarize(events);
  const shown = summaries.slice(0, DISCORD_LIMITS.embeds);
  const share = Math.floor(DISCORD_LIMITS.embedTotal / shown.length);
  const embeds = shown.map((summary) => embedOf(summary, share, options));
  const more = summaries.length - embeds.length;
  const head = `**confhub**${escapeDiscord(instanceSuffix(options) + countSuffix(summaries.length))}`;
  const content = more > 0 ? `${head}\n${escapeDiscord(moreEventsText(more))}` : head;
  return JSON.stringify({ content, embeds, allowed_mentions: { parse: [] } });
}

/** One event within its share of the 6000 characters all embeds may hold together. */
function embedOf(summary: EventSummary, share: number, options: FormatOptions | undefined): Embed {
  const footer = fitEscaped({
    text: metaText(summary) + instanceSuffix(options),
    budget: Math.min(DISCORD_LIMITS.footer, Math.floor(share / 4)),
    escapeText: escapeFooter,
    measure: utf16Units,
  });
  const title = fitTitle(summary, DISCORD_DIALECT, Math.min(DISCORD_LIMITS.title, Math.floor(share / 2)));
  const room = Math.min(DISCORD_LIMITS.description, share - utf16Units(title) - utf16Units(footer));
  // The first line needs no break before it: give the body that one separator back.
  const description = fitBody(summary, { dialect: DISCORD_DIALECT, budget: room + 1 }).join('\n');
  return {
    title,
    ...(description === '' ? {} : { description }),
    color: COLORS[summary.tone],
    timestamp: new Date(summary.at).toISOString(),
    footer: { text: footer === '' ? 'confhub' : footer },
  };
}

/**
 * 204 (or 200 with `?wait=true`) is delivered, and no other status: Discord answers nothing else
 * for a message it took, so another 2xx came from something in between (a proxy, a portal) and is
 * retried. 429 is retried after Discord's `Retry-After` or the JSON `retry_after` (seconds). An
 * unknown webhook (10015) or a wrong token (50027) disables it; other 4xx (a form-body error, code
 * 50035…) will fail again as sent, no retry.
 */
export function judgeDiscord(answer: DeliveryAnswer): DeliveryVerdict {
  const { status, body } = answer;
  const json = jsonObject(body);
  if (status === 429) {
    const seconds = json?.retry_after;
    const fromBody = typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0 ? Math.ceil(seconds * 1000) : undefined;
    return retryLater('Discord answered HTTP 429 (rate limited)', answer.retryAfterMs ?? fromBody);
  }
  const transport = judgeTransport(answer, 'Discord');
  if (transport !== undefined) return transport;
  if (status === 204 || status === 200) return DELIVERED;
  if (status > 200 && status < 300) return retryLater(`Discord answered HTTP ${status}, not 204 or 200 (not Discord's answer; is something in between?)`);
  const code = typeof json?.code === 'number' ? json.code : undefined;
  const detail = code === undefined ? '' : ` code ${code}${typeof json?.message === 'string' ? ` (${quote(json.message)})` : ''}`;
  const reason = `Discord answered HTTP ${status}${detail}`;
  if (code !== undefined && GONE_CODES.has(code)) return disableEndpoint(reason);
  return giveUp(reason);
}
