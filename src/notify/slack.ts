/**
 * Slack incoming webhooks: Block Kit sections (mrkdwn text ≤ 3000 characters each, ≤ 50 blocks)
 * plus the top-level `text` that notifications and old clients show.
 *
 * Values cannot become mentions or links: `&`, `<` and `>` are entity-escaped (Slack's only
 * control characters: `<!channel>`, `<@U…>` and `<url|text>` all need a raw `<`), every text
 * object is `verbatim` (no automatic linking of names, URLs or mentions), and `@` is defused.
 */
import type { EventSummary } from './event-summary.js';
import {
  type ChatDialect,
  countSuffix,
  defuseMentions,
  type FormatOptions,
  instanceSuffix,
  MAX_EVENTS_SHOWN,
  moreEventsText,
  renderEvent,
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

export const SLACK_LIMITS = Object.freeze({ sectionText: 3000, blocks: 50 });
/** One event alone may use a whole section; in a burst each keeps to less, so the message stays readable. */
const BURST_EVENT_BUDGET = 1000;
/** Notifications show a line, not a page. */
const FALLBACK_BUDGET = 300;

export function escapeSlack(plain: string): string {
  return defuseMentions(plain).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export const SLACK_DIALECT: ChatDialect = Object.freeze({
  escapeText: escapeSlack,
  measure: utf16Units,
  titleLine: (title: string, tone: EventSummary['tone']) => `${TONE_ICONS[tone]} *${title}*`,
  lineBreak: '\n',
});

interface Section {
  readonly type: 'section';
  readonly text: { readonly type: 'mrkdwn'; readonly text: string; readonly verbatim: true };
}

function section(text: string): Section {
  return { type: 'section', text: { type: 'mrkdwn', text, verbatim: true } };
}

export function formatSlack(events: readonly NotifyEvent[], options?: FormatOptions): string {
  const summaries = summarize(events);
  const header = `*confhub*${escapeSlack(instanceSuffix(options) + countSuffix(summaries.length))}`;
  const perEvent = summaries.length === 1 ? SLACK_LIMITS.sectionText : BURST_EVENT_BUDGET;
  // Header, events, trailer: well under the block limit whatever the burst.
  const room = Math.min(MAX_EVENTS_SHOWN, SLACK_LIMITS.blocks - 2);
  const blocks: Section[] = [section(header)];
  for (const summary of summaries.slice(0, room)) {
    const text = renderEvent(summary, SLACK_DIALECT, perEvent);
    if (text === undefined) break;
    blocks.push(section(text));
  }
  const shown = blocks.length - 1;
  if (shown < summaries.length) blocks.push(section(escapeSlack(moreEventsText(summaries.length - shown))));
  return JSON.stringify({ text: fallbackText(summaries, options), blocks, unfurl_links: false, unfurl_media: false });
}

function fallbackText(summaries: readonly EventSummary[], options: FormatOptions | undefined): string {
  const first = summaries[0]?.title ?? '';
  const plain = summaries.length === 1 ? first : `${summaries.length} events, the first: ${first}`;
  return fitEscaped({ text: `confhub${instanceSuffix(options)}: ${plain}`, budget: FALLBACK_BUDGET, escapeText: escapeSlack, measure: utf16Units });
}

/** Slack's answers to an incoming webhook (a plain-text error token) that mean the webhook is gone or barred. */
const GONE = new Set([
  'channel_not_found',
  'channel_is_archived',
  'no_service',
  'no_team',
  'team_disabled',
  'invalid_token',
  'action_prohibited',
  'posting_to_general_channel_denied',
]);

/**
 * 200 with body `ok` is delivered. Slack's errors are a plain-text token: 400 (`invalid_payload`,
 * `no_text`, …) will fail again as sent, no retry; 403/404/410 with a token saying the webhook,
 * channel or workspace is gone or barred disable the webhook (any 410 too); 429 and 5xx are retried.
 */
export function judgeSlack(answer: DeliveryAnswer): DeliveryVerdict {
  const transport = judgeTransport(answer, 'Slack');
  if (transport !== undefined) return transport;
  const { status, body } = answer;
  const token = body.trim();
  if (status >= 200 && status < 300) {
    if (token === 'ok' || jsonObject(body)?.ok === true) return DELIVERED;
    const error = jsonObject(body)?.error;
    if (error !== undefined) return giveUp(`Slack answered HTTP ${status} with error ${quote(error)}`);
    // A proxy or captive portal answers 200 too: only Slack's own `ok` counts.
    return retryLater(`Slack answered HTTP ${status} without "ok" (${quote(token) || 'empty body'})`);
  }
  const named = /^[a-z_]{1,64}$/.test(token) ? token : undefined;
  const reason = `Slack answered HTTP ${status}${named === undefined ? '' : ` ${named}`}`;
  if (status === 410 || ((status === 403 || status === 404) && named !== undefined && GONE.has(named))) return disableEndpoint(reason);
  return giveUp(reason);
}
