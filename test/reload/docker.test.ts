/**
 * The Docker driver against a real, private dockerd (see test/support/engines.ts) with busybox
 * containers on `--network none`.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createDockerDriver, OUTPUT_LIMIT_BYTES, startedAtNanos, type DockerDriver } from '../../src/reload/docker.js';
import type { ContainerRef } from '../../src/targets/target-spec.js';
import { BUSYBOX_IMAGE, ensureBusyboxImage, SKIP_DOCKERD, startDockerd, type PrivateDockerd, runBusybox } from '../support/engines.js';
import { createManualClock } from '../support/manual-clock.js';
import { eventually, expectAppError } from '../support/wait.js';

const logger = createLogger({ level: 'silent' });
const byName = (name: string): ContainerRef => ({ by: 'name', name });

/** Polls until check() is true or fails after timeoutMs. */

describe('startedAtNanos', () => {
  it('when Docker trims trailing zeros of the fraction, then times still compare by value', () => {
    expect(startedAtNanos('2026-01-01T00:00:32.5Z')! < startedAtNanos('2026-01-01T00:00:32.50001Z')!).toBe(true);
    expect(startedAtNanos('2026-01-01T00:00:32.5Z')).toBe(startedAtNanos('2026-01-01T00:00:32.500000000Z'));
    expect(startedAtNanos('0001-01-01T00:00:00Z')! < startedAtNanos('2026-01-01T00:00:00Z')!).toBe(true);
    expect(startedAtNanos('not a time')).toBeUndefined();
  });
});

describe('Docker driver against a real unreachable or silent socket', () => {
  let dir: string;
  let silent: Server;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'confhub-nosock-'));
    // A socket that accepts connections and never answers: a hung daemon.
    silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(join(dir, 'silent.sock'), resolve));
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => {
      silent.close(() => resolve());
      // Connections the test left open would keep close() waiting.
      setTimeout(resolve, 500);
    });
    rmSync(dir, { recursive: true, force: true });
  });

  it('when the socket does not exist, then ping and restart fail with SERVICE_UNREACHABLE naming the socket, not a TIMEOUT at the end of the budget', async () => {
    const socketPath = join(dir, 'missing', 'docker.sock');
    const driver = createDockerDriver({ socketPath, logger });
    const error = await expectAppError(driver.ping(5000), 'SERVICE_UNREACHABLE');
    expect(error.details).toContain(socketPath);
    expect(error.details).toContain('ENOENT');
    await expectAppError(driver.restart(byName('anything'), { timeoutMs: 5000 }), 'SERVICE_UNREACHABLE');
  });

  it('when the daemon accepts but never answers, then the call ends with TIMEOUT at its budget', async () => {
    const driver = createDockerDriver({ socketPath: join(dir, 'silent.sock'), logger });
    const error = await expectAppError(driver.ping(300), 'TIMEOUT');
    expect(error.details).toContain('within 300 ms');
  });
});

describe.skipIf(SKIP_DOCKERD)('Docker driver against a private dockerd', () => {
  let engine: PrivateDockerd;
  let docker: Docker;
  let driver: DockerDriver;
  let workDir: string;

  const run = (name: string, script: string, extra: Partial<Docker.ContainerCreateOptions> = {}): Promise<string> =>
    runBusybox({ docker, name, script, confDir: join(workDir, name), extra });

  // TERM is trapped so a stop takes one sleep, not Docker's whole stop timeout (sh is PID 1).
  const LOOP = 'trap "exit 0" TERM; while true; do sleep 0.2; done';

  beforeAll(async () => {
    engine = await startDockerd();
    console.info(`private dockerd answered _ping after ${engine.startupMs} ms`);
    const t0 = Date.now();
    await ensureBusyboxImage(engine.socketPath);
    console.info(`busybox image imported in ${Date.now() - t0} ms`);
    docker = new Docker({ socketPath: engine.socketPath });
    driver = createDockerDriver({ socketPath: engine.socketPath, logger });
    workDir = mkdtempSync(join(tmpdir(), 'confhub-docker-test-'));
  });

  afterAll(async () => {
    await engine?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('when pinged, then the daemon answers; ensureBusyboxImage is idempotent', async () => {
    await driver.ping(2000);
    await expect(ensureBusyboxImage(engine.socketPath)).resolves.toBe(BUSYBOX_IMAGE);
  });

  it('when a container is restarted, then StartedAt is newer, the program ran again and waitHealthy passes', async () => {
    const conf = await run('web', `echo started >> /conf/starts; ${LOOP}`);
    const before = await driver.inspectState(byName('web'));
    expect(before.running).toBe(true);
    expect(before.health).toBeUndefined();
    await driver.restart(byName('web'), { timeoutMs: 10_000 });
    const after = await driver.waitHealthy(byName('web'), { timeoutMs: 5000, startedAfter: before.startedAt, stableMs: 300 });
    expect(startedAtNanos(after.startedAt)! > startedAtNanos(before.startedAt)!).toBe(true);
    expect(readFileSync(join(conf, 'starts'), 'utf8')).toBe('started\nstarted\n');
    const resolved = await driver.resolve(byName('web'));
    expect(resolved.name).toBe('web');
    expect(resolved.id).toMatch(/^[0-9a-f]{64}$/);
  });

  it('when waiting with the StartedAt of the current run, then waitHealthy does not mistake the old run for the restarted one, and gives up exactly when its clock passes the timeout', async () => {
    await run('not-restarted', LOOP);
    const current = await driver.inspectState(byName('not-restarted'));
    const clock = createManualClock();
    const timed = createDockerDriver({ socketPath: engine.socketPath, logger, clock, pollIntervalMs: 1000 });
    const start = clock.now();
    const error = await expectAppError(
      clock.run(timed.waitHealthy(byName('not-restarted'), { timeoutMs: 3000, startedAfter: current.startedAt })),
      'HEALTH_FAILED',
    );
    expect(error.details).toContain('not healthy within 3000 ms');
    expect(error.details).toContain('last seen: running');
    expect(clock.now() - start).toBe(3000);
  });

  it('when a container is sent HUP, then its trap runs and it keeps running', async () => {
    const conf = await run('hup', `trap "echo HUP >> /conf/hups" HUP; ${LOOP}`);
    const before = await driver.inspectState(byName('hup'));
    await driver.signal(byName('hup'), 'HUP');
    await eventually('the condition holds', () => existsSync(join(conf, 'hups')) && readFileSync(join(conf, 'hups'), 'utf8') === 'HUP\n');
    const after = await driver.waitHealthy(byName('hup'), { timeoutMs: 3000, stableMs: 300 });
    expect(after.startedAt).toBe(before.startedAt);
  });

  it('when exec runs argv, then the output and exit code come back, with no shell in between', async () => {
    const conf = await run('execs', LOOP);
    writeFileSync(join(conf, 'value'), 'hello from the volume\n');
    await expect(driver.exec(byName('execs'), ['cat', '/conf/value'], { timeoutMs: 5000 })).resolves.toEqual({
      exitCode: 0,
      output: 'hello from the volume\n',
    });
    const mixed = await driver.exec(byName('execs'), ['sh', '-c', 'echo out; echo err >&2; exit 7'], { timeoutMs: 5000 });
    expect(mixed.exitCode).toBe(7);
    expect(mixed.output).toContain('out\n');
    expect(mixed.output).toContain('err\n');
    // One argv word stays one word: nothing expands $HOME or runs after ";".
    const literal = await driver.exec(byName('execs'), ['echo', '$HOME; touch /conf/pwned'], { timeoutMs: 5000 });
    expect(literal.output).toBe('$HOME; touch /conf/pwned\n');
    expect(existsSync(join(conf, 'pwned'))).toBe(false);
  });

  it('when exec prints a lot, then the output is capped; when it runs too long, then TIMEOUT', async () => {
    await run('chatty', LOOP);
    const big = await driver.exec(byName('chatty'), ['sh', '-c', 'yes 0123456789 | head -c 100000'], { timeoutMs: 5000 });
    expect(big.exitCode).toBe(0);
    expect(Buffer.byteLength(big.output)).toBeLessThan(OUTPUT_LIMIT_BYTES + 100);
    expect(big.output).toContain('[output truncated]');
    // TIMEOUT, not an exit code: the budget, not the 5 s sleep, ended the exec.
    await expectAppError(driver.exec(byName('chatty'), ['sleep', '5'], { timeoutMs: 500 }), 'TIMEOUT');
  });

  it('when containers are chosen by label, then exactly one match resolves, two fail naming the label and count, and none is a service not up yet', async () => {
    await run('lab-one', LOOP, { Labels: { 'com.docker.compose.service': 'gitea', 'confhub.test.only': 'yes' } });
    await run('lab-two', LOOP, { Labels: { 'com.docker.compose.service': 'dup' } });
    await run('lab-three', LOOP, { Labels: { 'com.docker.compose.service': 'dup' } });
    await expect(driver.resolve({ by: 'label', label: 'com.docker.compose.service', value: 'gitea' })).resolves.toMatchObject({ name: 'lab-one' });
    await expect(driver.resolve({ by: 'label', label: 'confhub.test.only' })).resolves.toMatchObject({ name: 'lab-one' });
    const two = await expectAppError(driver.resolve({ by: 'label', label: 'com.docker.compose.service', value: 'dup' }), 'RELOAD_FAILED');
    expect(two.details).toContain('com.docker.compose.service=dup');
    expect(two.data).toMatchObject({ label: 'com.docker.compose.service=dup', matches: 2 });
    const none = await expectAppError(
      driver.restart({ by: 'label', label: 'com.docker.compose.service', value: 'nothing' }, { timeoutMs: 5000 }),
      'SERVICE_UNREACHABLE',
    );
    expect(none.data).toMatchObject({ label: 'com.docker.compose.service=nothing', matches: 0 });
    const missing = await expectAppError(driver.restart(byName('no-such-container'), { timeoutMs: 5000 }), 'SERVICE_UNREACHABLE');
    expect(missing.details).toContain('no-such-container');
  });

  it('when one of two labelled containers is stopped, then the running one is the service', async () => {
    await run('one-off', 'exit 0', { Labels: { 'com.docker.compose.service': 'solo' } });
    await run('solo-live', LOOP, { Labels: { 'com.docker.compose.service': 'solo' } });
    const ref: ContainerRef = { by: 'label', label: 'com.docker.compose.service', value: 'solo' };
    // The one-off exits at once; give Docker a moment to record that.
    for (let i = 0; i < 20 && (await docker.getContainer('one-off').inspect()).State.Running; i++) await new Promise((r) => setTimeout(r, 50));
    await expect(driver.resolve(ref)).resolves.toMatchObject({ name: 'solo-live' });
  });

  it('when a container has a HEALTHCHECK, then waitHealthy waits for healthy and fails on unhealthy', async () => {
    const conf = join(workDir, 'checked');
    mkdirSync(conf, { recursive: true });
    writeFileSync(join(conf, 'healthy'), '');
    await run('checked', LOOP, {
      Healthcheck: { Test: ['CMD', 'test', '-f', '/conf/healthy'], Interval: 200_000_000, Timeout: 1_000_000_000, Retries: 1, StartPeriod: 0 },
    });
    const first = await driver.waitHealthy(byName('checked'), { timeoutMs: 5000 });
    expect(first.health).toBe('healthy');
    // The next run fails its health check: restart, then the check reports unhealthy.
    unlinkSync(join(conf, 'healthy'));
    const before = await driver.inspectState(byName('checked'));
    await driver.restart(byName('checked'), { timeoutMs: 10_000 });
    const right = await driver.inspectState(byName('checked'));
    console.info(`health right after restart: ${right.health}`);
    const error = await expectAppError(driver.waitHealthy(byName('checked'), { timeoutMs: 5000, startedAfter: before.startedAt }), 'HEALTH_FAILED');
    expect(error.details).toContain('unhealthy');
    expect(error.data).toMatchObject({ container: 'checked', health: 'unhealthy' });
  });

  it('when a container exits right after its restart, then waitHealthy fails with HEALTH_FAILED and the exit code', async () => {
    const conf = await run('crashy', `if [ -f /conf/crash ]; then exit 3; fi; ${LOOP}`);
    const before = await driver.inspectState(byName('crashy'));
    writeFileSync(join(conf, 'crash'), '');
    await driver.restart(byName('crashy'), { timeoutMs: 10_000 });
    const error = await expectAppError(
      driver.waitHealthy(byName('crashy'), { timeoutMs: 5000, startedAfter: before.startedAt, stableMs: 500 }),
      'HEALTH_FAILED',
    );
    expect(error.details).toContain('exit code 3');
  });

  it('when a stopped container is signalled, then RELOAD_FAILED', async () => {
    await run('gone', 'exit 0');
    for (let i = 0; i < 20 && (await docker.getContainer('gone').inspect()).State.Running; i++) await new Promise((r) => setTimeout(r, 50));
    const error = await expectAppError(driver.signal(byName('gone'), 'HUP'), 'RELOAD_FAILED');
    expect(error.details).toContain('gone');
    await expectAppError(driver.waitHealthy(byName('gone'), { timeoutMs: 2000 }), 'HEALTH_FAILED');
  });
});
