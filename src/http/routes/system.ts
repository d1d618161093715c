/** /system: system.ini, read-only through the API; every write method answers 405 SYSTEM_READ_ONLY. */
import { Router, type RequestHandler } from 'express';
import { AppError } from '../../core/errors.js';
import type { ReadOnlyIniStore } from '../../settings/store.js';
import { addPath, notModified, ROUTING, sendJson, sendSection } from '../route-helpers.js';

const readOnly: RequestHandler = (req, res, next) => {
  res.setHeader('Allow', 'GET, HEAD');
  next(new AppError('SYSTEM_READ_ONLY', { details: `system.ini is read-only; ${req.method} is not allowed` }));
};

export function createSystemRoutes({ store }: { store: ReadOnlyIniStore }): Router {
  const router = Router(ROUTING);
  addPath(router, '/system', {
    otherMethods: readOnly,
    handlers: {
      getSystem: (req, res) => {
        const snapshot = store.read();
        if (notModified(req, res, snapshot.etag)) return;
        sendJson(res, snapshot.view.allJson(), snapshot.etag);
      },
    },
  });
  addPath(router, '/system/{section}', {
    otherMethods: readOnly,
    handlers: {
      getSystemSection: (req, res) => sendSection({ req, res }, store.read(), req.params.section as string),
    },
  });
  router.all('/system/*rest', readOnly);
  return router;
}
