/**
 * Webhook endpoints, kept in SQLite by the main thread. The URL and the signing secrets are sealed
 * with the master key (a chat service's webhook URL is itself the credential); what the API shows of
 * a URL never holds userinfo, a query, or a chat service's token path.
 */
import { randomBytes } from 'node:crypto';
import type { Database } from 'better-sqlite3';
import { AppError, type FieldIssue } from '../core/errors.js';
import { EVENT_TYPES } from '../events/event-types.js';
import { openValue, sealValue, type Keyring } from '../secrets/secret-box.js';
import { generateWebhookSecret, isWebhookSecret } from './standard-webhooks.js';

export const WEBHOOK_KINDS = ['standard', 'slack', 'discord', 'wecom', 'dingtalk', 'feishu'] as const;
export type WebhookKind = (typeof WEBHOOK_KINDS)[number];

const MAX_URL_LENGTH = 2048;
const MAX_DESCRIPTION_LENGTH = 500;
/** Kinds whose service checks a signature made with the robot's own secret (DingTalk 加签, Feishu 签名校验). */
const SIGNED_BY_SERVICE: ReadonlySet<WebhookKind> = new Set(['dingtalk', 'feishu']);
const SERVICE_SECRET = /^[\x21-\x7e]{1,256}$/;

/** Why a secret cannot sign for this kind of endpoint; undefined when it can. */
function secretProblem(kind: WebhookKind, secret: string): string | undefined {
  if (kind === 'standard') return isWebhookSecret(secret) ? undefined : 'must be whsec_ followed by the base64 of 24 to 64 random bytes';
  if (SIGNED_BY_SERVICE.has(kind))
    return SERVICE_SECRET.test(secret) ? undefined : `must be the ${kind} robot's signing secret (1 to 256 printable characters)`;
  return `${kind} endpoints have no signing secret`;
}

/** How long the secret a rotation replaced keeps signing beside the new one. */
export const PREVIOUS_SECRET_MS = 24 * 3600_000;

export interface Webhook {
  readonly id: string;
  readonly kind: WebhookKind;
  /** What may be shown of the URL (the whole one, sealed, is opened by `urlOf` for the sender only). */
  readonly urlShown: string;
  /** Event types, or `*` for every type. */
  readonly events: readonly string[];
  readonly active: boolean;
  readonly description: string;
  /** Why confhub turned it off (410 Gone, failing for the whole retry window); null while it is on or turned off by a user. */
  readonly disabledReason: string | null;
  readonly failingSince: number | null;
  readonly consecutiveFailures: number;
  /** The endpoint's backoff: nothing is sent to it before this time. */
  readonly nextAttemptAt: number | null;
  /** The last event id this endpoint has looked at. */
  readonly cursor: number;
  readonly previousSecretUntil: number | null;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface WebhookInput {
  readonly url?: unknown;
  readonly kind?: unknown;
  readonly events?: unknown;
  readonly active?: unknown;
  readonly description?: unknown;
  readonly secret?: unknown;
}

export interface WebhookStoreDeps {
  db: Database;
  keyring: Keyring;
  /** Why an endpoint URL may not be used (the address policy's early check); undefined when it may. */
  urlProblem: (url: string) => string | undefined;
  maxWebhooks: number;
}

interface Row {
  id: string;
  url: string;
  url_shown: string;
  kind: string;
  events: string;
  active: number;
  description: string;
  secret: string;
  previous_secret: string | null;
  previous_until: number | null;
  cursor: number;
  disabled_reason: string | null;
  failing_since: number | null;
  consecutive_failures: number;
  next_attempt_at: number | null;
  created_at: number;
  updated_at: number;
}

/**
 * What the API, logs, errors and events show of a URL: its origin. A chat service's webhook URL
 * carries its token in the path or the query, and so do many others' (Teams, Zapier, n8n).
 */
export function shownUrl(url: string): string {
  try {
    return `${new URL(url).origin}/…`;
  } catch {
    return '(invalid URL)';
  }
}

const field = (id: string, name: 'url' | 'secret' | 'previous_secret'): string => `webhook:${id}.${name}`;

function hasControlCharacter(text: string): boolean {
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

type IssueCode = 'REQUIRED' | 'UNKNOWN_FIELD' | 'INVALID_TYPE' | 'INVALID_VALUE';

export function issue(name: string, message: string, code: IssueCode = 'INVALID_VALUE'): FieldIssue {
  return { field: name, code, message };
}

export function validationFailed(errors: readonly FieldIssue[]): AppError {
  return new AppError('VALIDATION_FAILED', { details: errors.map((e) => `${e.field}: ${e.message}`).join('; '), data: { errors } });
}

interface CheckedInput {
  url?: string;
  kind?: WebhookKind;
  events?: string[];
  active?: boolean;
  description?: string;
  secret?: string;
}

/** Every bad field named at once; nothing is stored from a body with one. */
function checkInput(input: WebhookInput, { urlProblem, creating }: { urlProblem: (url: string) => string | undefined; creating: boolean }): CheckedInput {
  const errors: FieldIssue[] = [];
  const out: CheckedInput = {};
  const known = new Set(['url', 'kind', 'events', 'active', 'description', 'secret']);
  for (const name of Object.keys(input))
    if (!known.has(name)) errors.push(issue(name.slice(0, 64), `unknown field; expected ${[...known].join(', ')}`, 'UNKNOWN_FIELD'));
  if (input.url !== undefined) {
    if (typeof input.url !== 'string') errors.push(issue('url', 'must be a string', 'INVALID_TYPE'));
    else if (input.url.length > MAX_URL_LENGTH) errors.push(issue('url', `must be at most ${MAX_URL_LENGTH} characters`));
    else {
      const problem = urlProblem(input.url);
      if (problem) errors.push(issue('url', problem));
      else out.url = input.url;
    }
  } else if (creating) errors.push(issue('url', 'is required', 'REQUIRED'));
  if (input.kind !== undefined) {
    if (typeof input.kind !== 'string' || !(WEBHOOK_KINDS as readonly string[]).includes(input.kind))
      errors.push(issue('kind', `must be one of ${WEBHOOK_KINDS.join(', ')}`));
    else out.kind = input.kind as WebhookKind;
  }
  if (input.events !== undefined) {
    const events = input.events;
    if (!Array.isArray(events) || events.length === 0 || events.length > EVENT_TYPES.length + 1 || !events.every((e) => typeof e === 'string'))
      errors.push(issue('events', `must be a non-empty list of event types (${EVENT_TYPES.join(', ')}) or ["*"]`));
    else {
      const unknown = events.filter((e) => e !== '*' && !(EVENT_TYPES as readonly string[]).includes(e));
      if (unknown.length > 0)
        errors.push(issue('events', `unknown event type ${JSON.stringify(unknown[0]!.slice(0, 64))}; expected ${EVENT_TYPES.join(', ')} or "*"`));
      else out.events = events.includes('*') ? ['*'] : [...new Set(events as string[])];
    }
  }
  if (input.active !== undefined) {
    if (typeof input.active !== 'boolean') errors.push(issue('active', 'must be true or false', 'INVALID_TYPE'));
    else out.active = input.active;
  }
  if (input.description !== undefined) {
    if (typeof input.description !== 'string' || input.description.length > MAX_DESCRIPTION_LENGTH || hasControlCharacter(input.description))
      errors.push(issue('description', `must be a single-line string of at most ${MAX_DESCRIPTION_LENGTH} characters`));
    else out.description = input.description;
  }
  if (input.secret !== undefined) {
    // Never echoed: a wrong secret may be a real one pasted into the wrong field.
    if (typeof input.secret !== 'string') errors.push(issue('secret', 'must be a string', 'INVALID_TYPE'));
    else out.secret = input.secret;
  }
  if (errors.length > 0) throw validationFailed(errors);
  return out;
}

export function createWebhookStore({ db, keyring, urlProblem, maxWebhooks }: WebhookStoreDeps) {
  const all = db.prepare<[], Row>('SELECT * FROM webhooks ORDER BY created_at, id');
  const one = db.prepare<[string], Row>('SELECT * FROM webhooks WHERE id = ?');
  const count = db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM webhooks');
  const insert = db.prepare(
    `INSERT INTO webhooks (id, url, url_shown, kind, events, active, description, secret, cursor, created_at, updated_at)
     VALUES (@id, @url, @url_shown, @kind, @events, @active, @description, @secret, @cursor, @at, @at)`,
  );
  const remove = db.prepare<[string]>('DELETE FROM webhooks WHERE id = ?');

  function toWebhook(row: Row): Webhook {
    return Object.freeze({
      id: row.id,
      kind: row.kind as WebhookKind,
      urlShown: row.url_shown,
      events: JSON.parse(row.events) as string[],
      active: row.active === 1,
      description: row.description,
      disabledReason: row.disabled_reason,
      failingSince: row.failing_since,
      consecutiveFailures: row.consecutive_failures,
      nextAttemptAt: row.next_attempt_at,
      cursor: row.cursor,
      previousSecretUntil: row.previous_until,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    });
  }

  function get(id: string): Webhook {
    const row = one.get(id);
    if (!row) throw new AppError('WEBHOOK_NOT_FOUND', { details: `no webhook ${JSON.stringify(id.slice(0, 64))}` });
    return toWebhook(row);
  }

  return {
    list: (): Webhook[] => all.all().map(toWebhook),
    get,
    exists: (id: string): boolean => one.get(id) !== undefined,
    /** The whole URL, opened: for the sender only. */
    urlOf(id: string): string {
      const row = one.get(id);
      if (!row) throw new AppError('WEBHOOK_NOT_FOUND', { details: `no webhook ${JSON.stringify(id.slice(0, 64))}` });
      return openValue(keyring, field(id, 'url'), row.url);
    },
    /**
     * Creates an endpoint that starts at the newest event. A standard endpoint's signing secret is
     * answered, once; a DingTalk or Feishu robot's own secret, when given, is kept and never shown.
     */
    create(input: WebhookInput, { now, cursor }: { now: number; cursor: number }): { webhook: Webhook; secret?: string } {
      const checked = checkInput(input, { urlProblem, creating: true });
      const kind = checked.kind ?? 'standard';
      const problem = checked.secret === undefined ? undefined : secretProblem(kind, checked.secret);
      if (problem) throw validationFailed([issue('secret', problem)]);
      if (count.get()!.n >= maxWebhooks)
        throw new AppError('WEBHOOK_LIMIT_REACHED', { details: `at most ${maxWebhooks} webhooks (system.ini [notify] max_webhooks); delete one first` });
      const id = `wh_${randomBytes(12).toString('base64url')}`;
      const secret = checked.secret ?? (kind === 'standard' ? generateWebhookSecret() : '');
      insert.run({
        id,
        url: sealValue(keyring, field(id, 'url'), checked.url!),
        url_shown: shownUrl(checked.url!),
        kind,
        events: JSON.stringify(checked.events ?? ['*']),
        active: checked.active === false ? 0 : 1,
        description: checked.description ?? '',
        secret: sealValue(keyring, field(id, 'secret'), secret),
        cursor,
        at: now,
      });
      // A secret the caller chose is not echoed back: only one confhub made is shown, once.
      return kind === 'standard' && checked.secret === undefined ? { webhook: get(id), secret } : { webhook: get(id) };
    },
    /**
     * Changes the fields given. Turning an endpoint on again clears what confhub's turning off
     * left (its reason and backoff) and starts it at the newest event.
     */
    update(id: string, input: WebhookInput, { now, cursor }: { now: number; cursor: number }): Webhook {
      const before = get(id);
      const checked = checkInput(input, { urlProblem, creating: false });
      if (checked.secret !== undefined) throw validationFailed([issue('secret', 'is changed by POST /webhooks/{id}/rotate-secret')]);
      // A kind has its own URL and secret: another kind is another endpoint.
      if (checked.kind !== undefined && checked.kind !== before.kind)
        throw validationFailed([issue('kind', `cannot change from ${before.kind}; create a new endpoint for ${checked.kind}`)]);
      const active = checked.active ?? before.active;
      const reactivated = checked.active === true && (!before.active || before.disabledReason !== null);
      const turnedOff = checked.active === false && before.active;
      db.transaction(() => {
        db.prepare('UPDATE webhooks SET events = ?, active = ?, description = ?, updated_at = ? WHERE id = ?').run(
          JSON.stringify(checked.events ?? before.events),
          active ? 1 : 0,
          checked.description ?? before.description,
          now,
          id,
        );
        // A new URL is a new receiver: the old one's failures say nothing of it.
        if (checked.url !== undefined)
          db.prepare('UPDATE webhooks SET url = ?, url_shown = ?, failing_since = NULL, consecutive_failures = 0, next_attempt_at = NULL WHERE id = ?').run(
            sealValue(keyring, field(id, 'url'), checked.url),
            shownUrl(checked.url),
            id,
          );
        // Events from while it was off are not sent late: it follows from the newest.
        if (reactivated)
          db.prepare(
            'UPDATE webhooks SET disabled_reason = NULL, failing_since = NULL, consecutive_failures = 0, next_attempt_at = NULL, cursor = ? WHERE id = ?',
          ).run(cursor, id);
        // Turned off, what waited is not sent days later either.
        if (turnedOff)
          db.prepare(
            "UPDATE webhook_deliveries SET state = 'failed', last_error = 'the webhook was turned off', finished_at = ? WHERE webhook_id = ? AND test = 0 AND state IN ('collecting', 'pending')",
          ).run(now, id);
      })();
      return get(id);
    },
    delete(id: string): void {
      get(id);
      remove.run(id);
    },
    /**
     * A standard endpoint's new signing secret (the one it replaces keeps signing beside it for a
     * day); a DingTalk or Feishu robot's secret replaced by the one given (the service knows one).
     */
    rotateSecret(id: string, input: { secret?: unknown }, { now }: { now: number }): { webhook: Webhook; secret?: string; previousValidUntil?: number } {
      const { kind } = get(id);
      if (input.secret !== undefined && typeof input.secret !== 'string') throw validationFailed([issue('secret', 'must be a string', 'INVALID_TYPE')]);
      const given = input.secret as string | undefined;
      if (kind !== 'standard' && given === undefined)
        throw validationFailed([
          issue('secret', SIGNED_BY_SERVICE.has(kind) ? `is required: the ${kind} robot's signing secret` : `${kind} endpoints have no signing secret`),
        ]);
      const problem = given === undefined ? undefined : secretProblem(kind, given);
      if (problem) throw validationFailed([issue('secret', problem)]);
      if (kind !== 'standard') {
        db.prepare('UPDATE webhooks SET secret = ?, updated_at = ? WHERE id = ?').run(sealValue(keyring, field(id, 'secret'), given!), now, id);
        return { webhook: get(id) };
      }
      const secret = given ?? generateWebhookSecret();
      const row = one.get(id)!;
      const previous = openValue(keyring, field(id, 'secret'), row.secret);
      const until = now + PREVIOUS_SECRET_MS;
      db.prepare('UPDATE webhooks SET secret = ?, previous_secret = ?, previous_until = ?, updated_at = ? WHERE id = ?').run(
        sealValue(keyring, field(id, 'secret'), secret),
        sealValue(keyring, field(id, 'previous_secret'), previous),
        until,
        now,
        id,
      );
      return { webhook: get(id), ...(given === undefined ? { secret } : {}), previousValidUntil: until };
    },
    /** The secrets that sign now: the current one, and during a rotation the one it replaced. */
    signingSecrets(id: string, now: number): string[] {
      const row = one.get(id);
      if (!row) return [];
      const secrets = [openValue(keyring, field(id, 'secret'), row.secret)];
      if (row.previous_secret && row.previous_until !== null && now < row.previous_until)
        secrets.push(openValue(keyring, field(id, 'previous_secret'), row.previous_secret));
      // A chat endpoint without its robot's secret signs nothing.
      return secrets.filter((secret) => secret !== '');
    },
  };
}

export type WebhookStore = ReturnType<typeof createWebhookStore>;

/**
 * Seals every webhook URL and secret again with the keyring's current key (after a master key
 * rotation), in one transaction; answers how many values were sealed again.
 */
export function resealWebhooks({ db, keyring }: { db: Database; keyring: Keyring }): number {
  const rows = db.prepare<[], Pick<Row, 'id' | 'url' | 'secret' | 'previous_secret'>>('SELECT id, url, secret, previous_secret FROM webhooks').all();
  const update = db.prepare<[string, string, string | null, string]>('UPDATE webhooks SET url = ?, secret = ?, previous_secret = ? WHERE id = ?');
  const again = (id: string, name: 'url' | 'secret' | 'previous_secret', sealed: string): string =>
    sealValue(keyring, field(id, name), openValue(keyring, field(id, name), sealed));
  let count = 0;
  db.transaction(() => {
    for (const row of rows) {
      update.run(
        again(row.id, 'url', row.url),
        again(row.id, 'secret', row.secret),
        row.previous_secret ? again(row.id, 'previous_secret', row.previous_secret) : null,
        row.id,
      );
      count += row.previous_secret ? 3 : 2;
    }
  })();
  return count;
}
