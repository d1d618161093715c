/**
 * The worker's one reload API over the real parts: a private dockerd with busybox containers, a
 * private supervisord, an HTTP hook on 127.0.0.1, and check commands run with execFile.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { sleep } from '../../src/core/clock.js';
import { createDockerDriver, startedAtNanos, type ContainerState, type DockerDriver } from '../../src/reload/docker.js';
import { checkArgv, createReloadActions, firstLines, type ReloadActions } from '../../src/reload/reload-actions.js';
import { describeAction } from '../../src/targets/target-spec.js';
import { createSupervisorDriver, type SupervisorDriver } from '../../src/reload/supervisor.js';
import type { ContainerRef, ReloadAction } from '../../src/targets/target-spec.js';
import {
  ensureBusyboxImage,
  SKIP_DOCKERD,
  SKIP_SUPERVISORD,
  startDockerd,
  startSupervisord,
  type PrivateDockerd,
  type PrivateSupervisord,
  runBusybox,
} from '../support/engines.js';
import { createManualClock } from '../support/manual-clock.js';
import { eventually, expectAppError } from '../support/wait.js';

const logger = createLogger({ level: 'silent' });
const TIMEOUT = { timeoutMs: 8000 };

describe('pure helpers', () => {
  it('when {file} appears, then every occurrence is the staged path; without it, the path is appended', () => {
    expect(checkArgv(['/usr/sbin/nginx', '-t', '-c', '{file}'], '/s/x.conf')).toEqual(['/usr/sbin/nginx', '-t', '-c', '/s/x.conf']);
    expect(checkArgv(['/bin/check', '--config={file}', '{file}'], '/s/a')).toEqual(['/bin/check', '--config=/s/a', '/s/a']);
    expect(checkArgv(['/usr/bin/jq', 'empty'], '/s/a.json')).toEqual(['/usr/bin/jq', 'empty', '/s/a.json']);
  });

  it('when describing actions, then the text says what runs and never shows URL credentials or queries', () => {
    const ref: ContainerRef = { by: 'label', label: 'com.docker.compose.service', value: 'gitea' };
    const cases: [ReloadAction, string][] = [
      [{ kind: 'none' }, 'none'],
      [{ kind: 'docker_restart', container: { by: 'name', name: 'websoft9-git' } }, 'docker restart websoft9-git'],
      [{ kind: 'docker_signal', signal: 'HUP', container: ref }, 'docker kill --signal HUP label=com.docker.compose.service=gitea'],
      [{ kind: 'docker_exec', container: { by: 'name', name: 'proxy' }, command: ['nginx', '-s', 'reload'] }, 'docker exec proxy nginx -s reload'],
      [{ kind: 'supervisor_restart', program: 'cockpit' }, 'supervisorctl restart cockpit'],
      [{ kind: 'supervisor_signal', signal: 'HUP', program: 'nginx' }, 'supervisorctl signal HUP nginx'],
      [{ kind: 'http', method: 'POST', url: 'http://u:pw@127.0.0.1:81/reload?token=x' }, 'POST http://127.0.0.1:81/reload'],
    ];
    for (const [action, text] of cases) expect(describeAction(action)).toBe(text);
  });

  it('when output is long, then only the first non-empty lines are kept', () => {
    const text = Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n\n');
    const kept = firstLines(text).split('\n');
    expect(kept.slice(0, 2)).toEqual(['line 0', 'line 1']);
    expect(kept.length).toBe(11);
  });
});

describe('service actions on a manual clock, with fake drivers', () => {
  const RUNNING: ContainerState = { running: true, status: 'running', startedAt: '2026-01-01T00:00:00Z', health: undefined, restartCount: 0, exitCode: 0 };
  const unused = (): never => {
    throw new Error('not used by this test');
  };

  it('when a reload takes several steps, then they share one budget on the clock, and verify gives the wait the whole timeout', async () => {
    const clock = createManualClock();
    const calls: { step: string; timeoutMs: number; stableMs?: number }[] = [];
    const docker = {
      async inspectState(_ref: ContainerRef, options?: { timeoutMs?: number }) {
        calls.push({ step: 'inspect', timeoutMs: options!.timeoutMs! });
        await sleep(clock, 300);
        return RUNNING;
      },
      async restart(_ref: ContainerRef, options: { timeoutMs: number }) {
        calls.push({ step: 'restart', timeoutMs: options.timeoutMs });
        await sleep(clock, 1200);
      },
      async waitHealthy(_ref: ContainerRef, options: { timeoutMs: number; stableMs?: number }) {
        calls.push({ step: 'wait', timeoutMs: options.timeoutMs, ...(options.stableMs !== undefined ? { stableMs: options.stableMs } : {}) });
        return RUNNING;
      },
    } as unknown as DockerDriver;
    const actions = createReloadActions({ docker, supervisor: { processInfo: unused } as unknown as SupervisorDriver, logger, stableMs: 500, clock });
    const action: ReloadAction = { kind: 'docker_restart', container: { by: 'name', name: 'web' } };
    const result = await clock.run(actions.reload(action, TIMEOUT));
    await actions.verify({ action, health: { kind: 'auto' }, reloadResult: result, timeoutMs: 800 });
    expect(calls).toEqual([
      { step: 'inspect', timeoutMs: 8000 },
      // What the inspect used of the 8 s is gone.
      { step: 'restart', timeoutMs: 7700 },
      // The stability window is capped at half the timeout.
      { step: 'wait', timeoutMs: 800, stableMs: 400 },
    ]);
  });

  it("when verify probes an HTTP health URL, then the probe runs on the actions' clock and gives up exactly at the timeout", async () => {
    let gets = 0;
    const server = createServer((_req, res) => {
      gets++;
      res.writeHead(503).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const clock = createManualClock();
      const actions = createReloadActions({ docker: {} as DockerDriver, supervisor: {} as SupervisorDriver, logger, clock });
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`;
      const start = clock.now();
      const error = await expectAppError(
        clock.run(actions.verify({ action: { kind: 'none' }, health: { kind: 'http', url }, reloadResult: { reloaded: false }, timeoutMs: 2000 })),
        'HEALTH_FAILED',
      );
      // Without a health_window, the answers must stay 2xx for the default second (half the timeout at most).
      expect(error.details).toContain('not 2xx for 1000 ms in a row within 2000 ms');
      expect(gets).toBeGreaterThan(0);
      expect(clock.now() - start).toBe(2000);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("when a target declares a health window, then verify holds the service to it (HTTP and auto alike), and a templated URL's own text is what messages show", async () => {
    const probes: { url: string; options: { timeoutMs: number; stableMs: number; shown?: string } }[] = [];
    const posts: { url: string; options: { timeoutMs: number; shown?: string } }[] = [];
    const waits: { stableMs?: number }[] = [];
    const http = {
      async postReload(url: string, options: { timeoutMs: number; shown?: string }) {
        posts.push({ url, options });
      },
      async probeHealth(url: string, options: { timeoutMs: number; stableMs: number; shown?: string }) {
        probes.push({ url, options });
      },
    };
    const supervisor = {
      async waitRunning(_program: string, options: { stableMs?: number }) {
        waits.push({ stableMs: options.stableMs! });
      },
    } as unknown as SupervisorDriver;
    const actions = createReloadActions({ docker: {} as DockerDriver, supervisor, logger, http, stableMs: 1000 });
    const hup: ReloadAction = { kind: 'supervisor_signal', signal: 'HUP', program: 'nginx' };
    const url = 'http://127.0.0.1:8082/';
    await actions.verify({
      action: hup,
      health: { kind: 'http', url, windowMs: 3000, shown: 'http://127.0.0.1:8082/' },
      reloadResult: { reloaded: true },
      timeoutMs: 10_000,
    });
    await actions.verify({ action: hup, health: { kind: 'http', url }, reloadResult: { reloaded: true }, timeoutMs: 10_000 });
    await actions.verify({ action: hup, health: { kind: 'http', url }, reloadResult: { reloaded: true }, timeoutMs: 600 });
    await actions.verify({ action: hup, health: { kind: 'auto', windowMs: 2500 }, reloadResult: { reloaded: true }, timeoutMs: 10_000 });
    expect(probes).toEqual([
      { url, options: { timeoutMs: 10_000, stableMs: 3000, shown: 'http://127.0.0.1:8082/' } },
      { url, options: { timeoutMs: 10_000, stableMs: 1000 } },
      { url, options: { timeoutMs: 600, stableMs: 300 } },
    ]);
    expect(waits).toEqual([{ stableMs: 2500 }]);

    const hook: ReloadAction = { kind: 'http', method: 'POST', url: 'http://127.0.0.1:9/hooks/s3cr3t-token', shown: 'http://127.0.0.1:9/hooks/******' };
    await actions.reload(hook, { timeoutMs: 1000 });
    expect(posts).toEqual([{ url: hook.url, options: { timeoutMs: 1000, shown: 'http://127.0.0.1:9/hooks/******' } }]);
    expect(actions.describe(hook)).toBe('POST http://127.0.0.1:9/hooks/******');
  });

  it('when a check runs on the installed file, then {file} is the output path and nothing is appended (it checks the whole configuration)', () => {
    expect(checkArgv(['/usr/sbin/nginx', '-t', '-c', '/etc/nginx/nginx.conf'], '/etc/nginx/conf.d/site.conf', { append: false })).toEqual([
      '/usr/sbin/nginx',
      '-t',
      '-c',
      '/etc/nginx/nginx.conf',
    ]);
    expect(checkArgv(['/usr/bin/test', '-s', '{file}'], '/etc/site.conf', { append: false })).toEqual(['/usr/bin/test', '-s', '/etc/site.conf']);
  });
});

describe.skipIf(SKIP_DOCKERD || SKIP_SUPERVISORD)('service actions against private engines', () => {
  let dockerd: PrivateDockerd;
  let supervisord: PrivateSupervisord;
  let docker: Docker;
  let actions: ReloadActions;
  let dir: string;
  let hook: Server;
  let hookBase: string;
  let hookPosts = 0;

  const LOOP = 'trap "exit 0" TERM; while true; do sleep 0.2; done';
  const app: ContainerRef = { by: 'label', label: 'com.docker.compose.service', value: 'app' };

  const run = (name: string, script: string, extra: Partial<Docker.ContainerCreateOptions> = {}): Promise<string> =>
    runBusybox({ docker, name, script, confDir: join(dir, name), extra });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'confhub-actions-test-'));
    const progDir = join(dir, 'prog');
    mkdirSync(progDir);
    writeFileSync(join(progDir, 'conf'), 'one\n');
    [dockerd, supervisord] = await Promise.all([
      startDockerd(),
      startSupervisord([
        {
          name: 'svc',
          command: `/bin/sh -c 'cat ${progDir}/conf > ${progDir}/seen; trap "echo HUP >> ${progDir}/hups" HUP; trap "exit 0" TERM; while true; do sleep 0.2; done'`,
          options: { startsecs: 0 },
        },
        { name: 'dies', command: `/bin/sh -c 'sleep 0.3; exit 1'`, options: { autostart: false, startsecs: 0 } },
      ]),
    ]);
    await ensureBusyboxImage(dockerd.socketPath);
    docker = new Docker({ socketPath: dockerd.socketPath });
    hook = createServer((req, res) => {
      if (req.method === 'POST' && req.url === '/reload') hookPosts++;
      res.writeHead(req.url === '/broken' ? 500 : 200).end();
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    hookBase = `http://127.0.0.1:${(hook.address() as AddressInfo).port}`;
    actions = createReloadActions({
      docker: createDockerDriver({ socketPath: dockerd.socketPath, logger }),
      supervisor: createSupervisorDriver({ url: supervisord.url, logger }),
      logger,
      stableMs: 500,
    });
    await run('app-1', `echo started >> /conf/starts; trap "echo HUP >> /conf/hups" HUP; ${LOOP}`, { Labels: { 'com.docker.compose.service': 'app' } });
  });

  afterAll(async () => {
    hook?.closeAllConnections();
    await Promise.all([dockerd?.stop(), supervisord?.stop(), hook && new Promise<void>((resolve) => hook.close(() => resolve()))]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('when the action is none, then nothing is reloaded and verify has nothing to do', async () => {
    const result = await actions.reload({ kind: 'none' }, TIMEOUT);
    expect(result).toEqual({ reloaded: false });
    await actions.verify({ action: { kind: 'none' }, health: { kind: 'auto' }, reloadResult: result, ...TIMEOUT });
  });

  it('when a container chosen by label is restarted, then "before" holds the old StartedAt and verify sees the new run', async () => {
    const action: ReloadAction = { kind: 'docker_restart', container: app };
    const result = await actions.reload(action, TIMEOUT);
    expect(result.reloaded).toBe(true);
    expect(result.before?.startedAt).toMatch(/^\d{4}-/);
    await actions.verify({ action, health: { kind: 'auto' }, reloadResult: result, ...TIMEOUT });
    const now = (await docker.getContainer('app-1').inspect()).State.StartedAt;
    expect(startedAtNanos(now)! > startedAtNanos(result.before!.startedAt!)!).toBe(true);
    expect(readFileSync(join(dir, 'app-1', 'starts'), 'utf8')).toBe('started\nstarted\n');
  });

  it('when a container is signalled, then it gets the signal and verify sees it still up', async () => {
    const action: ReloadAction = { kind: 'docker_signal', signal: 'HUP', container: app };
    const result = await actions.reload(action, TIMEOUT);
    await eventually('the condition holds', () => existsSync(join(dir, 'app-1', 'hups')));
    await actions.verify({ action, health: { kind: 'auto' }, reloadResult: result, ...TIMEOUT });
  });

  it('when the reload is a docker exec, then its exit code decides', async () => {
    const ok: ReloadAction = { kind: 'docker_exec', container: app, command: ['touch', '/conf/reloaded'] };
    const result = await actions.reload(ok, TIMEOUT);
    expect(existsSync(join(dir, 'app-1', 'reloaded'))).toBe(true);
    await actions.verify({ action: ok, health: { kind: 'auto' }, reloadResult: result, ...TIMEOUT });
    const bad = await expectAppError(actions.reload({ kind: 'docker_exec', container: app, command: ['cat', '/conf/missing'] }, TIMEOUT), 'RELOAD_FAILED');
    expect(bad.details).toContain('exit code 1');
    expect(bad.details).toContain('/conf/missing');
  });

  it('when a restarted container dies at once, then verify throws HEALTH_FAILED', async () => {
    const conf = await run('app-crash', `if [ -f /conf/crash ]; then exit 2; fi; ${LOOP}`);
    writeFileSync(join(conf, 'crash'), '');
    const action: ReloadAction = { kind: 'docker_restart', container: { by: 'name', name: 'app-crash' } };
    const result = await actions.reload(action, TIMEOUT);
    const error = await expectAppError(actions.verify({ action, health: { kind: 'auto' }, reloadResult: result, timeoutMs: 4000 }), 'HEALTH_FAILED');
    expect(error.details).toContain('exit code 2');
  });

  it('when a supervisord program is restarted, then "before" holds pid and start and verify sees the new process', async () => {
    const progDir = join(dir, 'prog');
    writeFileSync(join(progDir, 'conf'), 'two\n');
    const action: ReloadAction = { kind: 'supervisor_restart', program: 'svc' };
    const result = await actions.reload(action, TIMEOUT);
    expect(result.before?.pid).toBeGreaterThan(0);
    expect(result.before?.start).toBeGreaterThan(0);
    await actions.verify({ action, health: { kind: 'auto' }, reloadResult: result, ...TIMEOUT });
    expect(readFileSync(join(progDir, 'seen'), 'utf8')).toBe('two\n');
  });

  it('when a supervisord program is signalled, then it gets the signal and verify sees it running', async () => {
    const action: ReloadAction = { kind: 'supervisor_signal', signal: 'HUP', program: 'svc' };
    const result = await actions.reload(action, TIMEOUT);
    await eventually('the condition holds', () => existsSync(join(dir, 'prog', 'hups')));
    await actions.verify({ action, health: { kind: 'auto' }, reloadResult: result, ...TIMEOUT });
  });

  it('when a restarted program dies inside the stability window, then verify throws HEALTH_FAILED', async () => {
    const action: ReloadAction = { kind: 'supervisor_restart', program: 'dies' };
    const result = await actions.reload(action, TIMEOUT);
    const error = await expectAppError(actions.verify({ action, health: { kind: 'auto' }, reloadResult: result, timeoutMs: 3000 }), 'HEALTH_FAILED');
    expect(error.details).toContain('EXITED');
  });

  it('when the reload is an HTTP hook, then it is POSTed; auto health adds nothing, http health probes the URL', async () => {
    const action: ReloadAction = { kind: 'http', method: 'POST', url: `${hookBase}/reload` };
    const result = await actions.reload(action, TIMEOUT);
    expect(result).toEqual({ reloaded: true });
    expect(hookPosts).toBe(1);
    await actions.verify({ action, health: { kind: 'auto' }, reloadResult: result, ...TIMEOUT });
    await actions.verify({ action, health: { kind: 'http', url: `${hookBase}/health` }, reloadResult: result, ...TIMEOUT });
    await expectAppError(
      actions.verify({ action, health: { kind: 'http', url: `${hookBase}/broken` }, reloadResult: result, timeoutMs: 500 }),
      'HEALTH_FAILED',
    );
    await expectAppError(actions.reload({ kind: 'http', method: 'POST', url: `${hookBase}/broken` }, TIMEOUT), 'RELOAD_FAILED');
  });

  it('when health is none, then verify does not even look at the service', async () => {
    const gone: ReloadAction = { kind: 'docker_restart', container: { by: 'name', name: 'never-created' } };
    await actions.verify({ action: gone, health: { kind: 'none' }, reloadResult: { reloaded: true }, ...TIMEOUT });
    await expectAppError(actions.verify({ action: gone, health: { kind: 'auto' }, reloadResult: { reloaded: true }, timeoutMs: 1000 }), 'HEALTH_FAILED');
  });

  it('when an engine is unreachable, then reload says SERVICE_UNREACHABLE and verify HEALTH_FAILED', async () => {
    const offline = createReloadActions({
      docker: createDockerDriver({ socketPath: join(dir, 'no-docker.sock'), logger }),
      supervisor: createSupervisorDriver({ url: `unix://${join(dir, 'no-supervisor.sock')}`, logger }),
      logger,
    });
    await expectAppError(offline.reload({ kind: 'docker_restart', container: app }, TIMEOUT), 'SERVICE_UNREACHABLE');
    await expectAppError(offline.reload({ kind: 'supervisor_restart', program: 'svc' }, TIMEOUT), 'SERVICE_UNREACHABLE');
    const error = await expectAppError(
      offline.verify({
        action: { kind: 'supervisor_signal', signal: 'HUP', program: 'svc' },
        health: { kind: 'auto' },
        reloadResult: { reloaded: true },
        ...TIMEOUT,
      }),
      'HEALTH_FAILED',
    );
    expect(error.details).toContain('SERVICE_UNREACHABLE');
  });

  it('when an exec check accepts or rejects the staged file, then it passes or throws CHECK_FAILED with its output', async () => {
    const staged = join(dir, 'staged.conf');
    writeFileSync(staged, 'expected = yes\n');
    await actions.runCheck({ kind: 'exec', argv: ['/bin/grep', '-q', 'expected', '{file}'] }, staged, TIMEOUT);
    // No {file}: the staged path is appended.
    await actions.runCheck({ kind: 'exec', argv: ['/bin/grep', '-q', 'expected'] }, staged, TIMEOUT);
    const rejected = await expectAppError(actions.runCheck({ kind: 'exec', argv: ['/bin/grep', '-q', 'absent', '{file}'] }, staged, TIMEOUT), 'CHECK_FAILED');
    expect(rejected.details).toContain('exit code 1');
    const noisy = await expectAppError(actions.runCheck({ kind: 'exec', argv: ['/bin/cat', '{file}.missing'] }, staged, TIMEOUT), 'CHECK_FAILED');
    expect(noisy.details).toContain('No such file');
  });

  it('when a check runs on the installed file, then the path replaces {file} but is not appended, and a rejection says it was the installed file', async () => {
    const empty = join(dir, 'empty.conf');
    writeFileSync(empty, '');
    // `test -s` alone is true (a non-empty word); `test -s EMPTY` is false.
    await actions.runCheck({ kind: 'exec', argv: ['/usr/bin/test', '-s'] }, empty, { ...TIMEOUT, installed: true });
    await expectAppError(actions.runCheck({ kind: 'exec', argv: ['/usr/bin/test', '-s'] }, empty, TIMEOUT), 'CHECK_FAILED');
    const rejected = await expectAppError(
      actions.runCheck({ kind: 'exec', argv: ['/usr/bin/test', '-s', '{file}'] }, empty, { ...TIMEOUT, installed: true }),
      'CHECK_FAILED',
    );
    expect(rejected.message).toBe('Check rejected the installed file: exit code 1');
  });

  it('when an exec check gets shell syntax, then no shell interprets it; when it hangs, then it is killed at the timeout', async () => {
    const staged = join(dir, 'staged.conf');
    const literal = await expectAppError(actions.runCheck({ kind: 'exec', argv: ['/bin/ls', `$(touch ${dir}/pwned);x`] }, staged, TIMEOUT), 'CHECK_FAILED');
    expect(literal.details).toContain('$(touch');
    expect(existsSync(join(dir, 'pwned'))).toBe(false);
    // Killed by the timeout (SIGKILL), where `tail -f` alone would run for ever.
    const hung = await expectAppError(actions.runCheck({ kind: 'exec', argv: ['/usr/bin/tail', '-f', '{file}'] }, staged, { timeoutMs: 300 }), 'CHECK_FAILED');
    expect(hung.details).toContain('killed after 300 ms');
    const missing = await expectAppError(actions.runCheck({ kind: 'exec', argv: ['/nonexistent/checker'] }, staged, TIMEOUT), 'CHECK_FAILED');
    expect(missing.details).toContain('ENOENT');
  });

  it("when an exec check runs, then it does not inherit confhub's environment", async () => {
    const staged = join(dir, 'staged.conf');
    process.env.CONFHUB_TEST_CANARY = 'canary-value-4711';
    try {
      // grep exits 1 when no file matches: the canary is not in the checker's environment.
      await expectAppError(
        actions.runCheck({ kind: 'exec', argv: ['/bin/grep', '-qs', 'canary-value-4711', '/proc/self/environ', '{file}'] }, staged, TIMEOUT),
        'CHECK_FAILED',
      );
    } finally {
      delete process.env.CONFHUB_TEST_CANARY;
    }
  });

  it('when a docker exec check runs in the service container, then its exit code decides', async () => {
    writeFileSync(join(dir, 'app-1', 'app.conf'), 'expected = yes\n');
    await actions.runCheck({ kind: 'docker_exec', container: app, command: ['grep', '-q', 'expected', '/conf/app.conf'] }, '/not/passed', TIMEOUT);
    const rejected = await expectAppError(
      actions.runCheck({ kind: 'docker_exec', container: app, command: ['grep', 'absent', '/conf/app.conf'] }, '/not/passed', TIMEOUT),
      'CHECK_FAILED',
    );
    expect(rejected.details).toContain('exit code 1');
    // A service that does not exist yet cannot check anything: the caller decides (the file is written, the reload waits).
    await expectAppError(
      actions.runCheck({ kind: 'docker_exec', container: { by: 'name', name: 'never-created' }, command: ['true'] }, '/x', TIMEOUT),
      'SERVICE_UNREACHABLE',
    );
  });
});
