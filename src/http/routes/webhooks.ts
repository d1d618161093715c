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
import type { Webhook, WebhookInput, WebhookStore } from '../../notify/webhook-store.js';
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

  function audited(res: Response, action: string, id: string): void {
    res.locals.audited = true;
    audit.record([
      {
        at: clock.now(),
        actor: res.locals.actor as Actor,
        action,
        section: null,
        key: id,
        oldValue: null,
        newValue: null,
        result: 'applied',
        errorCode: null,
        revision: null,
      },
    ]);
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
          audited(res, 'webhook.create', webhook.id);
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
          const webhook = store.update(req.params.id as string, objectBody(requireJsonBody(req)), { now, cursor: events.lastId() });
          audited(res, 'webhook.update', webhook.id);
          outbox.changed();
          sendJson(res, JSON.stringify(view(webhook, now)));
        },
      ],
      deleteWebhook: (req, res) => {
        const id = req.params.id as string;
        store.delete(id);
        audited(res, 'webhook.delete', id);
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
          if (extra.length > 0) throw new AppError('VALIDATION_FAILED', { details: `${extra[0]!.slice(0, 64)}: unknown field; expected secret` });
          const { webhook, secret, previousValidUntil } = store.rotateSecret(req.params.id as string, input, { now });
          audited(res, 'webhook.rotate_secret', webhook.id);
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
      testWebhook: async (req, res) => sendJson(res, JSON.stringify(await outbox.test(req.params.id as string))),
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
        res.status(202);
        sendJson(res, JSON.stringify(delivery));
      },
    },
  });
  return router;
}
