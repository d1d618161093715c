import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../src/core/errors.js';
import { parseIni } from '../../src/ini/document.js';
import type { ReloadResult, ReloadActions } from '../../src/reload/reload-actions.js';
import { createReconciler } from '../../src/sync/reconcile.js';
import type { FileOnDisk } from '../../src/targets/outcome.js';
import { describeAction, type ReloadAction, type TargetSpec } from '../../src/targets/target-spec.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'confhub-reconcile-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const restartA: ReloadAction = { kind: 'docker_restart', container: { by: 'name', name: 'a' } };
const restartB: ReloadAction = { kind: 'supervisor_restart', program: 'b' };

function target(name: string, overrides: Partial<TargetSpec> = {}): TargetSpec {
  return {
    name,
    sections: ['app'],
    format: 'json',
    output: join(dir, `${name}.json`),
    write: 'rename',
    mode: 0o600,
    reload: restartA,
    health: { kind: 'auto' },
    timeoutMs: 1000,
    onFailure: 'rollback',
    ...overrides,
  };
}

/** Records calls; failures are scripted per action description. */
function fakeActions(
  script: { failReload?: Record<string, AppError>; failVerify?: Record<string, AppError[]>; failCheck?: boolean; checkError?: AppError } = {},
) {
  const calls: string[] = [];
  const actions: ReloadActions = {
    describe: (action) =>
      'program' in action ? action.program : 'container' in action && action.container.by === 'name' ? action.container.name : action.kind,
    async reload(action): Promise<ReloadResult> {
      const name = actions.describe(action);
      calls.push(`reload ${name}`);
      const error = script.failReload?.[name];
      if (error) throw error;
      return { reloaded: true };
    },
    async verify({ action }) {
      const name = actions.describe(action);
      calls.push(`verify ${name}`);
      const queue = script.failVerify?.[name];
      const error = queue?.shift();
      if (error) throw error;
    },
    async runCheck(_check, path) {
      calls.push(`check ${readFileSync(path, 'utf8').trim()}`);
      if (script.checkError) throw script.checkError;
      if (script.failCheck) throw new AppError('CHECK_FAILED', { details: 'bad file' });
    },
  };
  return { actions, calls };
}

const render = (t: TargetSpec, input: { sections: readonly { name: string; values: ReadonlyMap<string, string> }[] }): string => {
  const app = input.sections.find((s) => s.name === 'app');
  if (!app) throw new AppError('RENDER_FAILED', { details: `target ${t.name}: missing app` });
  return `${JSON.stringify({ target: t.name, ...Object.fromEntries(app.values) })}\n`;
};

function reconciler(targets: TargetSpec[], actions: ReloadActions) {
  return createReconciler({
    targets,
    actions,
    render,
    readTemplate: async () => '',
    paths: { outputRoots: [dir], own: [] },
    logger: pino({ level: 'silent' }),
  });
}

const doc = (v: string) => parseIni(`[app]\nv = ${v}\n`);
const read = (name: string) => readFileSync(join(dir, `${name}.json`), 'utf8');

describe('reconcile', () => {
  it('when targets are new, then all are written and each service is reloaded and verified once', async () => {
    const { actions, calls } = fakeActions();
    const r = reconciler([target('one'), target('two'), target('three', { reload: restartB })], actions);
    const result = await r.reconcile({ revision: 'r1', doc: doc('1'), force: false });
    expect(result.outcome).toBe('applied');
    expect(result.targets.map((t) => [t.target, t.changed, t.writeMode, t.reloaded, t.healthy, t.state])).toEqual([
      ['one', true, 'rename', true, true, 'in_sync'],
      ['two', true, 'rename', true, true, 'in_sync'],
      ['three', true, 'rename', true, true, 'in_sync'],
    ]);
    expect(calls).toEqual(['reload a', 'verify a', 'reload b', 'verify b']);
    expect(read('one')).toBe('{"target":"one","v":"1"}\n');
    expect(statSync(join(dir, 'one.json')).mode & 0o777).toBe(0o600);
  });

  it('when nothing changed, then nothing is written or reloaded; force reloads without writing', async () => {
    const { actions, calls } = fakeActions();
    const r = reconciler([target('one')], actions);
    await r.reconcile({ revision: 'r1', doc: doc('1'), force: false });
    const inode = statSync(join(dir, 'one.json')).ino;
    calls.length = 0;
    const same = await r.reconcile({ revision: 'r1', doc: doc('1'), force: false });
    expect(same.outcome).toBe('unchanged');
    expect(calls).toEqual([]);
    const forced = await r.reconcile({ revision: 'r1', doc: doc('1'), force: true });
    expect(forced.outcome).toBe('applied');
    expect(forced.targets[0]).toMatchObject({ changed: false, writeMode: null, reloaded: true });
    expect(calls).toEqual(['reload a', 'verify a']);
    expect(statSync(join(dir, 'one.json')).ino).toBe(inode);
  });

  it('when only the mode differs, then the file is rewritten', async () => {
    const { actions } = fakeActions();
    const r = reconciler([target('one')], actions);
    await r.reconcile({ revision: 'r1', doc: doc('1'), force: false });
    const { chmodSync } = await import('node:fs');
    chmodSync(join(dir, 'one.json'), 0o644);
    const result = await r.reconcile({ revision: 'r1', doc: doc('1'), force: false });
    expect(result.targets[0]!.changed).toBe(true);
    expect(statSync(join(dir, 'one.json')).mode & 0o777).toBe(0o600);
  });

  it('when a rollback-policy service fails its health check, then every target gets its previous files back, services are reloaded again, and config.ini rollback is asked for', async () => {
    const unhealthy = new AppError('HEALTH_FAILED', { details: 'container a exited' });
    const { actions, calls } = fakeActions({ failVerify: { b: [unhealthy] } });
    const r = reconciler([target('one'), target('two', { reload: restartB })], actions);
    writeFileSync(join(dir, 'one.json'), 'old one\n', { mode: 0o600 });
    const result = await r.reconcile({ revision: 'r2', doc: doc('2'), force: false });
    expect(result.outcome).toBe('rolled_back');
    expect(result.rollbackConfig).toBe(true);
    expect(result.targets.find((t) => t.target === 'two')).toMatchObject({ state: 'failed', healthy: false, error: { code: 'HEALTH_FAILED' } });
    expect(result.targets.find((t) => t.target === 'one')!.state).toBe('rolled_back');
    expect(read('one')).toBe('old one\n');
    expect(readdirSync(dir).sort()).toEqual(['one.json']);
    // One restore pass: each service is reloaded once more with its previous file.
    expect(calls).toEqual(['reload a', 'verify a', 'reload b', 'verify b', 'reload a', 'verify a', 'reload b', 'verify b']);
  });

  it('when a keep-policy service fails, then only its files are restored and the others stay on the new revision', async () => {
    const { actions } = fakeActions({ failReload: { b: new AppError('RELOAD_FAILED', { details: 'exit 1' }) } });
    const r = reconciler([target('one', { onFailure: 'keep' }), target('two', { reload: restartB, onFailure: 'keep' })], actions);
    writeFileSync(join(dir, 'two.json'), 'old two\n', { mode: 0o600 });
    const result = await r.reconcile({ revision: 'r2', doc: doc('2'), force: false });
    expect(result.outcome).toBe('failed');
    expect(result.rollbackConfig).toBe(false);
    expect(read('one')).toBe('{"target":"one","v":"2"}\n');
    expect(read('two')).toBe('old two\n');
  });

  it('when the service cannot be reached, then the file is written and the reload stays pending', async () => {
    const { actions } = fakeActions({ failReload: { a: new AppError('SERVICE_UNREACHABLE', { details: 'no docker socket' }) } });
    const r = reconciler([target('one')], actions);
    const result = await r.reconcile({ revision: 'r1', doc: doc('1'), force: false });
    expect(result.outcome).toBe('applied');
    expect(result.targets[0]).toMatchObject({ state: 'pending_reload', reloaded: false, writeMode: 'rename', error: { code: 'SERVICE_UNREACHABLE' } });
    expect(read('one')).toBe('{"target":"one","v":"1"}\n');
  });

  it('when the check of a staged file fails, then nothing is written anywhere and no temp file is left', async () => {
    const { actions, calls } = fakeActions({ failCheck: true });
    const r = reconciler([target('one', { reload: restartB }), target('two', { check: { kind: 'exec', argv: ['/bin/true'] } })], actions);
    const result = await r.reconcile({ revision: 'r1', doc: doc('1'), force: false });
    expect(result.outcome).toBe('rolled_back');
    expect(result.targets.find((t) => t.target === 'two')).toMatchObject({ state: 'failed', error: { code: 'CHECK_FAILED' } });
    expect(readdirSync(dir)).toEqual([]);
    expect(calls).toEqual(['check {"target":"two","v":"1"}']);
  });

  it('when a service-side check cannot reach its service yet, then the file is written and the reload stays pending', async () => {
    const unreachable = new AppError('SERVICE_UNREACHABLE', { details: 'container a does not exist (yet)' });
    const { actions } = fakeActions({ checkError: unreachable, failReload: { a: unreachable } });
    const check = { kind: 'docker_exec' as const, container: { by: 'name' as const, name: 'a' }, command: ['nginx', '-t'] };
    const r = reconciler([target('one', { check })], actions);
    const result = await r.reconcile({ revision: 'r1', doc: doc('1'), force: false });
    expect(result.outcome).toBe('applied');
    expect(result.targets[0]).toMatchObject({ state: 'pending_reload', writeMode: 'rename' });
    expect(read('one')).toBe('{"target":"one","v":"1"}\n');
  });

  it('when a service-side check rejects the written file, then the previous file is put back before any reload', async () => {
    const { actions, calls } = fakeActions({ checkError: new AppError('CHECK_FAILED', { details: 'nginx -t: exit code 1' }) });
    const check = { kind: 'docker_exec' as const, container: { by: 'name' as const, name: 'a' }, command: ['nginx', '-t'] };
    writeFileSync(join(dir, 'one.json'), 'previous\n', { mode: 0o600 });
    const r = reconciler([target('one', { check })], actions);
    const result = await r.reconcile({ revision: 'r1', doc: doc('1'), force: false });
    expect(result.outcome).toBe('rolled_back');
    expect(read('one')).toBe('previous\n');
    expect(calls.filter((c) => c.startsWith('reload'))).toEqual([]);
  });

  it("when a rollback-policy target fails while files are being written, then later targets' staged files are removed too", async () => {
    const { actions } = fakeActions({ checkError: new AppError('CHECK_FAILED', { details: 'nginx -t: exit code 1' }) });
    const check = { kind: 'docker_exec' as const, container: { by: 'name' as const, name: 'a' }, command: ['nginx', '-t'] };
    const r = reconciler([target('one', { check }), target('two'), target('three')], actions);
    const result = await r.reconcile({ revision: 'r1', doc: doc('1'), force: false });
    expect(result.outcome).toBe('rolled_back');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('when an output path is a symbolic link, then the target fails and nothing is written through the link', async () => {
    const { symlinkSync } = await import('node:fs');
    writeFileSync(join(dir, 'victim'), 'precious\n');
    symlinkSync(join(dir, 'victim'), join(dir, 'one.json'));
    const { actions } = fakeActions();
    const r = reconciler([target('one', { write: 'inplace' })], actions);
    const result = await r.reconcile({ revision: 'r1', doc: doc('1'), force: false });
    expect(result.targets[0]).toMatchObject({ state: 'failed', error: { code: 'WRITE_FAILED', details: expect.stringContaining('a symbolic link') } });
    expect(readFileSync(join(dir, 'victim'), 'utf8')).toBe('precious\n');
  });

  it('when a section is missing, then the revision fails before anything is written', async () => {
    const { actions, calls } = fakeActions();
    const r = reconciler([target('one')], actions);
    const result = await r.reconcile({ revision: 'r1', doc: parseIni('[other]\nx = 1\n'), force: false });
    expect(result.outcome).toBe('rolled_back');
    expect(result.targets[0]!.error).toMatchObject({ code: 'RENDER_FAILED', details: 'target one: missing app' });
    expect(calls).toEqual([]);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('when a health URL refers to config.ini values, then each revision is verified at its own address, and restored files at the address of the revision they came from', async () => {
    const verified: string[] = [];
    const { actions, calls } = fakeActions({ failVerify: { a: [new AppError('HEALTH_FAILED', { details: 'refused' })] } });
    const failing = actions.verify;
    actions.verify = async (input) => {
      if (input.health.kind === 'http') verified.push(input.health.url);
      // The first verify of the run that is to fail is the one scripted to fail.
      if (verified.length === 2) return failing(input);
    };
    const health = { kind: 'http' as const, url: 'http://127.0.0.1:{{ app.v }}/', templated: true as const, shown: 'http://127.0.0.1:{{ app.v }}/' };
    const r = reconciler([target('one', { health })], actions);
    expect((await r.reconcile({ revision: 'r1', doc: doc('8081'), force: false })).outcome).toBe('applied');
    const result = await r.reconcile({ revision: 'r2', doc: doc('8082'), force: false });
    expect(result.outcome).toBe('rolled_back');
    expect(verified).toEqual(['http://127.0.0.1:8081/', 'http://127.0.0.1:8082/', 'http://127.0.0.1:8081/']);
    expect(read('one')).toBe('{"target":"one","v":"8081"}\n');
    expect(calls.filter((c) => c.startsWith('reload'))).toHaveLength(3);
  });

  it('when the first run after a start fails, then the restored files are checked at the address of the revision applied before the start', async () => {
    const verified: string[] = [];
    const { actions } = fakeActions();
    actions.verify = async (input) => {
      if (input.health.kind === 'http') verified.push(input.health.url);
      if (verified.length === 1) throw new AppError('HEALTH_FAILED', { details: 'refused' });
    };
    const health = { kind: 'http' as const, url: 'http://127.0.0.1:{{ app.v }}/', templated: true as const, shown: 'http://127.0.0.1:{{ app.v }}/' };
    // What the services run: the file of the revision the targets applied before this start.
    writeFileSync(join(dir, 'one.json'), '{"target":"one","v":"8081"}\n', { mode: 0o600 });
    const r = createReconciler({
      targets: [target('one', { health })],
      actions,
      render,
      readTemplate: async () => '',
      paths: { outputRoots: [dir], own: [] },
      logger: pino({ level: 'silent' }),
      applied: doc('8081'),
    });
    const result = await r.reconcile({ revision: 'r2', doc: doc('8082'), force: false });
    expect(result.outcome).toBe('rolled_back');
    expect(verified).toEqual(['http://127.0.0.1:8082/', 'http://127.0.0.1:8081/']);
    expect(read('one')).toBe('{"target":"one","v":"8081"}\n');
  });

  it('when a URL refers to a key the revision does not have, then the target fails before its file is written', async () => {
    const { actions, calls } = fakeActions();
    const health = { kind: 'http' as const, url: 'http://127.0.0.1:{{ app.port }}/', templated: true as const, shown: 'http://127.0.0.1:{{ app.port }}/' };
    const r = reconciler([target('one', { health })], actions);
    const result = await r.reconcile({ revision: 'r1', doc: doc('1'), force: false });
    expect(result.outcome).toBe('rolled_back');
    expect(result.targets[0]!.error).toMatchObject({
      code: 'RENDER_FAILED',
      details: 'target one: health URL http://127.0.0.1:{{ app.port }}/: unknown placeholders app.port',
    });
    expect(calls).toEqual([]);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('when a check of the installed file rejects it, then it ran with the new file in place, the previous file is put back and nothing is reloaded', async () => {
    const { actions, calls } = fakeActions({ checkError: new AppError('CHECK_FAILED', { details: 'nginx -t: exit code 1' }) });
    const options: unknown[] = [];
    const runCheck = actions.runCheck;
    actions.runCheck = async (check, path, opts) => {
      options.push({ path, ...opts });
      return runCheck(check, path, opts);
    };
    writeFileSync(join(dir, 'one.json'), 'previous\n', { mode: 0o600 });
    const checkInstalled = { kind: 'exec' as const, argv: ['/usr/sbin/nginx', '-t'] };
    const r = reconciler([target('one', { checkInstalled, onFailure: 'keep' })], actions);
    const result = await r.reconcile({ revision: 'r1', doc: doc('1'), force: false });
    expect(result.outcome).toBe('failed');
    expect(result.targets[0]).toMatchObject({ state: 'failed', reloaded: false, error: { code: 'CHECK_FAILED' } });
    expect(calls).toEqual(['check {"target":"one","v":"1"}']);
    expect(options).toEqual([{ path: join(dir, 'one.json'), timeoutMs: 1000, installed: true }]);
    expect(read('one')).toBe('previous\n');
  });

  it('when only some targets are asked for, then only they are reconciled', async () => {
    const { actions, calls } = fakeActions();
    const r = reconciler([target('one'), target('two', { reload: restartB })], actions);
    const result = await r.reconcile({ revision: 'r1', doc: doc('1'), force: true, only: ['two'] });
    expect(result.targets.map((t) => t.target)).toEqual(['two']);
    expect(calls).toEqual(['reload b', 'verify b']);
  });

  it('when a lane holds several reload actions on one service, then each distinct action runs once, in the order its first target is declared', async () => {
    const { actions, calls } = fakeActions();
    actions.describe = describeAction;
    const hup: ReloadAction = { kind: 'docker_signal', signal: 'HUP', container: { by: 'name', name: 'a' } };
    const exec: ReloadAction = { kind: 'docker_exec', container: { by: 'name', name: 'a' }, command: ['app', 'reload'] };
    const r = reconciler([target('one', { reload: hup }), target('two'), target('three', { reload: exec }), target('four', { reload: hup })], actions);
    await r.reconcile({ revision: 'r1', doc: doc('1'), force: false });
    expect(calls).toEqual([
      'reload docker kill --signal HUP a',
      'verify docker kill --signal HUP a',
      'reload docker restart a',
      'verify docker restart a',
      'reload docker exec a app reload',
      'verify docker exec a app reload',
    ]);
    // Only the targets that changed reload: the order stays that of the declarations.
    calls.length = 0;
    writeFileSync(join(dir, 'one.json'), 'edited by hand\n');
    writeFileSync(join(dir, 'three.json'), 'edited by hand\n');
    await r.reconcile({ revision: 'r1', doc: doc('1'), force: false });
    expect(calls.filter((c) => c.startsWith('reload'))).toEqual(['reload docker kill --signal HUP a', 'reload docker exec a app reload']);
  });

  it('when two hooks resolve to the same URL, one written with config.ini values, then the hook is posted once', async () => {
    const { actions, calls } = fakeActions();
    actions.describe = describeAction;
    const literal: ReloadAction = { kind: 'http', method: 'POST', url: 'http://127.0.0.1:8081/reload' };
    const templated: ReloadAction = {
      kind: 'http',
      method: 'POST',
      url: 'http://127.0.0.1:{{ app.v }}/reload',
      templated: true,
      shown: 'http://127.0.0.1:{{ app.v }}/reload',
    };
    const r = reconciler(
      [target('one', { reload: literal, health: { kind: 'none' } }), target('two', { reload: templated, health: { kind: 'none' } })],
      actions,
    );
    await r.reconcile({ revision: 'r1', doc: doc('8081'), force: false });
    expect(calls.filter((c) => c.startsWith('reload'))).toEqual(['reload POST http://127.0.0.1:8081/reload']);
  });
});

describe('what each target file on disk is, as the reconciler tells it', () => {
  const sha = (text: string) => createHash('sha256').update(text).digest('hex');
  const rendered = (name: string, v: string) => `{"target":"${name}","v":"${v}"}\n`;

  function recording() {
    const reports: { files: FileOnDisk[] }[] = [];
    const onFiles = (files: readonly FileOnDisk[]) => reports.push({ files: [...files] });
    return { reports, onFiles };
  }

  it('when a revision is written, then every target is told as of it before any reload, written or found in place', async () => {
    const { actions, calls } = fakeActions();
    const reports: { calls: number; files: FileOnDisk[] }[] = [];
    const r = reconciler([target('one'), target('two', { reload: restartB })], actions);
    writeFileSync(join(dir, 'two.json'), rendered('two', '1'), { mode: 0o600 });
    await r.reconcile({ revision: 'r1', doc: doc('1'), force: false, onFiles: (files) => reports.push({ calls: calls.length, files: [...files] }) });
    expect(reports).toEqual([
      {
        calls: 0,
        files: [
          { target: 'one', revision: 'r1', sha256: sha(rendered('one', '1')) },
          { target: 'two', revision: 'r1', sha256: sha(rendered('two', '1')) },
        ],
      },
    ]);
  });

  it('when a rollback-policy check fails before anything is written, then every target is still told: the files it has, of the revision it was told before', async () => {
    const { reports, onFiles } = recording();
    const good = reconciler([target('one'), target('two', { reload: restartB })], fakeActions().actions);
    await good.reconcile({ revision: 'r1', doc: doc('1'), force: false, onFiles });
    const failing = createReconciler({
      targets: [target('one'), target('two', { reload: restartB, check: { kind: 'exec', argv: ['/bin/false'] } })],
      actions: fakeActions({ failCheck: true }).actions,
      render,
      readTemplate: async () => '',
      paths: { outputRoots: [dir], own: [] },
      logger: pino({ level: 'silent' }),
    });
    reports.length = 0;
    const result = await failing.reconcile({ revision: 'r2', doc: doc('2'), force: false, onFiles });
    expect(result.outcome).toBe('rolled_back');
    // A new reconciler (a worker restart) knows nothing it reported before: of no known revision.
    expect(reports.at(-1)!.files).toEqual([
      { target: 'one', revision: null, sha256: sha(rendered('one', '1')) },
      { target: 'two', revision: null, sha256: sha(rendered('two', '1')) },
    ]);
  });

  it('when a service fails after the writes and the files are put back, then they are told as of the revision they had, before the services are reloaded on them', async () => {
    const unhealthy = new AppError('HEALTH_FAILED', { details: 'container b exited' });
    const { actions, calls } = fakeActions({ failVerify: { b: [undefined as unknown as AppError, unhealthy] } });
    const r = reconciler([target('one'), target('two', { reload: restartB })], actions);
    const reports: { calls: number; files: FileOnDisk[] }[] = [];
    const onFiles = (files: readonly FileOnDisk[]) => reports.push({ calls: calls.length, files: [...files] });
    await r.reconcile({ revision: 'r1', doc: doc('1'), force: false, onFiles });
    reports.length = 0;
    calls.length = 0;
    const result = await r.reconcile({ revision: 'r2', doc: doc('2'), force: false, onFiles });
    expect(result.outcome).toBe('rolled_back');
    expect(reports[0]).toEqual({
      calls: 0,
      files: [
        { target: 'one', revision: 'r2', sha256: sha(rendered('one', '2')) },
        { target: 'two', revision: 'r2', sha256: sha(rendered('two', '2')) },
      ],
    });
    // Put back: told before the restore's reloads (4 calls were the first pass).
    expect(reports.at(-1)).toEqual({
      calls: 4,
      files: [
        { target: 'one', revision: 'r1', sha256: sha(rendered('one', '1')) },
        { target: 'two', revision: 'r1', sha256: sha(rendered('two', '1')) },
      ],
    });
  });

  it('when a worker starts and puts back files of the revision applied before the start, then they are told as of it; a new file put back is told as none', async () => {
    writeFileSync(join(dir, 'one.json'), rendered('one', '1'), { mode: 0o600 });
    const unhealthy = new AppError('HEALTH_FAILED', { details: 'container a exited' });
    const reports: FileOnDisk[][] = [];
    const r = createReconciler({
      targets: [target('one'), target('fresh')],
      actions: fakeActions({ failVerify: { a: [unhealthy] } }).actions,
      render,
      readTemplate: async () => '',
      paths: { outputRoots: [dir], own: [] },
      logger: pino({ level: 'silent' }),
      applied: doc('1'),
      appliedRevision: 'r1',
    });
    const result = await r.reconcile({ revision: 'r2', doc: doc('2'), force: false, onFiles: (files) => reports.push([...files]) });
    expect(result.outcome).toBe('rolled_back');
    expect(reports.at(-1)).toEqual([
      { target: 'one', revision: 'r1', sha256: sha(rendered('one', '1')) },
      { target: 'fresh', revision: null, sha256: null },
    ]);
  });

  it('when a target cannot be rendered, then the file it has is still told', async () => {
    writeFileSync(join(dir, 'one.json'), 'from before\n', { mode: 0o600 });
    const reports: FileOnDisk[][] = [];
    const r = reconciler([target('one', { onFailure: 'keep' })], fakeActions().actions);
    await r.reconcile({ revision: 'r1', doc: parseIni('[other]\nx = 1\n'), force: false, onFiles: (files) => reports.push([...files]) });
    expect(reports.at(-1)).toEqual([{ target: 'one', revision: null, sha256: sha('from before\n') }]);
  });
});
