/**
 * Environment variables delivered through the API to the real engines: a supervisord program gets
 * them through its include file (`supervisor:update`), a container by recreation
 * (`docker:recreate`); each sees exactly the stored values in its process environment, and a
 * rollback in the history brings back the old ones.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import Docker from 'dockerode';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSupervisorDriver } from '../../src/reload/supervisor.js';
import { eventually, startConfhub, type Confhub } from '../support/confhub.js';
import {
  BUSYBOX_IMAGE,
  ensureBusyboxImage,
  SKIP_DOCKERD,
  SKIP_SUPERVISORD,
  startDockerd,
  startSupervisord,
  type PrivateDockerd,
  type PrivateSupervisord,
} from '../support/engines.js';

const skip = SKIP_DOCKERD ?? SKIP_SUPERVISORD;
if (skip) console.warn(skip);

function environ(raw: string): Record<string, string> {
  return Object.fromEntries(
    raw
      .split('\0')
      .filter((entry) => entry !== '')
      .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
  );
}

describe.skipIf(skip !== undefined)('environment delivery to supervisord programs and containers', () => {
  let dir: string;
  let dockerd: PrivateDockerd;
  let supervisord: PrivateSupervisord;
  let docker: Docker;
  let ch: Confhub;

  async function containerEnviron(name: string): Promise<Record<string, string>> {
    const execution = await docker.getContainer(name).exec({ Cmd: ['cat', '/proc/1/environ'], AttachStdout: true, AttachStderr: true });
    const stream = await execution.start({ hijack: true, stdin: false });
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (chunk: Buffer) => chunks.push(chunk));
    docker.modem.demuxStream(stream, sink, sink);
    await new Promise((resolve) => stream.on('end', resolve));
    return environ(Buffer.concat(chunks).toString('utf8'));
  }

  async function programEnviron(): Promise<Record<string, string>> {
    const info = await createSupervisorDriver({ url: supervisord.url, logger: pino({ level: 'silent' }) }).processInfo('web');
    return environ(readFileSync(`/proc/${info.pid}/environ`, 'utf8'));
  }

  const patch = async (scope: string, body: unknown) =>
    (await ch.api(`/api/v1/env/${scope}?wait=true`, { method: 'PATCH', body: JSON.stringify(body) })).json() as Promise<Record<string, unknown>>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'confhub-env-delivery-'));
    supervisord = await startSupervisord([{ name: 'web', command: '/bin/sleep 1000', options: { startsecs: 1 } }], { include: ['env/*.conf'] });
    mkdirSync(join(supervisord.dir, 'env'));
    dockerd = await startDockerd();
    await ensureBusyboxImage(dockerd.socketPath);
    docker = new Docker({ socketPath: dockerd.socketPath });
    const box = await docker.createContainer({
      name: 'envbox',
      Image: BUSYBOX_IMAGE,
      Cmd: ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 0.1; done'],
      Env: ['KEPT=by hand'],
      Labels: { app: 'box' },
      HostConfig: { NetworkMode: 'none', RestartPolicy: { Name: 'unless-stopped' } },
    });
    await box.start();
    // As a crash right after the rename step of a recreation leaves it: the start puts it back.
    await box.rename({ name: 'envbox.confhub-old' });
    ch = await startConfhub({
      systemIni: `[sync]
output_roots = ${dir}, ${supervisord.dir}
docker_socket = ${dockerd.socketPath}
supervisor_url = ${supervisord.url}
debounce_min_ms = 30

[env:web]
WEB_PORT = {{ cockpit.port }}

[target:web-env]
env = web
format = supervisor_env
output = ${supervisord.dir}/env/web.conf
mode = 0644
reload = supervisor:update:web
health = auto
timeout = 20

[target:box-env]
env = box
format = env
output = ${dir}/box.env
reload = docker:recreate:label=app=box
health = auto
timeout = 30
`,
    });
    await eventually('confhub is ready', async () => (await fetch(`${ch.url}/readyz`)).status === 200, 60_000);
  }, 180_000);

  afterAll(async () => {
    await ch?.close();
    await supervisord?.stop();
    await dockerd?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('when a recreation was interrupted by a crash, then the next start puts the container back under its name, running', async () => {
    const names = (await docker.listContainers({ all: true })).map((c) => [c.Names[0], c.State]);
    expect(names).toEqual([['/envbox', 'running']]);
  });

  it('when variables change, then the program and the container see exactly them; a global change reaches both; a rollback brings back the old ones', async () => {
    const nasty = 'héllo "x" 100% a,b=c ; # \\ $HOME';
    const web = await patch('web', { GREETING: nasty });
    expect(web).toMatchObject({
      consumers: [{ consumer: 'web', targets: [{ target: 'web-env', reload: 'supervisorctl update web' }] }],
      sync: { outcome: 'applied', targets: expect.arrayContaining([expect.objectContaining({ target: 'web-env', reloaded: true, healthy: true })]) },
    });
    expect(await programEnviron()).toMatchObject({ GREETING: nasty, WEB_PORT: '9090' });
    // A value supervisord cannot carry exactly is refused before anything is written.
    const refused = await patch('web', { QUOTED: "'single'" });
    expect(refused).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ field: 'web.QUOTED', code: 'INVALID_ENV_VALUE' }] });
    expect(String(refused.details)).toContain('target web-env');

    const token = 'line one\nline two "quoted" \'single\'';
    const box = await patch('box', { API_TOKEN: { value: token, secret: true }, PLAIN: 'a=b' });
    expect(box).toMatchObject({
      sync: { outcome: 'applied', targets: expect.arrayContaining([expect.objectContaining({ target: 'box-env', reloaded: true, healthy: true })]) },
    });
    const first = await containerEnviron('envbox');
    expect(first).toMatchObject({ API_TOKEN: token, PLAIN: 'a=b', KEPT: 'by hand' });
    expect((await docker.getContainer('envbox').inspect()).HostConfig.RestartPolicy?.Name).toBe('unless-stopped');

    const global = await patch('global', { TZ: 'Asia/Shanghai' });
    expect((global.consumers as { consumer: string }[]).map((c) => c.consumer)).toEqual(['box', 'web']);
    expect(await programEnviron()).toMatchObject({ TZ: 'Asia/Shanghai', GREETING: nasty });
    expect(await containerEnviron('envbox')).toMatchObject({ TZ: 'Asia/Shanghai', API_TOKEN: token });

    // Roll back to before the global change: both consumers lose TZ again.
    const commits = (await (await ch.api('/api/v1/settings/history?limit=2')).json()) as { commits: { id: string }[] };
    const rolled = await ch.api('/api/v1/settings/rollback?wait=true', { method: 'POST', body: JSON.stringify({ commit: commits.commits[1]!.id }) });
    expect(rolled.status).toBe(200);
    expect(await programEnviron()).not.toHaveProperty('TZ');
    const after = await containerEnviron('envbox');
    expect(after).not.toHaveProperty('TZ');
    expect(after).toMatchObject({ API_TOKEN: token, KEPT: 'by hand' });
    expect((await docker.listContainers({ all: true })).map((c) => c.Names[0])).toEqual(['/envbox']);
  }, 180_000);
});
