/**
 * /webhooks: endpoints, their delivery log, redelivery and a test message. Changes are audited
 * (`webhook.create`, `webhook.update`, `webhook.delete`, `webhook.rotate_secret`) with the
 * endpoint's id as the key and never a URL or a secret; a signing secret is answered once, when it
 * is made.
 */
import { Router, type RequestHandler, type Response } from 'express';
import type { AuditLog } from '../../audit/audit-log.js';
import type { Actor } from '../../core/actor.js';
import type { Clock } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';
import type { EventLog } from '../../events/event-log.js';
import type { Outbox } from '../../notify/outbox.js';
import { issue, validationFailed, type Webhook, type WebhookInput, type WebhookStore } from '../../notify/webhook-store.js';
import { addPath, hasBody, requireJsonBody, ROUTING, sendJson, singleQueryValue } from '../route-helpers.js';

export interface WebhookRoutesDeps {
  store: WebhookStore;
  outbox: Outbox;
  events: EventLog;
  audit: AuditLog;
  clock: Clock;
  jsonBody: RequestHandler;
}

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 500;

function view(webhook: Webhook, now: number): Record<string, unknown> {
  const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
  return {
    id: webhook.id,
    url: webhook.urlShown,
    kind: webhook.kind,
    events: webhook.events,
    active: webhook.active,
    description: webhook.description,
    disabledReason: webhook.disabledReason,
    failingSince: iso(webhook.failingSince),
    consecutiveFailures: webhook.consecutiveFailures,
    nextAttemptAt: iso(webhook.nextAttemptAt),
    previousSecretValidUntil: webhook.previousSecretUntil !== null && webhook.previousSecretUntil > now ? iso(webhook.previousSecretUntil) : null,
    createdAt: iso(webhook.createdAt),
    updatedAt: iso(webhook.updatedAt),
  };
}

function objectBody(body: unknown): WebhookInput {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new AppError('INVALID_REQUEST', { details: 'the body must be a JSON object' });
  return body as WebhookInput;
}

function wholeNumber(raw: string | undefined, { name, max }: { name: string; max: number }): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d{1,16}$/.test(raw) || Number(raw) < 1 || Number(raw) > max)
    throw new AppError('INVALID_REQUEST', { details: `${name} must be a whole number from 1 to ${max}` });
  return Number(raw);
}

function deliveryIdOf(raw: string): number {
  const id = /^\d{1,15}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(id) || id < 1) throw new AppError('DELIVERY_NOT_FOUND', { details: `no delivery ${JSON.stringify(raw.slice(0, 32))}` });
  return id;
}

export function createWebhookRoutes({ store, outbox, events, audit, clock, jsonBody }: WebhookRoutesDeps): Router {
  const router = Router(ROUTING);

  /** One row per changed field (`webhook:<id>`, the field's name), or one for the endpoint; never a URL or a secret. */
  function audited(res: Response, { action, id, fields = [null] }: { action: string; id: string; fields?: readonly (string | null)[] }): void {
    res.locals.audited = true;
    audit.record(
      fields.map((key) => ({
        at: clock.now(),
        actor: res.locals.actor as Actor,
        action,
        section: `webhook:${id}`,
        key,
        oldValue: null,
        newValue: null,
        result: 'applied' as const,
        errorCode: null,
        revision: null,
      })),
    );
  }

  addPath(router, '/webhooks', {
    handlers: {
      listWebhooks: (_req, res) => {
        const now = clock.now();
        sendJson(res, JSON.stringify({ webhooks: store.list().map((webhook) => view(webhook, now)) }));
      },
      createWebhook: [
        jsonBody,
        (req, res) => {
          const now = clock.now();
          const { webhook, secret } = store.create(objectBody(requireJsonBody(req)), { now, cursor: events.lastId() });
          audited(res, { action: 'webhook.create', id: webhook.id });
          outbox.changed();
          res.status(201).location(`${req.baseUrl}/webhooks/${webhook.id}`);
          sendJson(res, JSON.stringify({ ...view(webhook, now), ...(secret !== undefined ? { secret } : {}) }));
        },
      ],
    },
  });
  addPath(router, '/webhooks/{id}', {
    handlers: {
      getWebhook: (req, res) => sendJson(res, JSON.stringify(view(store.get(req.params.id as string), clock.now()))),
      patchWebhook: [
        jsonBody,
        (req, res) => {
          const now = clock.now();
          const input = objectBody(requireJsonBody(req));
          const webhook = store.update(req.params.id as string, input, { now, cursor: events.lastId() });
          audited(res, { action: 'webhook.update', id: webhook.id, ...(Object.keys(input).length > 0 ? { fields: Object.keys(input) } : {}) });
          outbox.changed();
          sendJson(res, JSON.stringify(view(webhook, now)));
        },
      ],
      deleteWebhook: (req, res) => {
        const id = req.params.id as string;
        store.delete(id);
        audited(res, { action: 'webhook.delete', id });
        sendJson(res, JSON.stringify({ deleted: id }));
      },
    },
  });
  addPath(router, '/webhooks/{id}/rotate-secret', {
    handlers: {
      rotateWebhookSecret: [
        jsonBody,
        (req, res) => {
          const now = clock.now();
          const input = hasBody(req) ? objectBody(requireJsonBody(req)) : {};
          const extra = Object.keys(input).filter((name) => name !== 'secret');
          if (extra.length > 0) throw validationFailed(extra.map((name) => issue(name.slice(0, 64), 'unknown field; expected secret', 'UNKNOWN_FIELD')));
          const { webhook, secret, previousValidUntil } = store.rotateSecret(req.params.id as string, input, { now });
          audited(res, { action: 'webhook.rotate_secret', id: webhook.id });
          sendJson(
            res,
            JSON.stringify({
              ...(secret !== undefined ? { secret } : {}),
              previousSecretValidUntil: previousValidUntil === undefined ? null : new Date(previousValidUntil).toISOString(),
              webhook: view(webhook, now),
            }),
          );
        },
      ],
    },
  });
  addPath(router, '/webhooks/{id}/test', {
    handlers: {
      testWebhook: async (req, res) => {
        const delivery = await outbox.test(req.params.id as string);
        audited(res, { action: 'webhook.test', id: delivery.webhook });
        sendJson(res, JSON.stringify(delivery));
      },
    },
  });
  addPath(router, '/webhooks/{id}/deliveries', {
    handlers: {
      listWebhookDeliveries: (req, res) => {
        const limit = wholeNumber(singleQueryValue(req, 'limit'), { name: 'limit', max: MAX_LIMIT }) ?? DEFAULT_LIMIT;
        const before = wholeNumber(singleQueryValue(req, 'before'), { name: 'before', max: Number.MAX_SAFE_INTEGER });
        const deliveries = outbox.deliveries(req.params.id as string, { limit, ...(before !== undefined ? { before } : {}) });
        sendJson(res, JSON.stringify({ deliveries, next: deliveries.length === limit ? deliveries[deliveries.length - 1]!.id : null }));
      },
    },
  });
  addPath(router, '/webhooks/{id}/deliveries/{deliveryId}/redeliver', {
    handlers: {
      redeliverWebhookDelivery: (req, res) => {
        const delivery = outbox.redeliver(req.params.id as string, deliveryIdOf(req.params.deliveryId as string));
        audited(res, { action: 'webhook.redeliver', id: delivery.webhook, fields: [String(delivery.redeliveryOf)] });
        res.status(202);
        sendJson(res, JSON.stringify(delivery));
      },
    },
  });
  return router;
}
