/** GET /settings/events: the event log as Server-Sent Events (events/sse.ts). */
import { Router } from 'express';
import type { EventLog } from '../../events/event-log.js';
import { streamEvents } from '../../events/sse.js';
import { addPath, ROUTING } from '../route-helpers.js';

export function createEventRoutes({ events }: { events: EventLog }): Router {
  const router = Router(ROUTING);
  addPath(router, '/settings/events', { handlers: { streamEvents: (req, res) => streamEvents({ log: events, req, res }) } });
  return router;
}
