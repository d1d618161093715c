/**
 * Service connection tests with fake drivers: which services exist, timeouts, the cache and its
 * background refresh, single-flight, and what a result may show of a URL. The same module
 * against the real engines is in engines.test.ts.
 */
import { describe, expect, it, vi } from 'vitest';
import { AppError } from '../../src/core/errors.js';
import { safeUrl } from '../../src/core/safe-url.js';
import { parseIni, type IniDocument } from '../../src/ini/document.js';
import { createLogger } from '../../src/log.js';
import type { ContainerState } from '../../src/reload/docker.js';
import type { ProcessInfo } from '../../src/reload/supervisor.js';
import { createHttpProbe, type HttpProbe } from '../../src/probes/http-probe.js';
import {
  createConnectionChecks,
  DEADLINE_GRACE_MS,
  serviceDefinitions,
  type CreateConnectionChecksInput,
  type ConnectionChecks,
  type ServiceStatus,
} from '../../src/probes/connection-checks.js';
import { parseSyncConfig, type ContainerRef, type TargetSpec } from '../../src/targets/target-spec.js';
import { createManualClock, type ManualClock } from '../support/manual-clock.js';
import { expectAppError } from '../support/wait.js';

const logger = createLogger({ level: 'silent' });

function targetsOf(systemIni: string): readonly TargetSpec[] {
  return parseSyncConfig({ doc: parseIni(systemIni), dataDir: '/srv/data', configDir: '/srv/data/config', own: [] }).targets;
}

const target = (name: string, reload: string, health = 'auto', extra = ''): string =>
  `[target:${name}]\nsections = ${name}\nformat = env\noutput = out/${name}.env\nreload = ${reload}\nhealth = ${health}\n${extra}\n`;

const RUNNING: ContainerState = { running: true, status: 'running', startedAt: '2026-01-01T00:00:00Z', health: undefined, restartCount: 0, exitCode: 0 };
const PROGRAM_RUNNING: ProcessInfo = { state: 'RUNNING', pid: 42, start: 1, exitStatus: 0, description: 'pid 42, uptime 0:00:03' };

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

interface Fixture {
  checks: ConnectionChecks;
  clock: ManualClock;
  inspect: ReturnType<typeof vi.fn<(ref: ContainerRef, options?: { timeoutMs?: number }) => Promise<ContainerState>>>;
  processInfo: ReturnType<typeof vi.fn<(program: string, options?: { timeoutMs?: number }) => Promise<ProcessInfo>>>;
  http: ReturnType<typeof vi.fn<HttpProbe>>;
}

interface FixtureInput extends Partial<Omit<CreateConnectionChecksInput, 'targets' | 'configDoc' | 'docker' | 'supervisor' | 'http' | 'clock'>> {
  systemIni?: string;
  configIni?: string;
  configDoc?: () => IniDocument | undefined;
  inspect?: (ref: ContainerRef, options?: { timeoutMs?: number }) => Promise<ContainerState>;
  processInfo?: (program: string, options?: { timeoutMs?: number }) => Promise<ProcessInfo>;
  http?: HttpProbe;
}

function fixture(input: FixtureInput = {}): Fixture {
  const clock = createManualClock({ startAt: Date.parse('2026-03-01T12:00:00Z') });
  const inspect = vi.fn(input.inspect ?? (async () => RUNNING));
  const processInfo = vi.fn(input.processInfo ?? (async () => PROGRAM_RUNNING));
  const http = vi.fn(input.http ?? (async () => ({ status: 200 })));
  const configDoc = input.configDoc ?? (() => (input.configIni === undefined ? undefined : parseIni(input.configIni)));
  const checks = createConnectionChecks({
    targets: targetsOf(input.systemIni ?? ''),
    configDoc,
    docker: { inspectState: inspect },
    supervisor: { processInfo },
    http,
    logger,
    clock,
    ...(input.timeoutMs !== undefined ? { timeoutMs: input.timeoutMs } : {}),
    ...(input.maxAgeMs !== undefined ? { maxAgeMs: input.maxAgeMs } : {}),
  });
  return { checks, clock, inspect, processInfo, http };
}

describe('which services there are', () => {
  it('when system.ini declares targets and config.ini holds service URLs, then each is one service and a section named like a target joins it', () => {
    const targets = targetsOf(
      target('gitea', 'docker:restart:websoft9-git', 'http:http://127.0.0.1:3000/api/healthz') +
        target('proxy', 'docker:exec:websoft9-proxy:nginx -s reload', 'auto', 'check = docker:exec:websoft9-proxy:nginx -t -c {file}') +
        target('twin', 'docker:signal:HUP:label=com.docker.compose.service=twin', 'auto', 'check = docker:exec:checker:true') +
        target('console', 'supervisor:restart:console') +
        target('hook', 'http:POST:http://127.0.0.1:9/reload', 'none') +
        target('cockpit', 'none', 'none'),
    );
    const configDoc = parseIni(
      [
        '[gitea]',
        'base_url = http://websoft9-git:3000/api/v1',
        '[portainer]',
        'base_url = https://portainer.example:9443/api',
        'user_name = admin',
        '[monitor]',
        'status_url = http://127.0.0.1:8080/status',
        'token_url = http://127.0.0.1:8080/t/abcdef0123456789',
        'BASE_URL_NOTE = not a url key',
        '[docker_mirror]',
        'url = http://mirror.example',
        '[empty]',
        'base_url =',
        '[ftp]',
        'base_url = ftp://files.example/',
        '[words]',
        'home_url = see the docs',
        '[multi]',
        'base_url = http://a.example',
        '  /more',
      ].join('\n'),
    );
    const services = serviceDefinitions({ targets, configDoc });
    expect(services.map((s) => [s.name, s.kind])).toEqual([
      ['gitea', 'target'],
      ['proxy', 'target'],
      ['twin', 'target'],
      ['console', 'target'],
      ['hook', 'target'],
      ['cockpit', 'target'],
      ['portainer', 'url'],
      ['monitor', 'url'],
    ]);
    const probes = Object.fromEntries(services.map((s) => [s.name, s.probes]));
    expect(probes.gitea).toEqual([
      { kind: 'container', container: { by: 'name', name: 'websoft9-git' } },
      { kind: 'http', url: 'http://127.0.0.1:3000/api/healthz', source: 'health', expect: '2xx' },
      { kind: 'http', url: 'http://websoft9-git:3000/api/v1', source: 'gitea.base_url', expect: 'below_500' },
    ]);
    // The check's container is the reload's: probed once.
    expect(probes.proxy).toEqual([{ kind: 'container', container: { by: 'name', name: 'websoft9-proxy' } }]);
    expect(probes.twin).toEqual([
      { kind: 'container', container: { by: 'label', label: 'com.docker.compose.service', value: 'twin' } },
      { kind: 'container', container: { by: 'name', name: 'checker' } },
    ]);
    expect(probes.console).toEqual([{ kind: 'supervisor', program: 'console' }]);
    // A reload hook is never called to test it.
    expect(probes.hook).toEqual([]);
    expect(probes.cockpit).toEqual([]);
    expect(probes.monitor).toEqual([{ kind: 'http', url: 'http://127.0.0.1:8080/status', source: 'monitor.status_url', expect: 'below_500' }]);
  });

  it('when a health URL refers to config.ini values, then it is probed where config.ini says now; an installed check in a container is probed too', () => {
    const targets = targetsOf(
      target('web', 'supervisor:signal:HUP:nginx', 'http:http://127.0.0.1:{{ web.port }}/health') +
        target('site', 'none', 'http:http://127.0.0.1:{{ site.port }}/', 'check_installed = docker:exec:proxy:nginx -t'),
    );
    const probes = (configDoc: IniDocument | undefined) =>
      Object.fromEntries(serviceDefinitions({ targets, configDoc }).map((s) => [s.name, s.probes.filter((p) => p.kind !== 'supervisor')]));
    expect(probes(parseIni('[web]\nport = 8082\n'))).toEqual({
      web: [{ kind: 'http', url: 'http://127.0.0.1:8082/health', source: 'health', expect: '2xx', shown: 'http://127.0.0.1:8082/health' }],
      // A key config.ini does not have: nothing to probe (the sync reports why).
      site: [{ kind: 'container', container: { by: 'name', name: 'proxy' } }],
    });
    expect(probes(undefined).web).toEqual([]);
  });
});

describe('service checks with fake drivers', () => {
  it('when list() is called before any check, then it answers at once with never-checked entries and starts one background refresh', async () => {
    const answer = deferred<ContainerState>();
    const f = fixture({ systemIni: target('web', 'docker:restart:web') + target('cockpit', 'none', 'none'), inspect: () => answer.promise });
    const first = f.checks.list();
    expect(first).toEqual({
      services: [
        { name: 'web', kind: 'target', ok: null, stale: true, checkedAt: null, checks: [] },
        { name: 'cockpit', kind: 'target', ok: null, stale: true, checkedAt: null, checks: [] },
      ],
      checkedAt: null,
      refreshing: true,
    });
    // A second list() while the refresh runs starts no second one.
    expect(f.checks.list().refreshing).toBe(true);
    expect(f.inspect).toHaveBeenCalledTimes(1);
    await f.clock.advance(40);
    answer.resolve(RUNNING);
    await f.checks.idle();
    const after = f.checks.list();
    expect(after.refreshing).toBe(false);
    // The oldest result: cockpit, with nothing to probe, was done at once.
    expect(after.checkedAt).toBe('2026-03-01T12:00:00.000Z');
    expect(after.services[0]).toEqual({
      name: 'web',
      kind: 'target',
      ok: true,
      stale: false,
      checkedAt: '2026-03-01T12:00:00.040Z',
      checks: [{ kind: 'container', container: 'web', ok: true, state: 'running', health: 'none', latencyMs: 40, checkedAt: '2026-03-01T12:00:00.040Z' }],
    });
    // Nothing to check is neither ok nor failed.
    expect(after.services[1]).toMatchObject({ name: 'cockpit', ok: null, stale: false, checks: [] });
    expect(f.inspect).toHaveBeenCalledTimes(1);
  });

  it('when a refresh is running, then another list() starts none, even for a service that appeared meanwhile; the list() after it does', async () => {
    const answer = deferred<ContainerState>();
    let config = '';
    const f = fixture({ systemIni: target('web', 'docker:restart:web'), configDoc: () => parseIni(config), inspect: () => answer.promise });
    f.checks.list();
    config = '[late]\nbase_url = http://late.example/\n';
    expect(f.checks.list()).toMatchObject({ services: [{ name: 'web' }, { name: 'late', stale: true }], refreshing: true });
    expect(f.http).not.toHaveBeenCalled();
    answer.resolve(RUNNING);
    await f.checks.idle();
    expect(f.checks.list()).toMatchObject({
      services: [
        { name: 'web', stale: false },
        { name: 'late', stale: true },
      ],
      refreshing: true,
    });
    await f.checks.idle();
    expect(f.http).toHaveBeenCalledTimes(1);
    expect(f.inspect).toHaveBeenCalledTimes(1);
    expect(f.checks.list()).toMatchObject({ services: [{ stale: false }, { name: 'late', ok: true, stale: false }], refreshing: false });
  });

  it('when results are older than the cache age, then list() still shows them, marked stale, and refreshes them in the background', async () => {
    const f = fixture({ systemIni: target('web', 'docker:restart:web'), maxAgeMs: 10_000 });
    await f.checks.test('web');
    await f.clock.advance(9_999);
    expect(f.checks.list()).toMatchObject({ services: [{ ok: true, stale: false }], refreshing: false });
    expect(f.inspect).toHaveBeenCalledTimes(1);
    await f.clock.advance(1);
    f.inspect.mockResolvedValueOnce({ ...RUNNING, running: false, status: 'exited', exitCode: 3 });
    const stale = f.checks.list();
    expect(stale).toMatchObject({ services: [{ ok: true, stale: true, checkedAt: '2026-03-01T12:00:00.000Z' }], refreshing: true });
    await f.checks.idle();
    expect(f.inspect).toHaveBeenCalledTimes(2);
    expect(f.checks.list().services[0]).toMatchObject({
      ok: false,
      stale: false,
      checks: [{ kind: 'container', ok: false, state: 'exited', error: { code: 'HEALTH_FAILED', message: 'container web is exited (exit code 3)' } }],
    });
  });

  it('when a probe never answers, then the check ends with TIMEOUT just after the probe timeout, not before, and the probe was given that timeout', async () => {
    const f = fixture({
      systemIni:
        target('web', 'docker:restart:web') + target('console', 'supervisor:restart:console') + target('api', 'none', 'http:http://127.0.0.1:1/health'),
      timeoutMs: 150,
      inspect: () => new Promise(() => undefined),
      processInfo: () => new Promise(() => undefined),
      http: () => new Promise(() => undefined),
    });
    for (const name of ['web', 'console', 'api']) {
      let result: ServiceStatus | undefined;
      const testing = f.checks.test(name).then((status) => {
        result = status;
      });
      // The drivers' own timeouts come first; the outer deadline waits a grace period longer.
      await f.clock.advance(150 + DEADLINE_GRACE_MS - 1);
      expect(result).toBeUndefined();
      await f.clock.advance(1);
      await testing;
      expect(result!.checks[0]!.latencyMs).toBe(150 + DEADLINE_GRACE_MS);
      expect(result!.ok).toBe(false);
      expect(result!.checks).toHaveLength(1);
      expect(result!.checks[0]!.error?.code).toBe('TIMEOUT');
      expect(result!.checks[0]).not.toHaveProperty('state');
    }
    expect(f.inspect).toHaveBeenCalledWith({ by: 'name', name: 'web' }, { timeoutMs: 150 });
    expect(f.processInfo).toHaveBeenCalledWith('console', { timeoutMs: 150 });
    expect(f.http).toHaveBeenCalledWith('http://127.0.0.1:1/health', { timeoutMs: 150 });
  });

  it('when list() is called while Docker hangs, then it answers from the cache without waiting for the driver, and the refresh ends with TIMEOUT', async () => {
    const f = fixture({ systemIni: target('web', 'docker:restart:web'), timeoutMs: 200, inspect: () => new Promise(() => undefined) });
    expect(f.checks.list()).toMatchObject({ services: [{ name: 'web', ok: null, stale: true, checks: [] }], refreshing: true });
    expect(f.checks.list()).toMatchObject({ services: [{ ok: null }], refreshing: true });
    // The inspect was started, and is still hanging, while both lists answered.
    expect(f.inspect).toHaveBeenCalledTimes(1);
    await f.clock.advance(200 + DEADLINE_GRACE_MS);
    await f.checks.idle();
    expect(f.checks.list().services[0]!.checks[0]!.error?.code).toBe('TIMEOUT');
  });

  it('when two tests of one service overlap, and a refresh joins them, then the service is probed once and all get the same result', async () => {
    const answer = deferred<ContainerState>();
    const f = fixture({ systemIni: target('web', 'docker:restart:web'), inspect: () => answer.promise });
    const a = f.checks.test('web');
    const b = f.checks.test('web');
    expect(f.checks.list().refreshing).toBe(true);
    await Promise.resolve();
    expect(f.inspect).toHaveBeenCalledTimes(1);
    answer.resolve(RUNNING);
    const [ra, rb] = await Promise.all([a, b]);
    expect(ra).toEqual(rb);
    await f.checks.idle();
    expect(f.inspect).toHaveBeenCalledTimes(1);
    // Once it is done, the next test probes again.
    await f.checks.test('web');
    expect(f.inspect).toHaveBeenCalledTimes(2);
  });

  it('when several services are checked, then their probes run at the same time', async () => {
    const answers = new Map<string, Deferred<ContainerState>>();
    const f = fixture({
      systemIni: target('one', 'docker:restart:one') + target('two', 'docker:restart:two') + target('three', 'docker:restart:three'),
      inspect: (ref) => {
        const d = deferred<ContainerState>();
        answers.set(ref.by === 'name' ? ref.name : '', d);
        return d.promise;
      },
    });
    f.checks.list();
    await Promise.resolve();
    expect([...answers.keys()].sort()).toEqual(['one', 'three', 'two']);
    for (const d of answers.values()) d.resolve(RUNNING);
    await f.checks.idle();
    expect(f.checks.list().services.map((s) => s.ok)).toEqual([true, true, true]);
  });

  it('when containers, programs and URLs answer in their various ways, then each check says ok, state, health and status as they are', async () => {
    const states: Record<string, ContainerState | AppError> = {
      healthy: { ...RUNNING, health: 'healthy' },
      unhealthy: { ...RUNNING, health: 'unhealthy' },
      starting: { ...RUNNING, health: 'starting' },
      created: { ...RUNNING, running: false, status: 'created' },
      paused: { ...RUNNING, status: 'paused' },
      gone: new AppError('SERVICE_UNREACHABLE', {
        message: 'No such container: gone',
        details: 'container "gone" does not exist (yet)',
        data: { container: 'gone' },
      }),
      nodocker: new AppError('SERVICE_UNREACHABLE', {
        message: 'Docker engine unreachable',
        details: 'cannot connect to the Docker engine at /x.sock (ENOENT)',
        data: { socket: '/x.sock' },
      }),
      ambiguous: new AppError('RELOAD_FAILED', { message: 'Label matches 2 containers', details: 'the label a=b matches 2 containers' }),
    };
    const statuses: Record<string, number> = { '/ok': 204, '/missing': 404, '/down': 503 };
    const f = fixture({
      systemIni:
        Object.keys(states)
          .map((name) => target(name, `docker:restart:${name}`))
          .join('') +
        target('prog-up', 'supervisor:restart:up') +
        target('prog-stopped', 'supervisor:signal:HUP:stopped') +
        target('health-ok', 'none', 'http:http://h.example/ok') +
        target('health-missing', 'none', 'http:http://h.example/missing'),
      configIni: '[api-missing]\nbase_url = http://h.example/missing\n[api-down]\nbase_url = http://h.example/down\n',
      inspect: async (ref) => {
        const state = states[ref.by === 'name' ? ref.name : '']!;
        if (state instanceof AppError) throw state;
        return state;
      },
      processInfo: async (program) => (program === 'up' ? PROGRAM_RUNNING : { ...PROGRAM_RUNNING, state: 'STOPPED', pid: 0, description: 'Not started' }),
      http: async (url) => ({ status: statuses[new URL(url).pathname]! }),
    });
    const check = async (name: string) => (await f.checks.test(name)).checks[0];
    expect(await check('healthy')).toMatchObject({ ok: true, state: 'running', health: 'healthy' });
    expect(await check('unhealthy')).toMatchObject({ ok: false, state: 'running', health: 'unhealthy', error: { code: 'HEALTH_FAILED' } });
    expect(await check('starting')).toMatchObject({ ok: false, health: 'starting', error: { code: 'HEALTH_FAILED' } });
    expect(await check('created')).toMatchObject({ ok: false, state: 'created', error: { code: 'HEALTH_FAILED', message: 'container created is created' } });
    expect(await check('paused')).toMatchObject({ ok: false, state: 'paused', error: { code: 'HEALTH_FAILED', message: 'container paused is paused' } });
    expect(await check('gone')).toEqual(
      expect.objectContaining({ ok: false, state: 'absent', error: { code: 'SERVICE_UNREACHABLE', message: 'container "gone" does not exist (yet)' } }),
    );
    const nodocker = await check('nodocker');
    expect(nodocker).toMatchObject({ ok: false, error: { code: 'SERVICE_UNREACHABLE', message: 'cannot connect to the Docker engine at /x.sock (ENOENT)' } });
    expect(nodocker).not.toHaveProperty('state');
    expect(nodocker).not.toHaveProperty('health');
    // The driver's reload-flavoured code does not leak into a check.
    expect(await check('ambiguous')).toMatchObject({ ok: false, error: { code: 'HEALTH_FAILED' } });
    expect(await check('prog-up')).toMatchObject({ kind: 'supervisor', program: 'up', ok: true, state: 'RUNNING' });
    expect(await check('prog-stopped')).toMatchObject({
      ok: false,
      state: 'STOPPED',
      error: { code: 'HEALTH_FAILED', message: 'program stopped is STOPPED (Not started)' },
    });
    expect(await check('health-ok')).toMatchObject({ kind: 'http', ok: true, status: 204, source: 'health' });
    // A health URL must answer 2xx; an API root that answers 404 is there.
    expect(await check('health-missing')).toMatchObject({ ok: false, status: 404, error: { code: 'HEALTH_FAILED' } });
    expect(await f.checks.test('api-missing')).toMatchObject({ kind: 'url', ok: true, checks: [{ status: 404, source: 'api-missing.base_url' }] });
    expect(await f.checks.test('api-down')).toMatchObject({ ok: false, checks: [{ status: 503, ok: false }] });
  });

  it('when a URL carries credentials and a token, then results show only the safe URL, even when an error message repeats the whole URL', async () => {
    const secretUrl = 'http://admin:pa55-w0rd@10.0.0.9:8080/api/status?token=t0k3n-abc#frag-xyz';
    const f = fixture({
      systemIni: target('api', 'none', `http:${secretUrl}`),
      configIni: `[api]\nstatus_url = ${secretUrl}\n`,
      http: async (url) => {
        throw new AppError('SERVICE_UNREACHABLE', { message: 'unreachable', details: `GET ${url}: connect failed for pa55-w0rd and t0k3n-abc` });
      },
    });
    const result = await f.checks.test('api');
    expect(result.checks.map((c) => (c.kind === 'http' ? c.url : ''))).toEqual(['http://10.0.0.9:8080/api/status', 'http://10.0.0.9:8080/api/status']);
    const text = JSON.stringify(result) + JSON.stringify(f.checks.list());
    for (const secret of ['pa55-w0rd', 't0k3n-abc', 'frag-xyz', 'admin:']) expect(text).not.toContain(secret);
    expect(result.checks[0]!.error!.message).toContain('GET http://10.0.0.9:8080/api/status');
  });

  it('when a health URL would put a secret of config.ini in its path, then it is not probed and no result shows the secret', async () => {
    // The declaration refuses such a URL (target-spec.ts); a target made any other way is refused when resolved.
    const [web] = targetsOf(target('web', 'none', 'http:http://127.0.0.1:{{ web.port }}/health'));
    const leaky: TargetSpec = {
      ...web!,
      health: {
        kind: 'http',
        url: 'http://127.0.0.1:{{ web.port }}/{{ web.token }}/health',
        templated: true,
        shown: 'http://127.0.0.1:{{ web.port }}/{{ web.token }}/health',
      },
    };
    const http = vi.fn<HttpProbe>(async (url) => {
      // What the real probe says when nothing listens: the URL's path is in it.
      throw new AppError('SERVICE_UNREACHABLE', { details: `GET ${safeUrl(url)}: ECONNREFUSED` });
    });
    const checks = createConnectionChecks({
      targets: [leaky],
      configDoc: () => parseIni('[web]\nport = 81\ntoken = t0p-s3cr3t\n'),
      docker: { inspectState: async () => RUNNING },
      supervisor: { processInfo: async () => PROGRAM_RUNNING },
      http,
      logger,
    });
    const result = await checks.test('web');
    expect(JSON.stringify(result) + JSON.stringify(checks.list())).not.toContain('t0p-s3cr3t');
    expect(http).not.toHaveBeenCalled();
  });

  it('when the HTTP probe calls fetch, then credentials go into a header, not the URL, and a leaky network error is scrubbed', async () => {
    const seen: { url: string; headers: Record<string, string>; redirect?: string }[] = [];
    const probe = createHttpProbe({
      fetch: (async (url: string, init: RequestInit) => {
        seen.push({ url, headers: init.headers as Record<string, string>, ...(init.redirect ? { redirect: init.redirect } : {}) });
        if (seen.length === 1) return new Response('hello', { status: 302, headers: { location: 'http://elsewhere/' } });
        throw new TypeError('fetch failed', { cause: new Error('getaddrinfo failed for http://u:p%40ss-word@api.example/x?key=k3y-secret') });
      }) as typeof fetch,
    });
    await expect(probe('http://u:p%40ss-word@api.example/x?key=k3y-secret', { timeoutMs: 1000 })).resolves.toEqual({ status: 302 });
    expect(seen[0]).toEqual({
      url: 'http://api.example/x?key=k3y-secret',
      headers: { authorization: `Basic ${Buffer.from('u:p@ss-word').toString('base64')}` },
      redirect: 'manual',
    });
    const error = await expectAppError(probe('http://u:p%40ss-word@api.example/x?key=k3y-secret', { timeoutMs: 1000 }), 'SERVICE_UNREACHABLE');
    const text = JSON.stringify({ m: error.message, d: error.details, data: error.data });
    for (const secret of ['ss-word', 'k3y-secret', 'u:p']) expect(text).not.toContain(secret);
    expect(error.details).toContain('GET http://api.example/x');
  });

  it('when a service name is unknown, then SERVICE_NOT_FOUND; when it cannot be a service name, then INVALID_NAME, before any lookup', async () => {
    const f = fixture({ systemIni: target('web', 'docker:restart:web') });
    const error = await expectAppError(f.checks.test('nope'), 'SERVICE_NOT_FOUND');
    expect(error.details).toContain('nope');
    for (const bad of ['', '__proto__', 'constructor', '../web', 'a b', 'web/x', 'x'.repeat(65), 'we\nb', '-web']) {
      await expectAppError(f.checks.test(bad), 'INVALID_NAME');
    }
    expect(f.inspect).not.toHaveBeenCalled();
  });

  it('when config.ini changes a service URL, then the result for the old URL is not shown for the new one', async () => {
    let config = '[app]\nbase_url = http://old.example/\n';
    const f = fixture({ configDoc: () => parseIni(config) });
    expect((await f.checks.test('app')).checks[0]).toMatchObject({ url: 'http://old.example/', ok: true });
    config = '[app]\nbase_url = http://new.example/\n';
    expect(f.checks.list().services[0]).toEqual({ name: 'app', kind: 'url', ok: null, stale: true, checkedAt: null, checks: [] });
    await f.checks.idle();
    expect(f.checks.list().services[0]!.checks[0]).toMatchObject({ url: 'http://new.example/' });
    // A section whose URL is removed is no longer a service.
    config = '[app]\nbase_url =\n';
    expect(f.checks.list().services).toEqual([]);
    await expectAppError(f.checks.test('app'), 'SERVICE_NOT_FOUND');
  });

  it('when config.ini cannot be read, then the targets are still listed and checked', async () => {
    const f = fixture({
      systemIni: target('web', 'docker:restart:web'),
      configDoc: () => {
        throw new AppError('CONFIG_INVALID');
      },
    });
    expect(f.checks.list().services.map((s) => s.name)).toEqual(['web']);
    expect((await f.checks.test('web')).ok).toBe(true);
  });

  it('when a probe fails with something no driver maps, then the check reports INTERNAL_ERROR without its text', async () => {
    const f = fixture({
      systemIni: target('web', 'docker:restart:web'),
      inspect: async () => {
        throw new Error('socket /secret/path said pa55-w0rd');
      },
    });
    const result = await f.checks.test('web');
    expect(result.checks[0]).toMatchObject({ ok: false, error: { code: 'INTERNAL_ERROR' } });
    expect(JSON.stringify(result)).not.toContain('pa55-w0rd');
  });
});
