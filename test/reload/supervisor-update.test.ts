/**
 * `supervisorctl update PROG` over XML-RPC against a real, private supervisord whose main file
 * includes env/*.conf (written by the environment renderer) before its [program:x] sections:
 * what each program's process really has in /proc/PID/environ after an update, which processes
 * are replaced, and what is left when the new environment does not start.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SUPERVISOR_FAULTS, createSupervisorDriver, type ProcessInfo, type SupervisorDriver } from '../../src/reload/supervisor.js';
import { applyProgramUpdate, updateProgram } from '../../src/reload/supervisor-update.js';
import { renderSupervisorEnv } from '../../src/render/supervisor-env.js';
import { SKIP_SUPERVISORD, startSupervisord, type PrivateSupervisord } from '../support/engines.js';
import { NASTY } from '../support/nasty-env.js';
import { expectAppError } from '../support/wait.js';

const TIMEOUT_MS = 20_000;

/** The variables a process was started with, from the kernel's copy. */
function environOf(pid: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    if (entry === '') continue;
    const at = entry.indexOf('=');
    out.set(entry.slice(0, at), entry.slice(at + 1));
  }
  return out;
}

/** What a program got beyond supervisord's own environment and the SUPERVISOR_* it adds. */
function ownVariables(pid: number): Record<string, string> {
  const own: Record<string, string> = {};
  for (const [name, value] of environOf(pid)) {
    if (name.startsWith('SUPERVISOR_') || process.env[name] === value) continue;
    own[name] = value;
  }
  return own;
}

/** A supervisord that answers reloadConfig with `lists` and each other method from `answers` (a number is a fault). */
function scripted(lists: [string[], string[], string[]], answers: Record<string, number | true> = {}) {
  const calls: string[] = [];
  const info: ProcessInfo = { state: 'RUNNING', pid: 42, start: 1000, exitStatus: 0, description: '' };
  const supervisor: Pick<SupervisorDriver, 'call' | 'processInfo'> = {
    async call(method) {
      calls.push(method);
      if (method === 'supervisor.reloadConfig') return [lists];
      const answer = answers[method] ?? true;
      if (typeof answer === 'number') throw Object.assign(new Error('fault'), { faultCode: answer, faultString: `FAULT_${answer}: web` });
      return answer;
    },
    processInfo: async () => info,
  };
  return { supervisor, calls };
}

describe('supervisord program update: the answers supervisord may give', () => {
  it('when the group changed, then stop, remove, add and start, in that order, and the process before is reported', async () => {
    const { supervisor, calls } = scripted([[], ['other', 'web'], []]);
    expect(await applyProgramUpdate({ supervisor, program: 'web', timeoutMs: 1000 })).toEqual({ change: 'changed', before: { pid: 42, start: 1000 } });
    expect(calls).toEqual([
      'supervisor.reloadConfig',
      'supervisor.stopProcessGroup',
      'supervisor.removeProcessGroup',
      'supervisor.addProcessGroup',
      'supervisor.startProcess',
    ]);
  });

  it('when someone else removed or added the group meanwhile, or it is already starting, then the update goes on', async () => {
    const { supervisor } = scripted([[], ['web'], []], {
      'supervisor.removeProcessGroup': SUPERVISOR_FAULTS.BAD_NAME,
      'supervisor.addProcessGroup': SUPERVISOR_FAULTS.ALREADY_ADDED,
      'supervisor.startProcess': SUPERVISOR_FAULTS.ALREADY_STARTED,
    });
    expect((await applyProgramUpdate({ supervisor, program: 'web', timeoutMs: 1000 })).change).toBe('changed');
  });

  it('when the group is new in the files, then it is added and started', async () => {
    const { supervisor, calls } = scripted([['web'], [], []]);
    expect(await applyProgramUpdate({ supervisor, program: 'web', timeoutMs: 1000 })).toEqual({ change: 'added' });
    expect(calls).toEqual(['supervisor.reloadConfig', 'supervisor.addProcessGroup', 'supervisor.startProcess']);
  });

  it('when a process will not stop, then RELOAD_FAILED naming the program and the step, with its state', async () => {
    const { supervisor } = scripted([[], ['web'], []], { 'supervisor.removeProcessGroup': SUPERVISOR_FAULTS.STILL_RUNNING });
    const error = await expectAppError(applyProgramUpdate({ supervisor, program: 'web', timeoutMs: 1000 }), 'RELOAD_FAILED');
    expect(error.details).toBe('update web: removeProcessGroup: FAULT_91: web');
    expect(error.data).toEqual({ program: 'web', state: 'RUNNING' });
  });

  it('when supervisord is shutting down, then SERVICE_UNREACHABLE marked shuttingDown (a reload that cannot happen yet)', async () => {
    const { supervisor } = scripted([[], ['web'], []], { 'supervisor.stopProcessGroup': SUPERVISOR_FAULTS.SHUTDOWN_STATE });
    const error = await expectAppError(applyProgramUpdate({ supervisor, program: 'web', timeoutMs: 1000 }), 'SERVICE_UNREACHABLE');
    expect(error.data).toEqual({ program: 'web', shuttingDown: true });
  });
});

describe.skipIf(SKIP_SUPERVISORD)('supervisord program update against a private supervisord', () => {
  let engine: PrivateSupervisord;
  let driver: SupervisorDriver;

  const writeEnv = (program: string, variables: Record<string, string>): void => {
    mkdirSync(join(engine.dir, 'env'), { recursive: true });
    writeFileSync(join(engine.dir, 'env', `${program}.conf`), renderSupervisorEnv({ target: program, program, variables: new Map(Object.entries(variables)) }));
  };
  const pidOf = async (program: string): Promise<number> => (await driver.processInfo(program)).pid;
  const update = (program: string) => updateProgram({ supervisor: driver, program, timeoutMs: TIMEOUT_MS, stableMs: 300 });

  beforeAll(async () => {
    engine = await startSupervisord(
      [
        { name: 'web', command: '/bin/sleep 1000', options: { environment: 'FROM_MAIN="1"' } },
        { name: 'other', command: '/bin/sleep 1001' },
        // Exits at once when MODE is "fail": with startretries=0 supervisord marks it FATAL.
        { name: 'flaky', command: `/bin/sh -c '[ "$MODE" != fail ] && exec /bin/sleep 1002'` },
      ],
      { include: ['env/*.conf'] },
    );
    driver = createSupervisorDriver({ url: engine.url, logger: pino({ level: 'silent' }), pollIntervalMs: 50 });
    for (const program of ['web', 'other', 'flaky']) await driver.waitRunning(program, { timeoutMs: TIMEOUT_MS, stableMs: 0 });
  }, 60_000);

  afterAll(async () => {
    await engine?.stop();
  });

  it("when its include holds new values, then the process is replaced and /proc/PID/environ holds exactly them, nasty ones and a multi-line one included; the main file's environment= is replaced", async () => {
    const before = await pidOf('web');
    const otherBefore = await pidOf('other');
    expect(ownVariables(before)).toEqual({ FROM_MAIN: '1' });
    writeEnv('web', NASTY);
    const result = await update('web');
    expect(result.change).toBe('changed');
    expect(result.before?.pid).toBe(before);
    expect(result.running.state).toBe('RUNNING');
    expect(result.running.pid).not.toBe(before);
    expect(ownVariables(result.running.pid)).toEqual(NASTY);
    expect(await pidOf('other')).toBe(otherBefore);
  });

  it('when a variable is removed, then the new process no longer has it', async () => {
    const { EMPTY: _empty, ...rest } = NASTY;
    writeEnv('web', { ...rest, ADDED: 'x' });
    const result = await update('web');
    expect(ownVariables(result.running.pid)).toEqual({ ...rest, ADDED: 'x' });
  });

  it('when nothing changed in its files, then the update keeps the process (same pid)', async () => {
    const before = await pidOf('web');
    const result = await update('web');
    expect(result.change).toBe('unchanged');
    expect(result.running.pid).toBe(before);
  });

  it("when another program's include changed too, then updating one program leaves the other running on its old environment until it is updated itself", async () => {
    const otherBefore = await pidOf('other');
    const webBefore = await pidOf('web');
    writeEnv('other', { OTHER: 'new' });
    writeEnv('web', { WEB: 'newer' });
    const web = await update('web');
    expect(web.running.pid).not.toBe(webBefore);
    expect(ownVariables(web.running.pid)).toEqual({ WEB: 'newer' });
    expect(await pidOf('other')).toBe(otherBefore);
    expect(ownVariables(otherBefore)).toEqual({});

    const other = await update('other');
    expect(other.change).toBe('changed');
    expect(ownVariables(other.running.pid)).toEqual({ OTHER: 'new' });
  });

  it('when an unchanged program is stopped, then the update starts it again', async () => {
    await driver.call('supervisor.stopProcess', ['other', true], { timeoutMs: TIMEOUT_MS });
    const result = await update('other');
    expect(result.change).toBe('unchanged');
    expect(ownVariables(result.running.pid)).toEqual({ OTHER: 'new' });
  });

  it('when the new environment makes the program exit, then HEALTH_FAILED naming it with its state FATAL, no value in the error; restoring the previous file and updating again brings it back', async () => {
    writeEnv('flaky', { MODE: 'ok', TOKEN: 'first-secret-value' });
    const good = await update('flaky');
    expect(ownVariables(good.running.pid)).toEqual({ MODE: 'ok', TOKEN: 'first-secret-value' });

    writeEnv('flaky', { MODE: 'fail', TOKEN: 'second-secret-value' });
    const error = await expectAppError(update('flaky'), 'HEALTH_FAILED');
    expect(error.data).toEqual({ program: 'flaky', state: 'FATAL' });
    expect(error.details).toContain('flaky');
    expect(JSON.stringify({ m: error.message, d: error.details, data: error.data })).not.toContain('secret');
    expect((await driver.processInfo('flaky')).state).toBe('FATAL');

    writeEnv('flaky', { MODE: 'ok', TOKEN: 'first-secret-value' });
    const restored = await update('flaky');
    expect(restored.change).toBe('changed');
    expect(ownVariables(restored.running.pid)).toEqual({ MODE: 'ok', TOKEN: 'first-secret-value' });
  });

  it('when supervisord cannot read an include, then RELOAD_FAILED without the configuration text, and the program keeps running', async () => {
    const before = await pidOf('web');
    const path = join(engine.dir, 'env', 'web.conf');
    const good = readFileSync(path, 'utf8');
    writeFileSync(path, '[program:web]\nenvironment=PASSWORD="unclosed-secret-value\n');
    try {
      const error = await expectAppError(update('web'), 'RELOAD_FAILED');
      expect(error.details).toBe('update web: reloadConfig: supervisord cannot read its configuration files (supervisorctl reread tells why)');
      expect(error.data).toEqual({ program: 'web', state: 'RUNNING' });
      expect(error.cause).toBeUndefined();
      expect(await pidOf('web')).toBe(before);
    } finally {
      writeFileSync(path, good);
    }
  });

  it('when the main file no longer defines the program, then RELOAD_FAILED naming it, and it keeps running', async () => {
    const main = join(engine.dir, 'supervisord.conf');
    const original = readFileSync(main, 'utf8');
    const before = await pidOf('other');
    writeFileSync(main, original.replace(/\[program:other\][^[]*/, ''));
    try {
      const error = await expectAppError(update('other'), 'RELOAD_FAILED');
      expect(error.data).toEqual({ program: 'other', state: 'RUNNING' });
      expect(await pidOf('other')).toBe(before);
    } finally {
      writeFileSync(main, original);
    }
  });

  it('when the program is not in the configuration, then RELOAD_FAILED naming it', async () => {
    const error = await expectAppError(update('nope'), 'RELOAD_FAILED');
    expect(error.data).toMatchObject({ program: 'nope' });
  });

  it("when the include of a program is removed, then it goes back to the main file's environment", async () => {
    rmSync(join(engine.dir, 'env', 'web.conf'));
    const result = await update('web');
    expect(ownVariables(result.running.pid)).toEqual({ FROM_MAIN: '1' });
  });
});
