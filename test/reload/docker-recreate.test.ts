/**
 * Environment recreation against a real, private dockerd (test/support/engines.ts): busybox
 * containers on `--network none` with volumes, binds, labels, a restart policy and a healthcheck.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import type { ContainerRef } from '../../src/targets/target-spec.js';
import { createDockerDriver, type DockerDriver } from '../../src/reload/docker.js';
import { createEnvRecreator, MANAGED_ENV_LABEL, type EnvRecreator, type RecreateInput, type RecreateStep } from '../../src/reload/docker-recreate.js';
import { ensureBusyboxImage, SKIP_DOCKERD, startDockerd, type PrivateDockerd } from '../support/engines.js';
import { expectAppError } from '../support/wait.js';

const logger = createLogger({ level: 'silent' });
const IMAGE = 'local/busybox-env';
/** The image's own defaults: GREETING must show through again once confhub stops setting it. */
const IMAGE_ENV = ['PATH=/bin', 'GREETING=from-image'];
// INT is the declared stop signal; TERM is trapped as well so any stop takes one sleep.
const LOOP = 'trap "exit 0" INT TERM; while true; do sleep 0.2; done';

type Inspect = Docker.ContainerInspectInfo & { Config: Docker.ContainerInspectInfo['Config'] & { Labels: Record<string, string> } };

/** The environment of PID 1 as the kernel holds it: NUL-separated, so newlines and `=` in values stay exact. */
async function processEnv(driver: DockerDriver, name: string): Promise<Map<string, string>> {
  const result = await driver.exec({ by: 'name', name }, ['cat', '/proc/1/environ'], { timeoutMs: 10_000 });
  expect(result.exitCode).toBe(0);
  const env = new Map<string, string>();
  for (const entry of result.output.split('\0')) {
    if (entry === '') continue;
    const at = entry.indexOf('=');
    env.set(entry.slice(0, at), entry.slice(at + 1));
  }
  return env;
}

describe.skipIf(SKIP_DOCKERD)('environment recreation against a private dockerd', () => {
  let engine: PrivateDockerd;
  let docker: Docker;
  let driver: DockerDriver;
  let recreator: EnvRecreator;
  let workDir: string;

  /** A recreation of the container named `target` (or chosen by a label) with these variables, with the suite's budgets. */
  const change = (target: string | ContainerRef, env: Record<string, string> | ReadonlyMap<string, string>, extra: Partial<RecreateInput> = {}) =>
    recreator.recreate({
      ref: typeof target === 'string' ? { by: 'name', name: target } : target,
      env: env instanceof Map ? env : new Map(Object.entries(env)),
      timeoutMs: 20_000,
      healthTimeoutMs: 15_000,
      ...extra,
    });
  const inspect = async (name: string): Promise<Inspect> => (await docker.getContainer(name).inspect()) as Inspect;
  const names = async (): Promise<string[]> => (await docker.listContainers({ all: true })).flatMap((c) => c.Names.map((n) => n.replace(/^\//, '')));

  /** The service container of the issue: named and anonymous volumes, a bind, labels, a restart policy, no network, a healthcheck. */
  async function createService(name: string, extra: { env?: string[]; healthy?: boolean } = {}): Promise<Inspect> {
    const conf = join(workDir, name);
    mkdirSync(conf, { recursive: true });
    const container = await docker.createContainer({
      name,
      Image: IMAGE,
      Cmd: ['sh', '-c', `echo started >> /conf/starts; ${LOOP}`],
      Env: extra.env ?? ['USER_VAR=mine', 'PATH=/bin'],
      Hostname: `${name}-host`,
      User: '0',
      WorkingDir: '/tmp',
      StopSignal: 'SIGINT',
      StopTimeout: 5,
      Labels: { 'com.docker.compose.project': 'demo', 'com.docker.compose.service': name, 'com.example.owner': 'tests' },
      Volumes: { '/anon': {} },
      // Healthy unless the environment says MODE=broken: a new environment can break the service.
      Healthcheck: { Test: ['CMD-SHELL', 'test "$MODE" != broken'], Interval: 200_000_000, Timeout: 10_000_000_000, Retries: 3, StartPeriod: 0 },
      HostConfig: {
        NetworkMode: 'none',
        Binds: [`${conf}:/conf`, `${name}-data:/named`],
        RestartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 },
      },
    });
    await container.start();
    await driver.waitHealthy({ by: 'name', name }, { timeoutMs: 15_000 });
    const seeded = await driver.exec({ by: 'name', name }, ['sh', '-c', 'echo anon-data > /anon/keep; echo named-data > /named/keep'], { timeoutMs: 10_000 });
    expect(seeded.exitCode).toBe(0);
    return inspect(name);
  }

  beforeAll(async () => {
    engine = await startDockerd();
    await ensureBusyboxImage(engine.socketPath);
    docker = new Docker({ socketPath: engine.socketPath });
    // An image with ENV defaults and a VOLUME of its own, made without a registry or a build.
    const base = await docker.createContainer({ Image: 'local/busybox', Cmd: ['sh'] });
    await base.commit({ repo: IMAGE, tag: 'latest', changes: [...IMAGE_ENV.map((e) => `ENV ${e}`), 'VOLUME /image-vol'] });
    await base.remove();
    driver = createDockerDriver({ socketPath: engine.socketPath, logger, pollIntervalMs: 50 });
    recreator = createEnvRecreator({ socketPath: engine.socketPath, logger, pollIntervalMs: 50 });
    workDir = mkdtempSync(join(tmpdir(), 'confhub-recreate-test-'));
  });

  afterAll(async () => {
    await engine?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('when the environment changes, then the new container has it, every other inspected field is unchanged, the anonymous volumes are the same volumes and the old container is gone', async () => {
    const before = await createService('svc');
    expect(before.Config.Env).toEqual(['USER_VAR=mine', 'PATH=/bin', 'GREETING=from-image']);
    const volumesBefore = (await docker.listVolumes()).Volumes.map((v) => v.Name).sort();

    const result = await change({ by: 'label', label: 'com.docker.compose.service', value: 'svc' }, { APP_TOKEN: 'v1', GREETING: 'from-confhub' });
    expect(result).toMatchObject({ container: 'svc', recreated: true, previousId: before.Id, running: true, warnings: [] });
    expect(result.id).not.toBe(before.Id);
    expect(Object.keys(result.phases).sort()).toEqual(['create', 'healthy', 'inspect', 'remove', 'rename', 'start', 'stop']);

    const shown = await driver.exec({ by: 'name', name: 'svc' }, ['env'], { timeoutMs: 10_000 });
    expect(shown.output.split('\n')).toContain('APP_TOKEN=v1');
    const env = await processEnv(driver, 'svc');
    expect(Object.fromEntries(env)).toEqual({ USER_VAR: 'mine', PATH: '/bin', GREETING: 'from-confhub', APP_TOKEN: 'v1', HOME: '/', HOSTNAME: 'svc-host' });

    const after = await inspect('svc');
    expect(after.Id).toBe(result.id);
    expect(after.State.Running).toBe(true);
    expect(after.State.Health?.Status).toBe('healthy');
    // Config: the same but the environment and the bookkeeping label.
    const { Env: envBefore, Labels: labelsBefore, ...configBefore } = before.Config;
    const { Env: envAfter, Labels: labelsAfter, ...configAfter } = after.Config;
    expect(configAfter).toEqual(configBefore);
    expect(envBefore).toEqual(['USER_VAR=mine', 'PATH=/bin', 'GREETING=from-image']);
    // The user's PATH equals the image's default, so it is the image's: Docker appends it after the container's own.
    expect(envAfter).toEqual(['USER_VAR=mine', 'APP_TOKEN=v1', 'GREETING=from-confhub', 'PATH=/bin']);
    expect(labelsAfter).toEqual({ ...labelsBefore, [MANAGED_ENV_LABEL]: 'APP_TOKEN,GREETING' });
    // HostConfig: the same but the anonymous volumes, now mounted by their names.
    const { Mounts: hostMountsBefore, ...hostBefore } = before.HostConfig as Record<string, unknown>;
    const { Mounts: hostMountsAfter, ...hostAfter } = after.HostConfig as Record<string, unknown>;
    expect(hostAfter).toEqual(hostBefore);
    expect(hostMountsBefore ?? []).toEqual([]);
    const anonymous = before.Mounts.filter((m) => m.Destination === '/anon' || m.Destination === '/image-vol');
    expect(anonymous).toHaveLength(2);
    // Docker lists mounts in no fixed order.
    const byTarget = (x: { Target: string }, y: { Target: string }) => x.Target.localeCompare(y.Target);
    expect([...(hostMountsAfter as { Target: string }[])].sort(byTarget)).toEqual(
      anonymous.map((m) => ({ Type: 'volume', Source: m.Name, Target: m.Destination })).sort(byTarget),
    );
    // Mounts: the same volumes, binds and paths.
    const mounts = (info: Inspect) =>
      [...info.Mounts]
        .sort((a, b) => a.Destination.localeCompare(b.Destination))
        .map((m) => ({ Type: m.Type, Name: m.Name, Source: m.Source, Destination: m.Destination, RW: m.RW, Driver: m.Driver }));
    expect(mounts(after)).toEqual(mounts(before));
    expect(Object.keys(after.NetworkSettings.Networks)).toEqual(['none']);
    expect(after.RestartCount).toBe(0);
    // The data is still there, no volume was created or removed, and the old container is gone.
    const data = await driver.exec({ by: 'name', name: 'svc' }, ['cat', '/anon/keep', '/named/keep', '/conf/starts'], { timeoutMs: 10_000 });
    expect(data.output).toBe('anon-data\nnamed-data\nstarted\nstarted\n');
    expect((await docker.listVolumes()).Volumes.map((v) => v.Name).sort()).toEqual(volumesBefore);
    await expect(docker.getContainer(before.Id).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect(await names()).toEqual(['svc']);

    // confhub stops setting GREETING: the image's default shows through again; the mounts are not doubled.
    const second = await change('svc', { APP_TOKEN: 'v2' });
    expect(second.recreated).toBe(true);
    expect(Object.fromEntries(await processEnv(driver, 'svc'))).toMatchObject({ APP_TOKEN: 'v2', GREETING: 'from-image', USER_VAR: 'mine' });
    const third = await inspect('svc');
    expect(third.HostConfig).toEqual(after.HostConfig);
    expect(third.Config.Labels[MANAGED_ENV_LABEL]).toBe('APP_TOKEN');
    expect(mounts(third)).toEqual(mounts(before));

    // The same environment again: nothing to do.
    const same = await change('svc', { APP_TOKEN: 'v2' });
    expect(same).toMatchObject({ recreated: false, id: third.Id });
    expect((await inspect('svc')).Id).toBe(third.Id);
  });

  it('when the new container fails its health check, then the old one runs with its old environment under its name and nothing else is left', async () => {
    const before = await createService('fragile');
    const volumes = (await docker.listVolumes()).Volumes.length;
    const error = await expectAppError(change('fragile', { MODE: 'broken', API_SECRET: 's3cr3t-never-shown' }), 'HEALTH_FAILED');
    expect(error.data).toMatchObject({ container: 'fragile', health: 'unhealthy' });
    expect(error.details).toContain('the old container is back under its name and running');
    expect(`${error.message} ${error.details} ${JSON.stringify(error.data)}`).not.toContain('s3cr3t');
    const after = await inspect('fragile');
    expect(after.Id).toBe(before.Id);
    expect(after.State.Running).toBe(true);
    expect(after.Config.Env).toEqual(before.Config.Env);
    expect((await processEnv(driver, 'fragile')).has('MODE')).toBe(false);
    expect((await names()).filter((n) => n.startsWith('fragile'))).toEqual(['fragile']);
    expect((await docker.listVolumes()).Volumes.length).toBe(volumes);
    await driver.waitHealthy({ by: 'name', name: 'fragile' }, { timeoutMs: 10_000 });
  });

  it('when values hold newlines, `=`, quotes, backslashes, tabs, dollars and unicode, then the process sees them byte for byte', async () => {
    await createService('exact');
    const values = new Map([
      ['MULTI_LINE', 'first line\nsecond line\r\nthird'],
      ['WITH_EQUALS', 'a=b==c='],
      ['QUOTES', `it's "quoted" and \`ticked\``],
      ['BACKSLASH', 'C:\\path\\to\\ end\\'],
      ['TABS_SPACES', '\t lead and trail \t'],
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal ${…} is what the value must keep
      ['DOLLARS', '$HOME ${PATH} $$'],
      ['UNICODE', 'héllo wörld ✓ 日本語 🚀'],
      ['EMPTY', ''],
    ]);
    await change('exact', values);
    const env = await processEnv(driver, 'exact');
    for (const [name, value] of values) expect(env.get(name), name).toBe(value);
  });

  it('when the container is stopped, then the new one is created stopped and the old one removed', async () => {
    const before = await createService('resting');
    await docker.getContainer('resting').stop();
    const result = await change('resting', { APP_TOKEN: 'x' });
    expect(result).toMatchObject({ recreated: true, running: false });
    const after = await inspect('resting');
    expect(after.State.Status).toBe('created');
    expect(after.Config.Env).toContain('APP_TOKEN=x');
    await expect(docker.getContainer(before.Id).inspect()).rejects.toMatchObject({ statusCode: 404 });
  });

  it('when the container uses the host network, then it is recreated on it (its hostname is the host one)', async () => {
    await docker.createContainer({ name: 'on-host', Image: IMAGE, Cmd: ['sh', '-c', LOOP], HostConfig: { NetworkMode: 'host' } }).then((c) => c.start());
    const before = await inspect('on-host');
    await change('on-host', { APP_TOKEN: 'h' }, { stableMs: 300 });
    const after = await inspect('on-host');
    expect(after.Id).not.toBe(before.Id);
    expect(after.HostConfig.NetworkMode).toBe('host');
    expect(after.Config.Hostname).toBe(before.Config.Hostname);
    expect((await processEnv(driver, 'on-host')).get('APP_TOKEN')).toBe('h');
  });

  it('when the health wait outlasts the steps budget, then the old container is still removed (its removal has a budget of its own)', async () => {
    await docker.createContainer({ name: 'slow-window', Image: IMAGE, Cmd: ['sh', '-c', LOOP], HostConfig: { NetworkMode: 'none' } }).then((c) => c.start());
    const result = await change('slow-window', { APP_TOKEN: 'w' }, { timeoutMs: 5000, stableMs: 5500 });
    expect(result.warnings).toEqual([]);
    expect((await names()).filter((n) => n.startsWith('slow-window'))).toEqual(['slow-window']);
  });

  it('when a variable name is not valid or a value holds NUL, then nothing changes', async () => {
    const before = await createService('guarded');
    await expectAppError(change('guarded', { 'BAD-NAME': 'x' }), 'RELOAD_FAILED');
    const nul = await expectAppError(change('guarded', { OK: 'a\0b' }), 'RELOAD_FAILED');
    expect(nul.details).toContain('OK');
    expect((await inspect('guarded')).Id).toBe(before.Id);
  });

  describe('a kill -9 at each step boundary, then repairRecreates at the next start', () => {
    let round = 0;
    let current = 'start';
    let currentLabel: string | undefined;

    /** Runs the recreation in a child that holds at `step`, kills it there with SIGKILL, and returns what it printed. */
    async function killAt(step: RecreateStep, env: Record<string, string>): Promise<string> {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'test/reload/docker-recreate-child.ts', engine.socketPath, 'crashy', step, JSON.stringify(env)],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      let out = '';
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the child did not reach ${step}; it printed: ${out}`)), 60_000);
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString('utf8');
          if (out.includes('\n')) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
      await exited;
      return out.trim();
    }

    beforeAll(async () => {
      await createService('crashy', { env: ['USER_VAR=mine', `APP_TOKEN=${current}`] });
    });

    // Up to the start of the new container the old one comes back; from then on the new one is kept.
    it.each<{ step: RecreateStep; broken?: boolean; kept: 'old' | 'new' }>([
      { step: 'inspected', kept: 'old' },
      { step: 'renamed', kept: 'old' },
      { step: 'created', kept: 'old' },
      { step: 'stopped', kept: 'old' },
      { step: 'started', kept: 'new' },
      { step: 'healthy', kept: 'new' },
      { step: 'rollback-removed-new', broken: true, kept: 'old' },
      { step: 'rollback-started-old', broken: true, kept: 'old' },
    ])(
      'when killed at $step, then the service container is there, running, healthy and consistent ($kept environment)',
      async ({ step, broken, kept }) => {
        round += 1;
        const next = `round-${round}`;
        const anonymous = (await inspect('crashy')).Mounts.find((m) => m.Destination === '/anon')?.Name;
        const printed = await killAt(step, { APP_TOKEN: next, ...(broken ? { MODE: 'broken' } : {}) });
        expect(printed).toBe(`at ${step}`);

        const outcomes = await recreator.repairRecreates({ healthTimeoutMs: 10_000, stableMs: 300 });
        if (step === 'inspected') expect(outcomes).toEqual([]);
        else expect(outcomes).toEqual([expect.objectContaining({ container: 'crashy', action: kept === 'new' ? 'finished' : 'restored' })]);

        expect((await names()).filter((n) => n.startsWith('crashy'))).toEqual(['crashy']);
        const info = await inspect('crashy');
        expect(info.State.Running).toBe(true);
        await driver.waitHealthy({ by: 'name', name: 'crashy' }, { timeoutMs: 10_000 });
        const expected = kept === 'new' ? next : current;
        const env = await processEnv(driver, 'crashy');
        expect(env.get('APP_TOKEN')).toBe(expected);
        expect(env.get('USER_VAR')).toBe('mine');
        expect(env.has('MODE')).toBe(false);
        // The bookkeeping label tells the same story as the environment.
        expect(info.Config.Labels[MANAGED_ENV_LABEL]).toBe(kept === 'new' ? 'APP_TOKEN' : currentLabel);
        expect(info.Mounts.find((m) => m.Destination === '/anon')?.Name).toBe(anonymous);
        if (kept === 'new') {
          current = next;
          currentLabel = 'APP_TOKEN';
        }
      },
      120_000,
    );

    it('when a recreation finds an aside container left by a crash, then it repairs it first and goes on', async () => {
      await killAt('created', { APP_TOKEN: 'interrupted' });
      const result = await change('crashy', { APP_TOKEN: 'after' });
      expect(result.recreated).toBe(true);
      expect((await processEnv(driver, 'crashy')).get('APP_TOKEN')).toBe('after');
      expect((await names()).filter((n) => n.startsWith('crashy'))).toEqual(['crashy']);
    }, 120_000);

    it('when a recreation by name finds the name empty and the container aside (killed right after the rename), then it puts it back and goes on', async () => {
      await killAt('renamed', { APP_TOKEN: 'interrupted' });
      expect((await names()).filter((n) => n.startsWith('crashy'))).toEqual(['crashy.confhub-old']);
      const result = await change('crashy', { APP_TOKEN: 'by-name' });
      expect(result).toMatchObject({ container: 'crashy', recreated: true });
      expect((await processEnv(driver, 'crashy')).get('APP_TOKEN')).toBe('by-name');
      expect((await names()).filter((n) => n.startsWith('crashy'))).toEqual(['crashy']);
    }, 120_000);

    it('when a recreation by label finds the two stopped containers a crash left, then it repairs first and goes on', async () => {
      // Killed between the stop and the start: two stopped containers carry the service label.
      await killAt('stopped', { APP_TOKEN: 'interrupted' });
      const result = await change({ by: 'label', label: 'com.docker.compose.service', value: 'crashy' }, { APP_TOKEN: 'by-label' });
      expect(result).toMatchObject({ container: 'crashy', recreated: true });
      expect((await processEnv(driver, 'crashy')).get('APP_TOKEN')).toBe('by-label');
      expect((await names()).filter((n) => n.startsWith('crashy'))).toEqual(['crashy']);
    }, 120_000);
  });
});
