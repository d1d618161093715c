/**
 * What a chat message says about one event, in plain text: a title (who did what, and how it
 * ended), lists (keys, variables, services) and a few facts (error codes, reasons). The chat
 * formatters escape and fit this to each service; nothing here knows a service's markup.
 *
 * Event data comes back from storage, so every field is read defensively: a missing or mistyped
 * field reads as `?` instead of breaking a delivery.
 */
import type { NotifyEvent } from './notify-event.js';
import { cutCodePoints, plainLine } from './text-fit.js';

export type Tone = 'good' | 'bad' | 'warn' | 'info';

export interface SummaryList {
  readonly label: string;
  /** The first items only (at most MAX_LIST_ITEMS): no message shows more. */
  readonly items: readonly string[];
  /** How many there are in all. */
  readonly total: number;
}

export interface EventSummary {
  readonly id: number;
  readonly at: number;
  readonly tone: Tone;
  readonly title: string;
  readonly lists: readonly SummaryList[];
  readonly facts: readonly string[];
  /** Short revision hash, when the event is about one and the title does not name it already. */
  readonly revision?: string;
}

/** More items than this in one list read as noise; the rest are counted. */
export const MAX_LIST_ITEMS = 25;
/** Longest name or key shown; a longer one is cut (a single key must not fill a message). */
export const MAX_ITEM_CODE_POINTS = 80;
const MAX_REASON_CODE_POINTS = 200;
const SHORT_HASH = 7;

type Data = Readonly<Record<string, unknown>>;

export function summarizeEvent(event: NotifyEvent): EventSummary {
  const data = event.data as Data;
  const base = { id: event.id, at: event.at };
  const summarize = SUMMARIZERS[event.type];
  if (summarize !== undefined) return { ...base, ...summarize(data) };
  return { ...base, tone: 'info', title: `Event ${item(event.type)}`, lists: [], facts: [] };
}

/** Who made a change, as people say it: `API key key:ab12…`, `hand edit`, `system (cli)`. */
export function actorLabel(actor: unknown): string {
  const ref = record(actor);
  const id = text(ref.id);
  switch (ref.type) {
    case 'api':
      return `API key ${cutCodePoints(id, 9)}`;
    case 'file':
      return 'hand edit';
    case 'system':
      return id === '?' || id === 'system' ? 'system' : `system (${cutCodePoints(id, 40)})`;
    default:
      return 'unknown actor';
  }
}

export function shortRevision(revision: unknown): string {
  return Array.from(text(revision)).slice(0, SHORT_HASH).join('');
}

type Summarized = Omit<EventSummary, 'id' | 'at'>;

const SUMMARIZERS: Readonly<Record<string, (data: Data) => Summarized>> = Object.freeze({
  'settings.changed': (data) => ({
    tone: 'info',
    title: `Settings changed by ${actorLabel(data.actor)}${sourceNote(data.source)}`,
    lists: [list('keys', data.keys)],
    facts: [],
    revision: shortRevision(data.revision),
  }),
  'env.changed': (data) => {
    const variables = list('variables', data.variables);
    return {
      tone: 'info',
      title: `Environment variables changed by ${actorLabel(data.actor)}${sourceNote(data.source)}`,
      lists: [variables.total > 0 ? variables : list('scopes', data.scopes)],
      facts: [],
      revision: shortRevision(data.revision),
    };
  },
  'sync.applied': (data) => syncRun(data, 'applied'),
  'sync.failed': (data) => syncRun(data, 'failed'),
  'sync.rolled_back': (data) => syncRun(data, 'rolled_back'),
  'sync.rollback_failed': (data) => ({
    tone: 'bad',
    title: `Rollback to revision ${shortRevision(data.toRevision)} failed: config.ini still holds revision ${shortRevision(data.failedRevision)}`,
    lists: [],
    facts: errorFacts(data.error),
  }),
  'service.reloaded': (data) => ({
    tone: 'good',
    title: `Service ${item(data.target)} reloaded`,
    lists: [],
    facts: [`reload: ${reason(data.reload)}`],
    revision: shortRevision(data.revision),
  }),
  'service.unhealthy': (data) => ({
    tone: 'bad',
    title: `Service ${item(data.target)} unhealthy: ${item(data.code)}`,
    lists: [],
    facts: [reason(data.reason)],
    revision: shortRevision(data.revision),
  }),
  'source.invalid': (data) => ({
    tone: 'bad',
    title: `config.ini is invalid${typeof data.line === 'number' ? ` at line ${data.line}` : ''}: ${item(data.code)}; the last valid revision stays in use`,
    lists: [],
    facts: [reason(data.reason)],
    revision: shortRevision(data.revision),
  }),
  'worker.state': (data) => {
    const restarts = typeof data.restarts === 'number' ? data.restarts : 0;
    const ready = data.state === 'ready';
    return {
      tone: ready ? 'good' : 'warn',
      title: ready ? `Sync worker ready${restarts > 0 ? ` after ${plural(restarts, 'restart')}` : ''}` : 'Sync worker stopped',
      lists: [],
      facts: [],
    };
  },
  'webhook.disabled': (data) => ({
    tone: 'warn',
    title: `Webhook ${item(data.webhook)} disabled: ${reason(data.reason)}`,
    lists: [],
    facts: originOf(data.url),
  }),
  'webhook.test': (data) => ({
    tone: 'info',
    title: 'Test notification from confhub',
    lists: [],
    facts: [`webhook ${item(data.webhook)}`],
  }),
});

const RUN_TITLES = {
  applied: { tone: 'good', verb: 'applied' },
  failed: { tone: 'bad', verb: 'failed' },
  rolled_back: { tone: 'warn', verb: 'rolled back' },
} as const;

function syncRun(data: Data, outcome: keyof typeof RUN_TITLES): Summarized {
  const targets = Array.isArray(data.targets) ? data.targets.map(record) : [];
  // An applied revision lists what it touched; unchanged services are only counted.
  const shown = targets.filter((target) => target.changed === true || target.error != null || target.state !== 'in_sync');
  const unchanged = targets.length - shown.length;
  const { tone, verb } = RUN_TITLES[outcome];
  const reach = outcome === 'applied' ? (shown.length > 0 ? ` to ${plural(shown.length, 'service')}` : '; no service changed') : '';
  return {
    tone,
    title: `Revision ${shortRevision(data.revision)} by ${actorLabel(data.actor)} ${verb}${reach}${runSourceNote(data.source)}`,
    lists: shown.length > 0 ? [{ label: 'services', items: shown.slice(0, MAX_LIST_ITEMS).map(targetOutcome), total: shown.length }] : [],
    facts: [...errorFacts(data.error), ...(unchanged > 0 && shown.length > 0 ? [`${plural(unchanged, 'service')} unchanged`] : [])],
  };
}

const STATE_WORDS: Readonly<Record<string, string>> = Object.freeze({
  in_sync: 'applied',
  pending_reload: 'waiting for reload',
  pending_write: 'waiting for disk space',
  failed: 'failed',
  rolled_back: 'rolled back',
});

function targetOutcome(target: Data): string {
  const state = text(target.state);
  const error = record(target.error);
  let word = STATE_WORDS[state] ?? state;
  if (state === 'in_sync') word = target.changed !== true ? 'unchanged' : target.reloaded === true ? 'reloaded' : 'applied';
  const notes = [...(target.error == null ? [] : [item(error.code)]), ...(target.healthy === false ? ['unhealthy'] : [])];
  return `${item(target.target)} ${word}${notes.length > 0 ? ` (${notes.join(', ')})` : ''}`;
}

const SOURCE_NOTES: Readonly<Record<string, string>> = Object.freeze({
  rollback: ' (rollback)',
  auto_rollback: ' (automatic rollback)',
  first_boot: ' (first boot)',
  seal: ' (sealing secrets)',
  startup: ' (at start-up)',
  cli: ' (command line)',
  rekey: ' (re-keying secrets)',
  upgrade: ' (upgrade)',
});

function sourceNote(source: unknown): string {
  return typeof source === 'string' ? (SOURCE_NOTES[source] ?? '') : '';
}

const RUN_SOURCE_NOTES: Readonly<Record<string, string>> = Object.freeze({
  reload: ' (reload requested)',
  retry: ' (retry)',
  startup: ' (at start-up)',
});

function runSourceNote(source: unknown): string {
  return typeof source === 'string' ? (RUN_SOURCE_NOTES[source] ?? '') : '';
}

function errorFacts(error: unknown): string[] {
  if (error == null) return [];
  const plain = record(error);
  return [`error ${item(plain.code)}: ${reason(plain.message)}`];
}

/** Only the origin of a URL: a chat webhook's path is its credential. */
function originOf(url: unknown): string[] {
  if (typeof url !== 'string') return [];
  try {
    const { origin } = new URL(url);
    return origin === 'null' ? [] : [`endpoint ${item(origin)}`];
  } catch {
    return [];
  }
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function record(value: unknown): Data {
  return typeof value === 'object' && value !== null ? (value as Data) : {};
}

function text(value: unknown): string {
  if (typeof value === 'string') return value === '' ? '?' : plainLine(value);
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return '?';
}

/** A name, key or code: one line, cut to a readable length. */
function item(value: unknown): string {
  return cutCodePoints(text(value), MAX_ITEM_CODE_POINTS);
}

function reason(value: unknown): string {
  return cutCodePoints(text(value), MAX_REASON_CODE_POINTS);
}

function list(label: string, value: unknown): SummaryList {
  const all: readonly unknown[] = Array.isArray(value) ? value : [];
  return { label, items: all.slice(0, MAX_LIST_ITEMS).map(item), total: all.length };
}
