/**
 * Standard Webhooks (spec v1, https://www.standardwebhooks.com): the payload, the message id and
 * the symmetric signature of the `standard` webhook kind.
 *
 * The signature covers `${msgId}.${timestamp}.${body}`, so the body sent must be byte-for-byte the
 * body signed: callers sign the string `standardPayload` returns and send that same string.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { AppError } from '../core/errors.js';
import type { NotifyEvent } from './notify-event.js';

const SECRET_PREFIX = 'whsec_';
/** The spec's range for symmetric keys: 24 to 64 random bytes. */
const MIN_KEY_BYTES = 24;
const MAX_KEY_BYTES = 64;
const GENERATED_KEY_BYTES = 32;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export interface StandardHeaders {
  readonly 'webhook-id': string;
  readonly 'webhook-timestamp': string;
  readonly 'webhook-signature': string;
  readonly 'content-type': 'application/json';
}

export interface SignStandardInput {
  readonly msgId: string;
  /** When this attempt is made (not when the event happened): receivers reject stale attempts. */
  readonly timestampSeconds: number;
  readonly body: string;
  /** The current secret first; during a rotation the previous one too. Each signs once. */
  readonly secrets: readonly string[];
}

/** A new signing secret: `whsec_` + base64 of 32 random bytes. */
export function generateWebhookSecret(random: (size: number) => Uint8Array = randomBytes): string {
  return `${SECRET_PREFIX}${Buffer.from(random(GENERATED_KEY_BYTES)).toString('base64')}`;
}

/** Whether a string is a secret `signStandard` accepts (for validating stored or imported secrets). */
export function isWebhookSecret(secret: string): boolean {
  return decodeSecret(secret) !== undefined;
}

/**
 * The message id of an event sent to an endpoint: the same for every retry and redelivery, so a
 * receiver drops duplicates by it; named by the endpoint too, so no other confhub (or this one
 * with a new database) makes the same one.
 */
export function msgIdOf({ endpoint, event }: { endpoint: string; event: Pick<NotifyEvent, 'id'> }): string {
  return `evt_${endpoint.replace(/^wh_/, '')}_${event.id}`;
}

/**
 * The JSON body of an event, in the spec's recommended shape: `type`, `timestamp` (ISO 8601, when
 * the event happened) and `data`, with the log id added to `data` as `eventId`.
 */
export function standardPayload(event: NotifyEvent): string {
  return JSON.stringify({
    type: event.type,
    timestamp: new Date(event.at).toISOString(),
    data: { ...event.data, eventId: event.id },
  });
}

/** The headers of one delivery attempt: id, timestamp, one `v1,` signature per secret, content type. */
export function signStandard(input: SignStandardInput): StandardHeaders {
  const { msgId, timestampSeconds, body, secrets } = input;
  // The signed content is dot-delimited: a dot in the id or timestamp would let one
  // (id, timestamp, body) triple pass for another.
  if (msgId === '' || msgId.includes('.')) throw invalid('the message id must be non-empty and contain no "."');
  if (!Number.isSafeInteger(timestampSeconds) || timestampSeconds < 0) throw invalid('the timestamp must be whole seconds since the epoch');
  if (secrets.length === 0) throw invalid('at least one signing secret is needed');
  const signed = `${msgId}.${timestampSeconds}.${body}`;
  const signatures = secrets.map((secret, index) => {
    const key = decodeSecret(secret);
    // Which secret is wrong, never what it holds.
    if (key === undefined) throw invalid(`signing secret #${index + 1} is not "whsec_" + base64 of ${MIN_KEY_BYTES}..${MAX_KEY_BYTES} bytes`);
    return `v1,${createHmac('sha256', key).update(signed, 'utf8').digest('base64')}`;
  });
  return {
    'webhook-id': msgId,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': signatures.join(' '),
    'content-type': 'application/json',
  };
}

function decodeSecret(secret: string): Buffer | undefined {
  if (!secret.startsWith(SECRET_PREFIX)) return undefined;
  const encoded = secret.slice(SECRET_PREFIX.length);
  if (!BASE64.test(encoded)) return undefined;
  const key = Buffer.from(encoded, 'base64');
  return key.length >= MIN_KEY_BYTES && key.length <= MAX_KEY_BYTES ? key : undefined;
}

function invalid(details: string): AppError<'INTERNAL_ERROR'> {
  return new AppError('INTERNAL_ERROR', { message: 'Cannot sign the webhook', details });
}
