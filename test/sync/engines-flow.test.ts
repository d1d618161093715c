import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import Docker from 'dockerode';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSupervisorDriver } from '../../src/reload/supervisor.js';
import { revisionOf } from '../../src/settings/revision.js';
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

/**
 * One confhub, three services of the real engines, all fed from config.ini [extra] mode:
 * a supervisord program that reads its file at start (and crashes on "mode = crash"), a
 * container with a directory bind mount that is restarted, and a container with a single-file
 * bind mount that is sent HUP.
 */
describe.skipIf(skip !== undefined)('sync against the real Docker engine and supervisord', () => {
  let dir: string;
  let dockerd: PrivateDockerd;
  let supervisord: PrivateSupervisord;
  let docker: Docker;
  let ch: Confhub;
  const supervisor = () => createSupervisorDriver({ url: supervisord.url, logger: pino({ level: 'silent' }) });

  async function exec(container: string, argv: string[]): Promise<string> {
    const execution = await docker.getContainer(container).exec({ Cmd: argv, AttachStdout: true, AttachStderr: true });
    const stream = await execution.start({ hijack: true, stdin: false });
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (chunk: Buffer) => chunks.push(chunk));
    docker.modem.demuxStream(stream, sink, sink);
    await new Promise((resolve) => stream.on('end', resolve));
    return Buffer.concat(chunks).toString('utf8');
  }

  const startedAt = async (container: string): Promise<string> => (await docker.getContainer(container).inspect()).State.StartedAt;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'confhub-engines-'));
    for (const sub of ['svc', 'conf']) mkdirSync(join(dir, sub));
    writeFileSync(join(dir, 'single.ini'), '');
    const svc = join(dir, 'svc');
    supervisord = await startSupervisord([
      {
        name: 'app',
        command: `/bin/sh -c 'if grep -q "mode = crash" ${svc}/app.conf; then exit 3; fi; cat ${svc}/app.conf > ${svc}/seen; exec sleep 1000'`,
        options: { startsecs: 1 },
      },
    ]);
    dockerd = await startDockerd();
    await ensureBusyboxImage(dockerd.socketPath);
    docker = new Docker({ socketPath: dockerd.socketPath });
    const loop = 'trap "exit 0" TERM; trap "cat /etc/app.ini > /tmp/hup" HUP; while true; do sleep 0.1; done';
    for (const [name, bind] of [
      ['dirmount', `${join(dir, 'conf')}:/conf`],
      ['filemount', `${join(dir, 'single.ini')}:/etc/app.ini`],
    ] as const) {
      const container = await docker.createContainer({
        name,
        Image: BUSYBOX_IMAGE,
        Cmd: ['sh', '-c', loop],
        HostConfig: { NetworkMode: 'none', Binds: [bind] },
      });
      await container.start();
    }
    ch = await startConfhub({
      configExtra: '\n[extra]\nmode = first\n',
      files: { 'app.tmpl': 'mode = {{ extra.mode }}\n' },
      systemIni: `[sync]
output_roots = ${dir}
docker_socket = ${dockerd.socketPath}
supervisor_url = ${supervisord.url}
debounce_min_ms = 50

[target:app]
sections = extra
format = template
template = app.tmpl
output = ${svc}/app.conf
reload = supervisor:restart:app
health = auto
timeout = 20

[target:dirmount]
sections = extra
format = template
template = app.tmpl
output = ${join(dir, 'conf')}/app.ini
mode = 0644
reload = docker:restart:dirmount
health = auto
timeout = 20

[target:filemount]
sections = extra
format = template
template = app.tmpl
output = ${join(dir, 'single.ini')}
write = inplace
mode = 0644
reload = docker:signal:HUP:filemount
health = auto
timeout = 20
`,
    });
    await eventually('confhub is ready', async () => (await fetch(`${ch.url}/readyz`)).status === 200, 30_000);
  }, 120_000);

  afterAll(async () => {
    await ch?.close();
    await supervisord?.stop();
    await dockerd?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('when a PUT changes the source, then the program restarts with a new pid and reads the new file, the restarted container and the single-file mount see it, and HUP arrives', async () => {
    const pidBefore = (await supervisor().processInfo('app')).pid;
    const startedBefore = await startedAt('dirmount');
    const res = await ch.api('/api/v1/settings/extra?key=mode&value=second&wait=true', { method: 'PUT' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { sync: { outcome: string; targets: { target: string; reloaded: boolean; healthy: boolean; writeMode: string }[] } };
    expect(body.sync.outcome).toBe('applied');
    expect(body.sync.targets.map((t) => [t.target, t.writeMode, t.reloaded, t.healthy])).toEqual([
      ['app', 'rename', true, true],
      ['dirmount', 'rename', true, true],
      ['filemount', 'inplace', true, true],
    ]);

    const after = await supervisor().processInfo('app');
    expect(after.pid).not.toBe(pidBefore);
    expect(readFileSync(join(dir, 'svc', 'seen'), 'utf8')).toBe('mode = second\n');

    expect(await exec('dirmount', ['cat', '/conf/app.ini'])).toBe('mode = second\n');
    expect(Date.parse(await startedAt('dirmount'))).toBeGreaterThan(Date.parse(startedBefore));

    expect(await exec('filemount', ['cat', '/etc/app.ini'])).toBe('mode = second\n');
    await eventually('the container handled HUP', async () => (await exec('filemount', ['cat', '/tmp/hup'])) === 'mode = second\n', 5000);
  }, 60_000);

  it("when the program does not come back healthy after the reload (it exits during supervisord's start-up check), then its files are restored, it runs again, the revision is rolled back and config.ini is back at the last applied revision", async () => {
    const applied = ch.readConfig();
    const res = await ch.api('/api/v1/settings/extra?key=mode&value=crash&wait=true', { method: 'PUT' });
    expect(res.status).toBe(502);
    const body = (await res.json()) as { code: string; details: string; sync: { outcome: string } };
    expect(body.code).toBe('SYNC_FAILED');
    expect(body.sync.outcome).toBe('rolled_back');
    expect(body.details).toMatch(/target app: (RELOAD_FAILED|HEALTH_FAILED)/);

    // The failing lane put its own files back before answering.
    expect(readFileSync(join(dir, 'svc', 'app.conf'), 'utf8')).toBe('mode = second\n');
    await eventually('the program runs again', async () => (await supervisor().processInfo('app')).state === 'RUNNING', 15_000);
    expect(readFileSync(join(dir, 'svc', 'seen'), 'utf8')).toBe('mode = second\n');
    await eventually('config.ini is rolled back', () => ch.readConfig() === applied, 10_000);
    // The other lanes applied the failed revision on their own; the restored one brings them back.
    // A container being restarted answers exec with 409 for a moment.
    const reads = (container: string, path: string) => async () => (await exec(container, ['cat', path]).catch(() => '')) === 'mode = second\n';
    await eventually('the containers see the restored revision', reads('dirmount', '/conf/app.ini'), 30_000);
    await eventually('the single-file mount sees it', reads('filemount', '/etc/app.ini'), 30_000);

    // The restored revision flowed through every lane: each target is in sync with config.ini again,
    // and the history keeps the failed commit's own outcome.
    await eventually('every target is in sync with the restored revision', async () => {
      const status = (await (await ch.api('/api/v1/sync/status')).json()) as { targets: { state: string; lastRevision: string }[] };
      return status.targets.every((t) => t.state === 'in_sync' && t.lastRevision === revisionOf(applied));
    });
    const history = (await (await ch.api('/api/v1/settings/history?limit=2')).json()) as { commits: { source: string; sync: { outcome: string } | null }[] };
    expect(history.commits.map((c) => [c.source, c.sync?.outcome])).toEqual([
      ['auto_rollback', 'applied'],
      ['api', 'rolled_back'],
    ]);
  }, 90_000);
});
