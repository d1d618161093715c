/**
 * The reconciler with its real drivers (Docker Engine API, supervisord XML-RPC, HTTP hooks), as
 * the sync worker and `confhub once` both build it from system.ini.
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { IniDocument } from '../ini/document.js';
import { createDockerDriver } from '../reload/docker.js';
import { createServiceActions } from '../reload/service-actions.js';
import { createSupervisorDriver } from '../reload/supervisor.js';
import { renderTarget } from '../render/index.js';
import { createReconciler } from './reconcile.js';
import { parseSyncConfig, type SyncOverrides } from './target-spec.js';

export interface ComposeReconcilerInput {
  readonly systemDoc: IniDocument;
  readonly dataDir: string;
  readonly configDir: string;
  readonly configPath: string;
  readonly systemPath: string;
  readonly logger: Logger;
  readonly reloaders?: SyncOverrides;
}

export function composeReconciler({ systemDoc, dataDir, configDir, configPath, systemPath, logger, reloaders }: ComposeReconcilerInput) {
  const { settings, targets } = parseSyncConfig({ doc: systemDoc, dataDir, configDir, protectedPaths: [configPath, systemPath], ...(reloaders ? { overrides: reloaders } : {}) });
  const actions = createServiceActions({
    docker: createDockerDriver({ socketPath: settings.dockerSocket, logger }),
    supervisor: createSupervisorDriver({ url: settings.supervisorUrl, logger }),
    logger,
  });
  const reconciler = createReconciler({
    targets,
    actions,
    render: (target, input) => renderTarget(target.format, input),
    readTemplate: (path) => readFile(path, 'utf8'),
    logger,
  });
  return { settings, targets, reconciler };
}
