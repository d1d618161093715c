/**
 * Service connection tests: GET /services answers from the cache at once (and refreshes stale
 * results in the background); POST /services/{name}/test checks one service now. A failed check
 * is a result (200 with ok: false), not an error of the request.
 */
import { Router } from 'express';
import type { ConnectionChecks } from '../../probes/connection-checks.js';
import { addPath, ROUTING, sendJson } from '../route-helpers.js';

export function createServiceRoutes({ services }: { services: ConnectionChecks }): Router {
  const router = Router(ROUTING);

  addPath(router, '/services', {
    handlers: {
      listServices: (_req, res) => {
        res.setHeader('cache-control', 'no-store');
        sendJson(res, JSON.stringify(services.list()));
      },
    },
  });

  addPath(router, '/services/{name}/test', {
    handlers: {
      testService: async (req, res) => {
        const result = await services.test(req.params.name as string);
        res.setHeader('cache-control', 'no-store');
        sendJson(res, JSON.stringify(result));
      },
    },
  });

  return router;
}
