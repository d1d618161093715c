/**
 * Turning event summaries into the text of one chat message, within a service's limit. A burst
 * of events becomes one message that lists each event and ends with "… and N more events" when
 * the limit (or readability) stops the list; a long key list ends with "and N more".
 *
 * The fitting is done on escaped text with the service's own measure, so a limit holds for the
 * bytes the service counts, whatever the keys contain.
 */
import { AppError } from '../core/errors.js';
import { type EventSummary, MAX_LIST_ITEMS, type SummaryList, summarizeEvent, type Tone } from './event-summary.js';
import type { NotifyEvent } from './notify-event.js';
import { cutCodePoints, fitEscaped, type Measure, plainLine, ZERO_WIDTH_SPACE } from './text-fit.js';

/** How one service writes text. */
export interface ChatDialect {
  /** Plain text → text the service shows literally (no markup, links or mentions). Per code point. */
  readonly escapeText: (plain: string) => string;
  readonly measure: Measure;
  /** The title line of an event from its escaped title (adds markup: icon, bold, colour). */
  readonly titleLine: (escapedTitle: string, tone: Tone) => string;
  /** Between the lines of one event. */
  readonly lineBreak: string;
}

export interface FormatOptions {
  /** Which confhub sent the message (host or deployment name), shown in the header. */
  readonly instance?: string;
}

export const TONE_ICONS: Readonly<Record<Tone, string>> = Object.freeze({ good: '✅', bad: '❌', warn: '⚠️', info: 'ℹ️' });

/** More events than this in one message read as noise; the rest are counted. */
export const MAX_EVENTS_SHOWN = 20;
const MAX_INSTANCE_CODE_POINTS = 80;
/** Below this, an event is not worth starting: the burst ends with "… and N more events". */
const MIN_EVENT_BUDGET = 100;

/**
 * `@` is followed by a zero-width space everywhere: no service can read `@everyone`, `@all`,
 * `@here` or `@13800000000` in a value as a mention, whatever its mention rules.
 */
export function defuseMentions(text: string): string {
  return text.replace(/@/g, `@${ZERO_WIDTH_SPACE}`);
}

/**
 * For the markdown of WeCom and DingTalk, which have no escape character: a zero-width space after
 * every `<` keeps a value from opening a tag (`<font>`, `<@userid>`), one after every `]` keeps it
 * from closing a `[text](url)` link, and `@` is defused. Per code point.
 */
export function defuseChatMarkdown(plain: string): string {
  return defuseMentions(plain).replace(/</g, `<${ZERO_WIDTH_SPACE}`).replace(/]/g, `]${ZERO_WIDTH_SPACE}`);
}

/** The summaries of a burst; a message needs at least one event. */
export function summarize(events: readonly NotifyEvent[]): EventSummary[] {
  if (events.length === 0)
    throw new AppError('INTERNAL_ERROR', { message: 'Cannot format a chat message', details: 'a chat message needs at least one event' });
  return events.map(summarizeEvent);
}

/** ` · <instance>` (plain), or '' when no instance is named. */
export function instanceSuffix(options: FormatOptions | undefined): string {
  const instance = options?.instance;
  return instance === undefined || instance === '' ? '' : ` · ${cutCodePoints(plainLine(instance), MAX_INSTANCE_CODE_POINTS)}`;
}

/** `: 12 events` for a burst, '' for one event. */
export function countSuffix(count: number): string {
  return count > 1 ? `: ${count} events` : '';
}

export function moreEventsText(count: number): string {
  return `… and ${count} more event${count === 1 ? '' : 's'}`;
}

export function metaText(summary: EventSummary): string {
  return [summary.revision === undefined ? undefined : `revision ${summary.revision}`, `event #${summary.id}`].filter(Boolean).join(' · ');
}

/** The escaped, marked-up title line of an event, within the budget. */
export function fitTitle(summary: EventSummary, dialect: ChatDialect, budget: number): string {
  const overhead = dialect.measure(dialect.titleLine('', summary.tone));
  const title = fitEscaped({ text: summary.title, budget: budget - overhead, escapeText: dialect.escapeText, measure: dialect.measure });
  return title === '' ? '' : dialect.titleLine(title, summary.tone);
}

export interface BodyOptions {
  readonly dialect: ChatDialect;
  /** For all lines, the break before each included. */
  readonly budget: number;
}

/**
 * The escaped lines below an event's title, within the budget (the break before each line
 * included). Facts (errors, reasons) come first when space runs short; lists share what is left.
 */
export function fitBody(summary: EventSummary, options: BodyOptions): string[] {
  const { dialect, budget } = options;
  const { measure, escapeText, lineBreak } = dialect;
  const gap = measure(lineBreak);
  let left = budget;
  const take = (plain: string): string | undefined => {
    const line = fitEscaped({ text: plain, budget: left - gap, escapeText, measure });
    if (line === '') return undefined;
    left -= measure(line) + gap;
    return line;
  };
  const facts = summary.facts.map(take).filter((line): line is string => line !== undefined);
  const lists: string[] = [];
  summary.lists.forEach((list, index) => {
    const share = Math.floor(left / (summary.lists.length - index));
    const line = fitList(list, dialect, share - gap);
    if (line === undefined) return;
    lists.push(line);
    left -= measure(line) + gap;
  });
  return [...lists, ...facts];
}

/**
 * `label: a, b, c` — or `label (500): a, b and 498 more` when not all fit, or `label (500)` when
 * none does. Only the items that can be shown (at most MAX_LIST_ITEMS) are escaped and measured.
 */
export function fitList(list: SummaryList, dialect: ChatDialect, budget: number): string | undefined {
  const { escapeText, measure } = dialect;
  const { total } = list;
  if (total === 0) return undefined;
  const comma = escapeText(', ');
  const commaSize = measure(comma);
  const shownHead = escapeText(`${list.label}: `);
  const countedHead = escapeText(`${list.label} (${total}): `);
  const more = (omitted: number): string => escapeText(` and ${omitted} more`);
  const items: string[] = [];
  let itemsSize = 0;
  let best: string | undefined;
  for (let index = 0; index < Math.min(list.items.length, MAX_LIST_ITEMS); index += 1) {
    const escaped = escapeText(list.items[index] ?? '');
    itemsSize += measure(escaped) + (index > 0 ? commaSize : 0);
    items.push(escaped);
    const omitted = total - items.length;
    const line = omitted === 0 ? shownHead + items.join(comma) : countedHead + items.join(comma) + more(omitted);
    const size = omitted === 0 ? measure(shownHead) + itemsSize : measure(countedHead) + itemsSize + measure(more(omitted));
    if (size <= budget) best = line;
    else if (itemsSize > budget) break;
  }
  if (best !== undefined) return best;
  const bare = escapeText(`${list.label} (${total})`);
  return measure(bare) <= budget ? bare : undefined;
}

export interface PackInput {
  readonly summaries: readonly EventSummary[];
  readonly dialect: ChatDialect;
  /** The whole message text, header and trailer included. */
  readonly budget: number;
  /** Escaped, marked-up first line. */
  readonly header: string;
  /** Between events. */
  readonly separator: string;
}

/**
 * One text message for a burst: header, then each event (title, lines, meta) while it fits,
 * then "… and N more events". Room for that trailer is kept until the last event is placed.
 */
export function packText(input: PackInput): string {
  const { summaries, dialect, budget, header, separator } = input;
  const { measure, escapeText } = dialect;
  const separatorSize = measure(separator);
  const trailerRoom = separatorSize + measure(escapeText(moreEventsText(summaries.length)));
  const perEvent = summaries.length === 1 ? budget : Math.max(MIN_EVENT_BUDGET, Math.floor(budget / Math.min(summaries.length, 4)));
  const parts = [header];
  let used = measure(header);
  for (const [index, summary] of summaries.entries()) {
    if (index >= MAX_EVENTS_SHOWN) break;
    const last = index === summaries.length - 1;
    const available = budget - used - separatorSize - (last ? 0 : trailerRoom);
    if (available < Math.min(MIN_EVENT_BUDGET, budget)) break;
    const block = renderEvent(summary, dialect, Math.min(available, perEvent));
    if (block === undefined) break;
    parts.push(block);
    used += separatorSize + measure(block);
  }
  const shown = parts.length - 1;
  if (shown < summaries.length) parts.push(escapeText(moreEventsText(summaries.length - shown)));
  return parts.join(separator);
}

/**
 * Title, lines and meta of one event as one block of text, within the budget. The meta line
 * (revision, event id) is placed first so that every event shown can be told apart, then the
 * title, then what room is left goes to the lines.
 */
export function renderEvent(summary: EventSummary, dialect: ChatDialect, budget: number): string | undefined {
  const { measure, escapeText, lineBreak } = dialect;
  const meta = fitEscaped({ text: metaText(summary), budget, escapeText, measure });
  const metaRoom = meta === '' ? 0 : measure(meta) + measure(lineBreak);
  const title = fitTitle(summary, dialect, budget - metaRoom);
  if (title === '') return undefined;
  const lines = fitBody(summary, { dialect, budget: budget - metaRoom - measure(title) });
  return [title, ...lines, ...(meta === '' ? [] : [meta])].join(lineBreak);
}
