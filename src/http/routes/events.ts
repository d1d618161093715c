/**
 * GET /settings/events: the event log as Server-Sent Events (events/sse.ts). GET /ws is the
 * WebSocket channel (events/websocket.ts); its upgrades never reach Express (the server's
 * `upgrade` listener takes them), so a GET that arrives here asked for no upgrade: 426.
 */
import { Router } from 'express';
import { AppError } from '../../core/errors.js';
import type { EventLog } from '../../events/event-log.js';
import { streamEvents } from '../../events/sse.js';
import { addPath, ROUTING } from '../route-helpers.js';

export function createEventRoutes({ events }: { events: EventLog }): Router {
  const router = Router(ROUTING);
  addPath(router, '/settings/events', { handlers: { streamEvents: (req, res) => streamEvents({ log: events, req, res }) } });
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
