/**
 * The reconciler with its real drivers (Docker Engine API, supervisord XML-RPC, HTTP hooks), as
 * the sync worker and `confhub once` both build it from the declarations main parsed once.
 */
import type { Logger } from 'pino';
import { readTemplateContained } from '../fs/contained-path.js';
import { parseIni } from '../ini/document.js';
import { createDockerDriver } from '../reload/docker.js';
import { createEnvRecreator } from '../reload/docker-recreate.js';
import { createReloadActions } from '../reload/reload-actions.js';
import { createSupervisorDriver } from '../reload/supervisor.js';
import { renderTarget } from '../render/index.js';
import { openDocument } from '../secrets/sealed-document.js';
import type { Keyring } from '../secrets/secret-box.js';
import { CONFIG_SCHEMA } from '../settings/schema.js';
import { resolveDocument, type ResolveSettings } from '../settings/resolve.js';
import { revisionOf } from '../settings/revision.js';
import type { SyncConfig } from '../targets/target-spec.js';
import { createReconciler } from './reconcile.js';

export interface BuildReconcilerInput {
  readonly sync: SyncConfig;
  readonly logger: Logger;
  /**
   * config.ini as the targets last applied it (from the history, sealed), when it is known: files
   * a failure puts back are reloaded and checked at its URLs.
   */
  readonly applied?: { readonly text: string; readonly keyring: Keyring | undefined; readonly resolve: ResolveSettings };
}

function recreatesContainers(sync: SyncConfig): boolean {
  return sync.targets.some((target) => target.reload.kind === 'docker_recreate');
}

export function buildReconciler({ sync, logger, applied }: BuildReconcilerInput) {
  const actions = createReloadActions({
    docker: createDockerDriver({ socketPath: sync.settings.dockerSocket, logger }),
    supervisor: createSupervisorDriver({ url: sync.settings.supervisorUrl, logger }),
    ...(recreatesContainers(sync) ? { recreator: createEnvRecreator({ socketPath: sync.settings.dockerSocket, logger }) } : {}),
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
    ...(applied
      ? {
          appliedRevision: revisionOf(applied.text),
          applied: resolveDocument({
            doc: openDocument({ stored: parseIni(applied.text), schema: CONFIG_SCHEMA, keyring: applied.keyring, tolerate: true }).doc,
            schema: CONFIG_SCHEMA,
            settings: applied.resolve,
          }).doc,
        }
      : {}),
  });
}

/**
 * Finishes or undoes the container recreations a crash interrupted (a container renamed aside),
 * before any target runs: the service is then under its name with one whole environment.
 */
export async function repairInterruptedRecreates({ sync, logger }: Pick<BuildReconcilerInput, 'sync' | 'logger'>): Promise<void> {
  if (!recreatesContainers(sync)) return;
  const log = logger.child({ module: 'recreate-repair' });
  try {
    for (const outcome of await createEnvRecreator({ socketPath: sync.settings.dockerSocket, logger }).repairRecreates()) {
      const line = `an interrupted recreation of ${outcome.container} was ${outcome.action === 'failed' ? 'not repaired' : outcome.action}`;
      if (outcome.action === 'failed') log.error({ container: outcome.container, details: outcome.details }, line);
      else log.warn({ container: outcome.container, details: outcome.details }, line);
    }
  } catch (error) {
    // Docker not reachable: nothing can have been left aside that a recreate now would not repair first.
    log.warn({ err: error }, 'could not look for interrupted container recreations');
  }
}
