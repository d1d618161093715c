/**
 * GET /settings/events: the event log as Server-Sent Events (events/sse.ts). GET /ws is the
 * WebSocket channel (events/websocket.ts); its upgrades never reach Express (the server's
 * `upgrade` listener takes them), so a GET that arrives here asked for no upgrade: 426.
 */
import { type Request, Router } from 'express';
import { AppError } from '../../core/errors.js';
import type { EventLog } from '../../events/event-log.js';
import { streamEvents } from '../../events/sse.js';
import { addPath, ROUTING, singleQueryValue } from '../route-helpers.js';

export interface EventRoutesDeps {
  events: EventLog;
  /** Whether a key is still the API key (a stream opened with a rotated one ends at its next heartbeat). */
  keyStillValid?: (key: string | undefined) => boolean;
}

/** `?since=`: an event id, as the WebSocket takes it (which closes with 4400 where this answers 400). */
function sinceQuery(req: Request): number | undefined {
  const raw = singleQueryValue(req, 'since');
  if (raw === undefined) return undefined;
  if (!/^\d{1,15}$/.test(raw))
    throw new AppError('INVALID_REQUEST', { details: 'since must be a non-negative integer (an event id, the rev of the WebSocket)' });
  return Number(raw);
}

export function createEventRoutes({ events, keyStillValid }: EventRoutesDeps): Router {
  const router = Router(ROUTING);
  addPath(router, '/settings/events', {
    handlers: {
      streamEvents: (req, res) => {
        const key = req.get('x-api-key');
        const since = sinceQuery(req);
        streamEvents({
          log: events,
          req,
          res,
          ...(since !== undefined ? { since } : {}),
          ...(keyStillValid ? { stillAuthorized: () => keyStillValid(key) } : {}),
        });
      },
    },
  });
  addPath(router, '/ws', {
    handlers: {
      openWebSocket: (_req, res, next) => {
        // RFC 9110: a 426 names the protocol to switch to.
        res.setHeader('Upgrade', 'websocket');
        res.setHeader('Connection', 'Upgrade');
        next(new AppError('UPGRADE_REQUIRED', { details: 'This is a WebSocket endpoint: connect with a WebSocket client (subprotocol confhub.v1)' }));
      },
    },
  });
  return router;
}
