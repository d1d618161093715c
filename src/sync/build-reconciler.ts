/**
 * The reconciler with its real drivers (Docker Engine API, supervisord XML-RPC, HTTP hooks), as
 * the sync worker and `confhub once` both build it from the declarations main parsed once.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { IniDocument } from '../ini/document.js';
import { createDockerDriver } from '../reload/docker.js';
import { createReloadActions } from '../reload/reload-actions.js';
import { createSupervisorDriver } from '../reload/supervisor.js';
import { renderTarget } from '../render/index.js';
import type { SyncConfig } from '../targets/target-spec.js';
import { createReconciler } from './reconcile.js';

export interface BuildReconcilerInput {
  readonly sync: SyncConfig;
  readonly logger: Logger;
  /** The revision the targets last applied (sealed values opened), when the history knows it. */
  readonly applied?: IniDocument;
}

export function buildReconciler({ sync, logger, applied }: BuildReconcilerInput) {
  const actions = createReloadActions({
    docker: createDockerDriver({ socketPath: sync.settings.dockerSocket, logger }),
    supervisor: createSupervisorDriver({ url: sync.settings.supervisorUrl, logger }),
    logger,
  });
  return createReconciler({
    targets: sync.targets,
    actions,
    render: (target, input) => renderTarget(target.format, input),
    readTemplate: (path) => readFile(path, 'utf8'),
    logger,
    ...(applied ? { applied } : {}),
  });
}
