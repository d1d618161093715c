/**
 * Outputs and templates stay where they belong: no target writes confhub's own files, an output
 * directory that leads outside the output roots is refused at start and at every write, and a
 * template is read only inside the template roots, at start and at every render.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../src/core/errors.js';
import { createConfhub } from '../../src/main.js';
import { loadRuntimeConfig, type RuntimeConfig } from '../../src/runtime-config.js';
import { eventually, startConfhub, type Confhub } from '../support/confhub.js';

const SHADOW = 'root:$6$SECRET-HASH-never-rendered:19000:0:99999:7:::\n';

/** Stands in for /etc: outside every root. */
let etc: string;
let dir: string;
let ch: Confhub | undefined;
beforeEach(() => {
  etc = mkdtempSync(join(tmpdir(), 'confhub-etc-'));
  writeFileSync(join(etc, 'shadow'), SHADOW, { mode: 0o600 });
  dir = mkdtempSync(join(tmpdir(), 'confhub-contained-'));
});
afterEach(async () => {
  await ch?.close();
  ch = undefined;
  rmSync(etc, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

const target = (keys: string): string => `[sync]\ndebounce_min_ms = 30\n\n[target:app]\nsections = extra\nreload = none\nhealth = none\n${keys}`;

function installation(systemIni: string, files: Record<string, string> = {}): RuntimeConfig {
  const config = loadRuntimeConfig({ CONFHUB_DATA_DIR: join(dir, 'data'), CONFHUB_LOG_LEVEL: 'silent' }, dir);
  mkdirSync(config.configDir, { recursive: true });
  writeFileSync(config.systemPath, systemIni);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(config.configDir, name), content);
  return config;
}

/** The start's refusal; a start that succeeds fails the test. */
async function startRefused(config: RuntimeConfig): Promise<AppError> {
  let confhub: Awaited<ReturnType<typeof createConfhub>> | undefined;
  try {
    confhub = await createConfhub({ config, logger: pino({ level: 'silent' }), syncWorker: 'none' });
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return error as AppError;
  }
  await confhub.close();
  throw new Error('the start was expected to fail');
}

describe('outputs never overwrite confhub own files', () => {
  it.each([
    ['master.key', 'master.key is the master key'],
    ['master.key.retired', 'master.key.retired is the retired master keys'],
    ['confhub.db', 'confhub.db is the database'],
    ['confhub.db-wal', 'confhub.db-wal is the database'],
    ['history.git/HEAD', 'history.git/HEAD is inside the history repository'],
    ['history.git/objects/info/packs', 'history.git/objects/info/packs is inside the history repository'],
    ['confhub.sock', 'confhub.sock is the instance lock'],
    ['shipped-template.json', 'shipped-template.json is the record of the shipped template'],
    ['config/system.ini', 'config/system.ini is system.ini'],
    ['config/app.tmpl', 'config/app.tmpl is inside the config directory'],
  ])('when a target writes %s, then the start fails naming the target and the reason, and the file is untouched', async (output, reason) => {
    // A first start creates the master key, the database and the history.
    const first = await createConfhub({ config: installation(''), logger: pino({ level: 'silent' }), syncWorker: 'none' });
    await first.close();
    const config = installation(target(`format = json\noutput = ${output}\n`));
    const key = readFileSync(config.masterKey.file);
    const error = await startRefused(config);
    expect(error.code).toBe('TARGET_INVALID');
    expect(error.message).toBe(`system.ini [target:app] output: ${join(config.dataDir, reason)}, which confhub keeps for itself`);
    expect(readFileSync(config.masterKey.file).equals(key)).toBe(true);
  });

  it('when the master key file is elsewhere (CONFHUB_MASTER_KEY_FILE), then it and its companions are refused there too', async () => {
    const keys = join(dir, 'keys');
    mkdirSync(keys);
    writeFileSync(join(keys, 'master.key'), Buffer.alloc(32, 7), { mode: 0o600 });
    const config = loadRuntimeConfig({ CONFHUB_DATA_DIR: join(dir, 'data'), CONFHUB_MASTER_KEY_FILE: join(keys, 'master.key') }, dir);
    mkdirSync(config.configDir, { recursive: true });
    writeFileSync(config.systemPath, `[sync]\noutput_roots = ${dir}\n\n[target:app]\nsections = extra\nformat = json\noutput = ${keys}/master.key.next\n`);
    expect((await startRefused(config)).message).toContain(`output: ${keys}/master.key.next is the master key of a rotation, which confhub keeps for itself`);
  });
});

describe('output directories that lead outside the output roots', () => {
  it('when an output directory is a link outside the roots at start, then the start fails naming the target and where it leads', async () => {
    const config = installation(target('format = json\noutput = services/conf/app.json\n'));
    mkdirSync(join(config.dataDir, 'services'), { recursive: true });
    symlinkSync(etc, join(config.dataDir, 'services', 'conf'));
    const error = await startRefused(config);
    expect(error.code).toBe('TARGET_INVALID');
    expect(error.message).toBe(
      `system.ini [target:app] output: ${config.dataDir}/services/conf/app.json (which leads to ${etc}/app.json) is outside the output roots (${config.dataDir}) that [sync] output_roots allows`,
    );
    expect(readdirSync(etc)).toEqual(['shadow']);
  });

  it('when an output is outside the roots as written, then the start fails until output_roots allows its directory', async () => {
    const declared = target(`format = json\noutput = ${etc}/app.json\n`);
    expect((await startRefused(installation(declared))).message).toContain(`output: ${etc}/app.json is outside the output roots`);
    const confhub = await createConfhub({
      config: installation(declared.replace('[sync]\n', `[sync]\noutput_roots = ${join(dir, 'data')}, ${etc}\n`)),
      logger: pino({ level: 'silent' }),
      syncWorker: 'none',
    });
    await confhub.close();
  });

  it('when an output directory is swapped for a link after start, then the write is refused with the reason in the target failure and nothing is written there', async () => {
    ch = await startConfhub({ systemIni: target('format = ini\noutput = services/conf/app.ini\n'), configExtra: '\n[extra]\nmode = first\n' });
    await eventually('confhub is ready', async () => (await fetch(`${ch!.url}/readyz`)).status === 200);
    const conf = join(ch.config.dataDir, 'services', 'conf');
    expect(readFileSync(join(conf, 'app.ini'), 'utf8')).toContain('mode=first');
    // What a service that can write its volume could do: its directory becomes a link to /etc.
    renameSync(conf, `${conf}.old`);
    symlinkSync(etc, conf);
    const res = await ch.api('/api/v1/settings/extra?key=mode&value=second&wait=true', { method: 'PUT' });
    const body = (await res.json()) as { sync: { targets: { target: string; state: string; error: { code: string; details: string } | null }[] } };
    expect(body.sync.targets[0]).toMatchObject({
      target: 'app',
      state: 'failed',
      error: {
        code: 'WRITE_FAILED',
        details: `${conf}/app.ini (which leads to ${etc}/app.ini) is outside the output roots (${ch.config.dataDir}) that [sync] output_roots allows; confhub does not write there`,
      },
    });
    expect(readdirSync(etc)).toEqual(['shadow']);
    expect(readFileSync(join(etc, 'shadow'), 'utf8')).toBe(SHADOW);
  });
});

describe('templates stay inside the template roots', () => {
  it.each([
    ['an absolute path outside', () => `${etc}/shadow`, () => `${etc}/shadow is outside the template roots`],
    ['a ../ escape', () => `${'../'.repeat(12)}${etc.slice(1)}/shadow`, () => `${etc}/shadow is outside the template roots`],
    ['a link in the config directory leading outside', () => 'app.tmpl', () => `app.tmpl (which leads to ${etc}/shadow) is outside the template roots`],
  ])('when the template is %s, then the start fails naming the target', async (_what, template, reason) => {
    const config = installation(target(`format = template\ntemplate = ${template()}\noutput = services/app.conf\n`));
    symlinkSync(join(etc, 'shadow'), join(config.configDir, 'app.tmpl'));
    const error = await startRefused(config);
    expect(error.code).toBe('TARGET_INVALID');
    expect(error.message).toContain('system.ini [target:app] template: ');
    expect(error.message).toContain(reason());
    expect(error.message).not.toContain('SECRET');
  });

  it('when a template is swapped for a link to a file outside after start, then the render is refused and the secret never reaches the output, the answer or the status', async () => {
    ch = await startConfhub({
      systemIni: target('format = template\ntemplate = app.tmpl\noutput = services/app.conf\n'),
      configExtra: '\n[extra]\nmode = first\n',
      files: { 'app.tmpl': 'mode = {{ extra.mode }}\n' },
    });
    await eventually('confhub is ready', async () => (await fetch(`${ch!.url}/readyz`)).status === 200);
    const output = join(ch.config.dataDir, 'services', 'app.conf');
    expect(readFileSync(output, 'utf8')).toBe('mode = first\n');
    const tmpl = join(ch.config.configDir, 'app.tmpl');
    rmSync(tmpl);
    symlinkSync(join(etc, 'shadow'), tmpl);
    const res = await ch.api('/api/v1/settings/extra?key=mode&value=second&wait=true', { method: 'PUT' });
    const text = await res.text();
    expect(text).not.toContain('SECRET');
    const body = JSON.parse(text) as { sync: { targets: { state: string; error: { code: string; details: string } | null }[] } };
    expect(body.sync.targets[0]).toMatchObject({
      state: 'failed',
      error: { code: 'RENDER_FAILED', details: expect.stringContaining(`the template ${tmpl} (which leads to ${etc}/shadow) is outside the template roots`) },
    });
    expect(readFileSync(output, 'utf8')).toBe('mode = first\n');
    expect(await (await ch.api('/api/v1/sync/status')).text()).not.toContain('SECRET');
  });
});
