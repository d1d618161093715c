/** GET /settings/events: the event log as Server-Sent Events (events/sse.ts). */
import { Router } from 'express';
import type { EventLog } from '../../events/event-log.js';
import { streamEvents } from '../../events/sse.js';
import { methodNotAllowed, ROUTING } from '../route-helpers.js';

export function createEventRoutes({ events }: { events: EventLog }): Router {
  const router = Router(ROUTING);
  router
    .route('/settings/events')
    .get((req, res) => streamEvents({ log: events, req, res }))
    .all(methodNotAllowed('GET'));
  return router;
}
