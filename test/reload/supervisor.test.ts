/**
 * The supervisord driver against a real, private supervisord (test/support/engines.ts), over its
 * unix socket and over TCP on 127.0.0.1 with basic auth.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { createSupervisorDriver, type SupervisorDriver } from '../../src/reload/supervisor.js';
import { SKIP_SUPERVISORD, startSupervisord, type PrivateSupervisord } from '../support/engines.js';
import { createManualClock } from '../support/manual-clock.js';
import { eventually, expectAppError } from '../support/wait.js';
import { freePort } from '../support/ports.js';

const logLines: string[] = [];
const logger = createLogger({
  level: 'debug',
  destination: new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logLines.push(chunk.toString('utf8'));
      callback();
    },
  }),
});

describe('supervisord driver with nothing listening', () => {
  it('when the socket does not exist, then SERVICE_UNREACHABLE naming it, not a TIMEOUT at the end of the budget', async () => {
    const url = `unix://${join(tmpdir(), 'confhub-no-such-dir', 'supervisor.sock')}`;
    const driver = createSupervisorDriver({ url, logger });
    const error = await expectAppError(driver.ping(2000), 'SERVICE_UNREACHABLE');
    expect(error.details).toContain(url);
    expect(error.details).toContain('ENOENT');
    await expectAppError(driver.restart('any', { timeoutMs: 2000 }), 'SERVICE_UNREACHABLE');
  });

  it('when the URL is unusable, then the driver is still built and its calls fail with SERVICE_UNREACHABLE', async () => {
    const driver = createSupervisorDriver({ url: 'http://[broken', logger });
    await expectAppError(driver.ping(1000), 'SERVICE_UNREACHABLE');
    await expectAppError(driver.restart('x', { timeoutMs: 1000 }), 'SERVICE_UNREACHABLE');
  });

  it('when supervisord accepts but never answers, then TIMEOUT at the budget, and waitRunning gives up exactly when its clock passes the timeout', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'confhub-silent-'));
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(join(dir, 'silent.sock'), resolve));
    try {
      const clock = createManualClock();
      const driver = createSupervisorDriver({ url: `unix://${join(dir, 'silent.sock')}`, logger, clock, pollIntervalMs: 150 });
      const timeout = await expectAppError(driver.ping(300), 'TIMEOUT');
      expect(timeout.details).toContain('within 300 ms');
      // Each call gets the time left (500, 350, 200, 50 ms), then a pause of the poll interval or what is left.
      const start = clock.now();
      const error = await expectAppError(clock.run(driver.waitRunning('x', { timeoutMs: 500, stableMs: 0 })), 'HEALTH_FAILED');
      expect(error.details).toContain('not stably RUNNING within 500 ms');
      expect(clock.now() - start).toBe(500);
    } finally {
      silent.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('when a TCP port refuses, then SERVICE_UNREACHABLE without the password in the message', async () => {
    const port = await freePort();
    const driver = createSupervisorDriver({ url: `http://admin:s3cret-pw@127.0.0.1:${port}`, logger });
    const error = await expectAppError(driver.ping(2000), 'SERVICE_UNREACHABLE');
    expect(JSON.stringify({ m: error.message, d: error.details, data: error.data })).not.toContain('s3cret-pw');
    expect(driver.displayUrl).toBe(`http://127.0.0.1:${port}/RPC2`);
  });
});

describe.skipIf(SKIP_SUPERVISORD)('supervisord driver against a private supervisord', () => {
  let engine: PrivateSupervisord;
  let driver: SupervisorDriver;
  let dir: string;
  let inetPort: number;

  /** Whole seconds, as supervisord reports a start. */
  let startedAfter: number;

  beforeAll(async () => {
    startedAfter = Math.floor(Date.now() / 1000);
    dir = mkdtempSync(join(tmpdir(), 'confhub-supervisor-test-'));
    writeFileSync(join(dir, 'conf'), 'version 1\n');
    inetPort = await freePort();
    engine = await startSupervisord(
      [
        {
          // Reads its config file at start, logs HUPs, exits cleanly on TERM.
          name: 'reader',
          command: `/bin/sh -c 'cat ${dir}/conf > ${dir}/seen; trap "echo HUP >> ${dir}/hups" HUP; trap "exit 0" TERM; while true; do sleep 0.2; done'`,
        },
        { name: 'crasher', command: `/bin/sh -c 'exit 3'`, options: { autostart: false } },
        // Counts as started at once (startsecs=0), then dies: only the stability window catches it.
        { name: 'flaky', command: `/bin/sh -c 'sleep 0.4; exit 3'`, options: { autostart: false, startsecs: 0 } },
        { name: 'idle', command: '/bin/sleep 1000', options: { autostart: false } },
      ],
      { inet: { port: inetPort, username: 'admin', password: 's3cret-pw' } },
    );
    console.info(`private supervisord answered getState after ${engine.startupMs} ms`);
    driver = createSupervisorDriver({ url: engine.url, logger });
    await driver.waitRunning('reader', { timeoutMs: 5000, stableMs: 0 });
  });

  afterAll(async () => {
    await engine?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('when pinged over the unix socket, then supervisord says RUNNING; processInfo reports state, pid and start', async () => {
    await expect(driver.ping(2000)).resolves.toBe('RUNNING');
    const info = await driver.processInfo('reader');
    expect(info.state).toBe('RUNNING');
    expect(info.pid).toBeGreaterThan(0);
    expect(Number.isInteger(info.start)).toBe(true);
    // Epoch seconds of this run: not before supervisord was started, not in the future.
    expect(info.start).toBeGreaterThanOrEqual(startedAfter);
    expect(info.start).toBeLessThanOrEqual(Date.now() / 1000);
    await expect(driver.processInfo('idle')).resolves.toMatchObject({ state: 'STOPPED', pid: 0 });
  });

  it('when restarted, then the program runs with a new pid and has re-read its file', async () => {
    const before = await driver.processInfo('reader');
    expect(readFileSync(join(dir, 'seen'), 'utf8')).toBe('version 1\n');
    writeFileSync(join(dir, 'conf'), 'version 2\n');
    const t0 = Date.now();
    await driver.restart('reader', { timeoutMs: 10_000 });
    const restartMs = Date.now() - t0;
    const after = await driver.waitRunning('reader', { timeoutMs: 5000, stableMs: 300, startedAfter: before.start, previousPid: before.pid });
    console.info(`supervisord restart took ${restartMs} ms (start ${before.start} -> ${after.start}, pid ${before.pid} -> ${after.pid})`);
    expect(after.pid).not.toBe(before.pid);
    expect(after.start).toBeGreaterThanOrEqual(before.start);
    expect(readFileSync(join(dir, 'seen'), 'utf8')).toBe('version 2\n');
  });

  it('when waiting with the current pid and start as the "before" marker, then the old process does not pass for a restarted one, and the wait ends exactly when its clock passes the timeout', async () => {
    const current = await driver.processInfo('reader');
    const clock = createManualClock();
    const timed = createSupervisorDriver({ url: engine.url, logger, clock, pollIntervalMs: 1000 });
    const start = clock.now();
    const error = await expectAppError(
      clock.run(timed.waitRunning('reader', { timeoutMs: 3000, stableMs: 0, startedAfter: current.start, previousPid: current.pid })),
      'HEALTH_FAILED',
    );
    expect(error.details).toContain('not stably RUNNING within 3000 ms');
    expect(error.details).toContain('last seen: RUNNING');
    expect(clock.now() - start).toBe(3000);
  });

  it('when signalled, then the program receives HUP and keeps its pid', async () => {
    const before = await driver.processInfo('reader');
    await driver.signal('reader', 'HUP');
    await eventually('the condition holds', () => existsSync(join(dir, 'hups')) && readFileSync(join(dir, 'hups'), 'utf8').includes('HUP'));
    const after = await driver.waitRunning('reader', { timeoutMs: 3000, stableMs: 200 });
    expect(after.pid).toBe(before.pid);
  });

  it('when a stopped program is restarted, then it is simply started', async () => {
    await expect(driver.processInfo('idle')).resolves.toMatchObject({ state: 'STOPPED' });
    await driver.restart('idle', { timeoutMs: 5000 });
    await expect(driver.waitRunning('idle', { timeoutMs: 3000, stableMs: 200 })).resolves.toMatchObject({ state: 'RUNNING' });
  });

  it("when the program exits right after start, then restart fails with RELOAD_FAILED and supervisord's fault", async () => {
    const error = await expectAppError(driver.restart('crasher', { timeoutMs: 5000 }), 'RELOAD_FAILED');
    expect(error.details).toContain('crasher');
    expect(error.details).toMatch(/ABNORMAL_TERMINATION|SPAWN_ERROR/);
    const info = await driver.processInfo('crasher');
    console.info(`state after a failed start: ${info.state}`);
    await expectAppError(driver.waitRunning('crasher', { timeoutMs: 2000, stableMs: 200 }), 'HEALTH_FAILED');
  });

  it('when the program dies inside the stability window, then waitRunning fails with HEALTH_FAILED and the state', async () => {
    const before = await driver.processInfo('flaky');
    await driver.restart('flaky', { timeoutMs: 5000 });
    const error = await expectAppError(
      driver.waitRunning('flaky', { timeoutMs: 3000, stableMs: 1000, startedAfter: before.start, previousPid: before.pid }),
      'HEALTH_FAILED',
    );
    expect(error.details).toContain('EXITED');
    expect(error.data).toMatchObject({ program: 'flaky', state: 'EXITED' });
  });

  it('when the program is unknown, then restart, signal and processInfo fail with RELOAD_FAILED "no such program"', async () => {
    for (const call of [driver.restart('nope', { timeoutMs: 2000 }), driver.signal('nope', 'HUP'), driver.processInfo('nope')]) {
      const error = await expectAppError(call, 'RELOAD_FAILED');
      expect(error.message).toContain('No such program: nope');
    }
  });

  it('when a program is not running, then signalling it fails with RELOAD_FAILED', async () => {
    const error = await expectAppError(driver.signal('crasher', 'HUP'), 'RELOAD_FAILED');
    expect(error.details).toContain('crasher');
  });

  it('when reached over http:// with basic auth from the URL, then it works; a wrong password is SERVICE_UNREACHABLE and never shown', async () => {
    const good = createSupervisorDriver({ url: `http://admin:s3cret-pw@127.0.0.1:${inetPort}`, logger });
    await expect(good.ping(2000)).resolves.toBe('RUNNING');
    await expect(good.processInfo('reader')).resolves.toMatchObject({ state: 'RUNNING' });
    const bad = createSupervisorDriver({ url: `http://admin:wrong-pw@127.0.0.1:${inetPort}`, logger });
    const error = await expectAppError(bad.ping(2000), 'SERVICE_UNREACHABLE');
    expect(error.details).toContain('401');
    expect(JSON.stringify({ m: error.message, d: error.details, data: error.data })).not.toMatch(/s3cret-pw|wrong-pw/);
    expect(logLines.join('')).not.toMatch(/s3cret-pw|wrong-pw/);
  });
});

describe.skipIf(SKIP_SUPERVISORD !== undefined)('supervisord driver while supervisord shuts down', () => {
  it('when supervisord got SIGTERM and is still stopping its programs, then a restart is SERVICE_UNREACHABLE (a reload to retry), not RELOAD_FAILED', async () => {
    const engine = await startSupervisord([
      // Ignores TERM, so supervisord stays in its shutdown state until stopwaitsecs ends.
      { name: 'stubborn', command: `/bin/sh -c 'trap "" TERM; while true; do sleep 0.2; done'`, options: { stopwaitsecs: 5 } },
      { name: 'other', command: `/bin/sh -c 'trap "exit 0" TERM; while true; do sleep 0.2; done'` },
    ]);
    try {
      const driver = createSupervisorDriver({ url: engine.url, logger });
      await driver.waitRunning('other', { timeoutMs: 5000, stableMs: 0 });
      process.kill(engine.pid, 'SIGTERM');
      // In its shutdown state supervisord faults every call, getState included.
      await eventually(
        'supervisord refuses calls',
        () =>
          driver.ping(1000).then(
            () => false,
            () => true,
          ),
        5000,
      );
      const error = await expectAppError(driver.restart('other', { timeoutMs: 3000 }), 'SERVICE_UNREACHABLE');
      expect(error.details).toContain('shutting down');
      expect(error.data).toMatchObject({ program: 'other', shuttingDown: true });
    } finally {
      await engine.stop();
    }
  });
});
