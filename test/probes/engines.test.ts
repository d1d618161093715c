/**
 * Service connection tests against the real parts: a private dockerd with busybox containers on
 * `--network none`, a private supervisord, and HTTP servers on 127.0.0.1 (one that answers, one
 * that never does, a port nobody listens on). The module is the one server.ts builds, with the
 * real drivers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseIni } from '../../src/ini/document.js';
import { createLogger } from '../../src/log.js';
import { createDockerDriver } from '../../src/reload/docker.js';
import { createSupervisorDriver } from '../../src/reload/supervisor.js';
import { createHttpProbe } from '../../src/probes/http-probe.js';
import { createConnectionChecks, type ConnectionCheck, type ConnectionChecks } from '../../src/probes/connection-checks.js';
import { parseSyncConfig } from '../../src/targets/target-spec.js';
import {
  ensureBusyboxImage,
  runBusybox,
  SKIP_DOCKERD,
  SKIP_SUPERVISORD,
  startDockerd,
  startSupervisord,
  type PrivateDockerd,
  type PrivateSupervisord,
} from '../support/engines.js';
import { eventually } from '../support/wait.js';
import { freePort } from '../support/ports.js';

const logger = createLogger({ level: 'silent' });
// TERM is trapped so a stop takes one sleep, not Docker's whole stop timeout (sh is PID 1).
const LOOP = 'trap "exit 0" TERM; while true; do sleep 0.2; done';
const SECRET_PASSWORD = 'Pr0be-s3cret';
const SECRET_TOKEN = 'qu3ry-t0ken';

async function listen(server: HttpServer | NetServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

function checksOf(system: string, config: string, input: { socketPath: string; supervisorUrl: string; timeoutMs: number }): ConnectionChecks {
  const { targets } = parseSyncConfig({ doc: parseIni(system), dataDir: '/srv/data', configDir: '/srv/data/config', own: [] });
  return createConnectionChecks({
    targets,
    configDoc: () => parseIni(config),
    docker: createDockerDriver({ socketPath: input.socketPath, logger }),
    supervisor: createSupervisorDriver({ url: input.supervisorUrl, logger }),
    http: createHttpProbe(),
    logger,
    timeoutMs: input.timeoutMs,
  });
}

const target = (name: string, reload: string, health = 'auto'): string =>
  `[target:${name}]\nsections = ${name}\nformat = env\noutput = out/${name}.env\nreload = ${reload}\nhealth = ${health}\n\n`;

/** How long /slow takes to answer. */
const SLOW_MS = 1000;
/** /gate answers its requests only once this many are waiting: probes made one after the other never get an answer. */
const GATE_SIZE = 3;

describe('HTTP probes against servers on 127.0.0.1, and engines that are not there', () => {
  let dir: string;
  let web: HttpServer;
  let silent: NetServer;
  const silentSockets = new Set<Socket>();
  let webPort: number;
  let silentPort: number;
  let closedPort: number;
  const seen: { path: string; headers: IncomingHttpHeaders }[] = [];
  const gated: ServerResponse[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'confhub-probe-'));
    web = createHttpServer((req, res) => {
      seen.push({ path: req.url ?? '', headers: req.headers });
      const path = (req.url ?? '').split('?')[0];
      if (path === '/slow') {
        setTimeout(() => res.writeHead(200).end('ok'), SLOW_MS);
        return;
      }
      if (path === '/gate') {
        gated.push(res);
        if (gated.length === GATE_SIZE) for (const waiting of gated.splice(0)) waiting.writeHead(200).end('ok');
        return;
      }
      res.writeHead(path === '/healthz' ? 200 : path === '/boom' ? 500 : 404).end('body');
    });
    webPort = await listen(web);
    // Accepts connections and never answers: a hung service.
    silent = createNetServer((socket) => {
      silentSockets.add(socket);
      socket.on('close', () => silentSockets.delete(socket));
    });
    silentPort = await listen(silent);
    closedPort = await freePort();
  });

  afterAll(async () => {
    for (const socket of silentSockets) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
    web.closeAllConnections();
    await new Promise<void>((resolve) => web.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('when a server answers after a delay, then the check has its status and a latency that includes the delay; credentials reach it as basic auth, never the result', async () => {
    const checks = checksOf(target('slow', 'none', `http:http://probe:${SECRET_PASSWORD}@127.0.0.1:${webPort}/slow?token=${SECRET_TOKEN}`), '', {
      socketPath: join(dir, 'no-docker.sock'),
      supervisorUrl: `unix://${join(dir, 'no-supervisor.sock')}`,
      timeoutMs: 3000,
    });
    const before = Date.now();
    const result = await checks.test('slow');
    const after = Date.now();
    expect(result).toMatchObject({
      name: 'slow',
      kind: 'target',
      ok: true,
      stale: false,
      checks: [{ kind: 'http', url: `http://127.0.0.1:${webPort}/slow`, source: 'health', status: 200, ok: true }],
    });
    const check = result.checks[0] as ConnectionCheck;
    // Measured on the clock the test reads too: it includes the delay and is no more than the call took.
    expect(check.latencyMs).toBeGreaterThanOrEqual(SLOW_MS - 20);
    expect(check.latencyMs).toBeLessThanOrEqual(after - before);
    expect(Date.parse(check.checkedAt)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(check.checkedAt)).toBeLessThanOrEqual(after);
    const request = seen.find((r) => r.path.startsWith('/slow'))!;
    expect(request.headers.authorization).toBe(`Basic ${Buffer.from(`probe:${SECRET_PASSWORD}`).toString('base64')}`);
    expect(request.path).toBe(`/slow?token=${SECRET_TOKEN}`);
    const text = JSON.stringify(result) + JSON.stringify(checks.list());
    expect(text).not.toContain(SECRET_PASSWORD);
    expect(text).not.toContain(SECRET_TOKEN);
  });

  it('when base URLs of config.ini answer 404 and 500, then the API root that is there is ok and the failing one is not', async () => {
    const config = `[gitea]\nbase_url = http://127.0.0.1:${webPort}/api/v1\n[portainer]\nbase_url = http://127.0.0.1:${webPort}/boom\n[npm]\nadmin_url = http://127.0.0.1:${webPort}/healthz\n`;
    const checks = checksOf('', config, {
      socketPath: join(dir, 'no-docker.sock'),
      supervisorUrl: `unix://${join(dir, 'no-supervisor.sock')}`,
      timeoutMs: 3000,
    });
    expect(await checks.test('gitea')).toMatchObject({ kind: 'url', ok: true, checks: [{ status: 404, source: 'gitea.base_url' }] });
    expect(await checks.test('portainer')).toMatchObject({ ok: false, checks: [{ status: 500, error: { code: 'HEALTH_FAILED' } }] });
    expect(await checks.test('npm')).toMatchObject({ ok: true, checks: [{ status: 200, source: 'npm.admin_url' }] });
  });

  it('when nothing listens on the port, then SERVICE_UNREACHABLE without waiting for the timeout; when the server never answers, then TIMEOUT once the probe timeout has passed', async () => {
    const config = `[closed]\nbase_url = http://user:${SECRET_PASSWORD}@127.0.0.1:${closedPort}/?token=${SECRET_TOKEN}\n[hung]\nbase_url = http://127.0.0.1:${silentPort}/\n`;
    const checks = checksOf('', config, {
      socketPath: join(dir, 'no-docker.sock'),
      supervisorUrl: `unix://${join(dir, 'no-supervisor.sock')}`,
      timeoutMs: 1500,
    });
    // A refused connection is its own answer: SERVICE_UNREACHABLE, where waiting out the timeout would say TIMEOUT.
    const closed = await checks.test('closed');
    expect(closed).toMatchObject({
      ok: false,
      checks: [{ kind: 'http', url: `http://127.0.0.1:${closedPort}/`, ok: false, error: { code: 'SERVICE_UNREACHABLE' } }],
    });
    expect(closed.checks[0]).not.toHaveProperty('status');
    expect(closed.checks[0]!.error!.message).toContain('ECONNREFUSED');
    expect(JSON.stringify(closed)).not.toContain(SECRET_PASSWORD);
    expect(JSON.stringify(closed)).not.toContain(SECRET_TOKEN);
    const started = Date.now();
    const hung = await checks.test('hung');
    // It did wait: a hung service is not given up on early.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1450);
    expect(hung).toMatchObject({ ok: false, checks: [{ ok: false, error: { code: 'TIMEOUT' } }] });
  });

  it('when the Docker socket and the supervisord socket do not exist, then the checks say SERVICE_UNREACHABLE and nothing throws', async () => {
    const socketPath = join(dir, 'missing', 'docker.sock');
    const checks = checksOf(target('web', 'docker:restart:web') + target('prog', 'supervisor:restart:prog'), '', {
      socketPath,
      supervisorUrl: `unix://${join(dir, 'missing', 'supervisor.sock')}`,
      timeoutMs: 3000,
    });
    // SERVICE_UNREACHABLE, not TIMEOUT: a missing socket fails the connect itself, nothing waits for the 3 s.
    const web = await checks.test('web');
    expect(web).toMatchObject({ ok: false, checks: [{ kind: 'container', container: 'web', ok: false, error: { code: 'SERVICE_UNREACHABLE' } }] });
    // Unknown, not "absent": without an engine nothing can be said about the container.
    expect(web.checks[0]).not.toHaveProperty('state');
    expect(web.checks[0]!.error!.message).toContain(socketPath);
    expect(await checks.test('prog')).toMatchObject({
      ok: false,
      checks: [{ kind: 'supervisor', program: 'prog', ok: false, error: { code: 'SERVICE_UNREACHABLE' } }],
    });
  });

  it('when list() starts a refresh of services that take time, then it answers before any of them did and they are checked at the same time', async () => {
    const config = ['a', 'b', 'c'].map((s) => `[${s}]\nbase_url = http://127.0.0.1:${webPort}/gate?${s}\n`).join('');
    // A long timeout: on a busy machine the three requests may take a while to arrive, and only their order matters.
    const checks = checksOf('', config, {
      socketPath: join(dir, 'no-docker.sock'),
      supervisorUrl: `unix://${join(dir, 'no-supervisor.sock')}`,
      timeoutMs: 8000,
    });
    expect(checks.list()).toMatchObject({ checkedAt: null, refreshing: true, services: [{ stale: true }, { stale: true }, { stale: true }] });
    await checks.idle();
    // /gate answers only when all three requests wait at once: checked one after the other, each would time out.
    const list = checks.list();
    expect(list.refreshing).toBe(false);
    expect(list.services.map((s) => [s.name, s.ok, s.stale])).toEqual([
      ['a', true, false],
      ['b', true, false],
      ['c', true, false],
    ]);
  });
});

describe.skipIf(SKIP_DOCKERD)('container checks against a private dockerd', () => {
  let engine: PrivateDockerd;
  let docker: Docker;
  let workDir: string;
  let checks: ConnectionChecks;

  beforeAll(async () => {
    engine = await startDockerd();
    await ensureBusyboxImage(engine.socketPath);
    docker = new Docker({ socketPath: engine.socketPath });
    workDir = mkdtempSync(join(tmpdir(), 'confhub-services-docker-'));
    const run = (name: string, script: string, extra: Partial<Docker.ContainerCreateOptions> = {}): Promise<string> =>
      runBusybox({ docker, name, script, confDir: join(workDir, name), extra });
    await run('svc-up', LOOP);
    await run('svc-healthy', LOOP, { Healthcheck: { Test: ['CMD', 'true'], Interval: 200_000_000, Timeout: 1_000_000_000, Retries: 1, StartPeriod: 0 } });
    await run('svc-sick', LOOP, { Healthcheck: { Test: ['CMD', 'false'], Interval: 200_000_000, Timeout: 1_000_000_000, Retries: 1, StartPeriod: 0 } });
    await run('svc-exited', 'exit 3');
    await run('svc-labelled', LOOP, { Labels: { 'com.docker.compose.service': 'labelled' } });
    const system = [
      target('up', 'docker:restart:svc-up'),
      target('healthy', 'docker:signal:HUP:svc-healthy'),
      target('sick', 'docker:exec:svc-sick:true'),
      target('exited', 'docker:restart:svc-exited'),
      target('labelled', 'docker:restart:label=com.docker.compose.service=labelled'),
      target('absent', 'docker:restart:svc-never-created'),
    ].join('');
    checks = checksOf(system, '', { socketPath: engine.socketPath, supervisorUrl: `unix://${join(workDir, 'no-supervisor.sock')}`, timeoutMs: 3000 });
    await eventually('the health checks settled', async () => {
      const [healthy, sick, exited] = await Promise.all([
        docker.getContainer('svc-healthy').inspect(),
        docker.getContainer('svc-sick').inspect(),
        docker.getContainer('svc-exited').inspect(),
      ]);
      return healthy.State.Health?.Status === 'healthy' && sick.State.Health?.Status === 'unhealthy' && exited.State.Status === 'exited';
    });
  });

  afterAll(async () => {
    await engine?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it("when containers run, are healthy, unhealthy, exited, found by label or absent, then each check reports Docker's state and health", async () => {
    const first = (name: string) => checks.test(name).then((s) => ({ ok: s.ok, check: s.checks[0] }));
    expect(await first('up')).toMatchObject({ ok: true, check: { kind: 'container', container: 'svc-up', ok: true, state: 'running', health: 'none' } });
    expect(await first('healthy')).toMatchObject({ ok: true, check: { ok: true, state: 'running', health: 'healthy' } });
    expect(await first('sick')).toMatchObject({ ok: false, check: { ok: false, state: 'running', health: 'unhealthy', error: { code: 'HEALTH_FAILED' } } });
    expect(await first('exited')).toMatchObject({
      ok: false,
      check: { ok: false, state: 'exited', error: { code: 'HEALTH_FAILED', message: 'container svc-exited is exited (exit code 3)' } },
    });
    expect(await first('labelled')).toMatchObject({ ok: true, check: { container: 'label=com.docker.compose.service=labelled', ok: true, state: 'running' } });
    expect(await first('absent')).toMatchObject({ ok: false, check: { ok: false, state: 'absent', error: { code: 'SERVICE_UNREACHABLE' } } });
    const before = Date.now();
    const { check } = await first('up');
    expect(check!.latencyMs).toBeGreaterThanOrEqual(0);
    expect(check!.latencyMs).toBeLessThanOrEqual(Date.now() - before);
  });

  it('when a container stops after it was checked, then the next test says so', async () => {
    expect((await checks.test('labelled')).ok).toBe(true);
    await docker.getContainer('svc-labelled').stop({ t: 1 });
    expect(await checks.test('labelled')).toMatchObject({ ok: false, checks: [{ state: 'exited' }] });
  });
});

describe.skipIf(SKIP_SUPERVISORD)('program checks against a private supervisord', () => {
  let supervisord: PrivateSupervisord;
  let checks: ConnectionChecks;

  beforeAll(async () => {
    supervisord = await startSupervisord([
      { name: 'runner', command: '/bin/sleep 600' },
      { name: 'idle', command: '/bin/sleep 600', options: { autostart: false } },
    ]);
    const system = target('runner', 'supervisor:restart:runner') + target('idle', 'supervisor:signal:HUP:idle') + target('ghost', 'supervisor:restart:ghost');
    checks = checksOf(system, '', { socketPath: join(supervisord.dir, 'no-docker.sock'), supervisorUrl: supervisord.url, timeoutMs: 3000 });
    await eventually('runner is RUNNING', async () => (await checks.test('runner')).ok === true);
  });

  afterAll(async () => {
    await supervisord?.stop();
  });

  it('when one program runs and another is stopped, then the checks say RUNNING and STOPPED; an unknown program fails without a state', async () => {
    expect(await checks.test('runner')).toMatchObject({ ok: true, checks: [{ kind: 'supervisor', program: 'runner', ok: true, state: 'RUNNING' }] });
    expect(await checks.test('idle')).toMatchObject({
      ok: false,
      checks: [{ program: 'idle', ok: false, state: 'STOPPED', error: { code: 'HEALTH_FAILED' } }],
    });
    const ghost = await checks.test('ghost');
    expect(ghost).toMatchObject({ ok: false, checks: [{ program: 'ghost', ok: false, error: { code: 'HEALTH_FAILED' } }] });
    expect(ghost.checks[0]).not.toHaveProperty('state');
    expect(ghost.checks[0]!.error!.message).toContain('ghost');
  });
});
