/**
 * The reconciler with its real drivers (Docker Engine API, supervisord XML-RPC, HTTP hooks), as
 * the sync worker and `confhub once` both build it from the declarations main parsed once.
 */
import type { Logger } from 'pino';
import { readTemplateContained } from '../fs/contained-path.js';
import { parseIni } from '../ini/document.js';
import { createDockerDriver } from '../reload/docker.js';
import { createReloadActions } from '../reload/reload-actions.js';
import { createSupervisorDriver } from '../reload/supervisor.js';
import { renderTarget } from '../render/index.js';
import { openDocument } from '../secrets/sealed-document.js';
import type { Keyring } from '../secrets/secret-box.js';
import { CONFIG_SCHEMA } from '../settings/schema.js';
import type { SyncConfig } from '../targets/target-spec.js';
import { createReconciler } from './reconcile.js';

export interface BuildReconcilerInput {
  readonly sync: SyncConfig;
  readonly logger: Logger;
  /**
   * config.ini as the targets last applied it (from the history, sealed), when it is known: files
   * a failure puts back are reloaded and checked at its URLs.
   */
  readonly applied?: { readonly text: string; readonly keyring: Keyring | undefined };
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
    readTemplate: (path) => readTemplateContained(path, sync.paths),
    paths: sync.paths,
    env: sync.env,
    logger,
    ...(applied ? { applied: openDocument({ stored: parseIni(applied.text), schema: CONFIG_SCHEMA, keyring: applied.keyring, tolerate: true }).doc } : {}),
  });
}
