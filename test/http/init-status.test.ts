/** GET /api/v1/init/status on a first start: what it did, and each target's first files. */
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, startConfhub, type Confhub } from '../support/confhub.js';

let ch: Confhub;
afterEach(async () => {
  await ch?.close();
});

interface InitStatus {
  phase: string;
  firstStart: boolean;
  startup: { installed: string[]; apiKeyGenerated: boolean; passwordsGenerated: string[]; masterKeyCreated: boolean; upgrade: { added: string[] } };
  targets: { target: string; state: string; lastError: { code: string } | null }[];
}

const status = async (c: Confhub): Promise<InitStatus> => (await (await c.api('/api/v1/init/status')).json()) as InitStatus;

describe('GET /api/v1/init/status', () => {
  it('when a service is not up yet, then the phase waits for it while the other target is initialized; what the first start generated is listed, never the values', async () => {
    ch = await startConfhub({
      systemIni: `[sync]\noutput_roots = @DIR@\ndebounce_min_ms = 30\ndocker_socket = @DIR@/no-docker.sock\n\n[target:file]\nsections = cockpit\nformat = ini\noutput = @DIR@/out/file.ini\nreload = none\n\n[target:svc]\nsections = gitea\nformat = env\noutput = @DIR@/out/svc.env\nreload = docker:restart:not-there\n`,
    });
    // Ready once the files are on disk; each target's state follows when its lane has tried its service.
    await eventually('every lane finished its first run', async () => {
      const now = (await status(ch)) as { phase: string; targets: { state: string }[] };
      return now.phase !== 'initializing' && now.targets.every((t) => t.state !== 'pending');
    });
    const body = await status(ch);
    expect(body).toMatchObject({
      phase: 'waiting_for_services',
      startup: { apiKeyGenerated: true, masterKeyCreated: true, passwordsGenerated: ['nginx_proxy_manager.user_pwd', 'gitea.user_pwd', 'portainer.user_pwd'] },
      targets: [
        { target: 'file', state: 'initialized', lastError: null },
        { target: 'svc', state: 'waiting_for_service', lastError: { code: 'SERVICE_UNREACHABLE' } },
      ],
    });
    expect(JSON.stringify(body)).not.toContain(ch.apiKey);
  });
});
