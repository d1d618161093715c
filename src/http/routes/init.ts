/**
 * GET /init/status: how far this start got. The phase (initializing until the first render is on
 * disk; then ready, waiting for services that are not up yet or still restarting, or degraded), what the
 * start itself did (defaults installed, secrets generated, template keys merged), and per target
 * whether its first files are in place and its service took them.
 */
import { Router } from 'express';
import type { PlainError } from '../../core/errors.js';
import type { SyncDispatcher } from '../../sync/dispatcher.js';
import { addPath, ROUTING, sendJson } from '../route-helpers.js';
import type { InstancesByTarget } from './sync.js';

/** What the start did before the API listened. */
export interface StartupReport {
  /** File names installed from the shipped defaults (a first start installs both). */
  readonly installed: readonly string[];
  readonly apiKeyGenerated: boolean;
  readonly passwordsGenerated: readonly string[];
  readonly masterKeyCreated: boolean;
  readonly upgrade: { readonly added: readonly string[]; readonly obsolete: readonly string[] };
}

type TargetInit = 'pending' | 'initialized' | 'waiting_for_service' | 'failed';

const TARGET_INIT: Readonly<Record<string, TargetInit>> = {
  unknown: 'pending',
  in_sync: 'initialized',
  pending_reload: 'waiting_for_service',
  // Its disk is full: retried, but nothing the services can fix.
  pending_write: 'failed',
  failed: 'failed',
  rolled_back: 'failed',
};

export function createInitRoutes({ sync, startup, instances }: { sync: SyncDispatcher; startup: StartupReport; instances: InstancesByTarget }): Router {
  const router = Router(ROUTING);
  addPath(router, '/init/status', {
    handlers: {
      getInitStatus: (_req, res) => {
        const status = sync.status();
        const readiness = sync.readiness();
        const byTarget = instances();
        const targets = status.targets.map((t) => ({
          target: t.target,
          state: TARGET_INIT[t.state] ?? 'pending',
          lastError: t.lastError,
          instances: byTarget.get(t.target) ?? [],
        }));
        let lastError: PlainError | null = status.source.error;
        for (const t of targets) if (!lastError && t.state === 'failed') lastError = t.lastError;
        const phase = !readiness.ready
          ? !status.source.valid
            ? 'degraded'
            : 'initializing'
          : targets.some((t) => t.state === 'failed')
            ? 'degraded'
            : targets.some((t) => t.state === 'waiting_for_service' || t.state === 'pending')
              ? 'waiting_for_services'
              : 'ready';
        sendJson(
          res,
          JSON.stringify({
            phase,
            firstStart: startup.installed.length > 0,
            startup,
            reasons: readiness.reasons,
            targets,
            lastError,
          }),
        );
      },
    },
  });
  return router;
}
