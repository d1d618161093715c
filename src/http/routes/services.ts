/**
 * Service connection tests: GET /services answers from the cache at once (and refreshes stale
 * results in the background); POST /services/{name}/test checks one service now. A failed check
 * is a result (200 with ok: false), not an error of the request.
 */
import { Router } from 'express';
import { AppError } from '../../core/errors.js';
import type { ConnectionChecks } from '../../probes/connection-checks.js';
import { methodNotAllowed, sendJson } from '../route-helpers.js';

function requireServices(services: ConnectionChecks | undefined): ConnectionChecks {
  if (!services) throw new AppError('SERVICE_UNREACHABLE', { message: 'Service Unavailable', details: 'service checks are not running in this process' });
  return services;
}

export function createServiceRoutes({ services }: { services: ConnectionChecks | undefined }): Router {
  const router = Router();

  router
    .route('/services')
    .get((_req, res) => {
      res.setHeader('cache-control', 'no-store');
      sendJson(res, JSON.stringify(requireServices(services).list()));
    })
    .all(methodNotAllowed('GET'));

  router
    .route('/services/:name/test')
    .post(async (req, res) => {
      const result = await requireServices(services).test(req.params.name as string);
      res.setHeader('cache-control', 'no-store');
      sendJson(res, JSON.stringify(result));
    })
    .all(methodNotAllowed('POST'));

  return router;
}
