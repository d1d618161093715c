/** `confhub edit`: a private copy in an editor, validated on save, applied through the store. */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseIni } from '../../src/ini/document.js';
import { editConfig, editorCommand } from '../../src/settings/edit-session.js';
import { CLI } from '../support/confhub-process.js';
import { createHarness, type Harness } from '../support/harness.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { tempDirs } from '../support/temp-dirs.js';

const execute = promisify(execFile);
const tempDir = tempDirs('confhub-edit-');
const actor = { type: 'system', id: 'cli' } as const;

let h: Harness;
beforeEach(async () => {
  h = await createHarness();
});
afterEach(async () => {
  await h.close();
});

/** An editor that applies each function in turn to the file, one per session round. */
function scripted(...steps: ((text: string) => string)[]) {
  const seen: string[] = [];
  return {
    seen,
    runEditor: async (file: string): Promise<number> => {
      const text = readFileSync(file, 'utf8');
      seen.push(text);
      writeFileSync(file, steps[seen.length - 1]!(text));
      return 0;
    },
  };
}

const portOf = (text: string, section = 'cockpit', key = 'port') => parseIni(text).byName.get(section)?.byKey.get(key)?.value;

describe('confhub edit', () => {
  it('when a value and a comment are changed, then both are saved as typed and the audit names the edit', async () => {
    const editor = scripted((t) => t.replace('[cockpit]\n', '[cockpit]\n# reached through the proxy\n').replace(/^port = .*$/m, 'port = 9393'));
    const outcome = await editConfig({ store: h.settings, actor, runEditor: editor.runEditor, again: async () => false });
    expect(outcome.kind).toBe('applied');
    expect(h.readConfig()).toContain('[cockpit]\n# reached through the proxy\nport = 9393\n');
    const rows = h.audit.query({ limit: 10 }).filter((r) => r.action === 'settings.edit');
    expect(rows.map((r) => [r.section, r.key, r.newValue, r.actor.id])).toEqual([['cockpit', 'port', '9393', 'cli']]);
  });

  it('when the copy is not valid, then nothing is written, the editor gets it back with the reasons on top, and the fixed copy is saved without them', async () => {
    const before = h.readConfig();
    const asked: string[][] = [];
    const editor = scripted(
      (t) => t.replace(/^port = .*$/m, 'port = not-a-port'),
      (t) => t.replace('port = not-a-port', 'port = 9494'),
    );
    const outcome = await editConfig({
      store: h.settings,
      actor,
      runEditor: async (file) => {
        if (editor.seen.length === 1) expect(h.readConfig()).toBe(before);
        return editor.runEditor(file);
      },
      again: async (problems) => {
        asked.push([...problems]);
        return true;
      },
    });
    expect(outcome.kind).toBe('applied');
    expect(asked).toHaveLength(1);
    expect(asked[0]!.join(' ')).toContain('cockpit.port');
    expect(editor.seen[1]).toMatch(/^# confhub edit: .*cockpit\.port/);
    expect(h.readConfig()).not.toContain('# confhub edit:');
    expect(portOf(h.readConfig())).toBe('9494');
  });

  it('when a refused copy is given up, or the editor fails, or nothing changed, then config.ini is byte for byte as it was', async () => {
    const before = h.readConfig();
    const broken = scripted((t) => `${t}[cockpit]\nport = 1\n`);
    expect(await editConfig({ store: h.settings, actor, runEditor: broken.runEditor, again: async () => false })).toEqual({ kind: 'abandoned' });
    await expect(editConfig({ store: h.settings, actor, runEditor: async () => 1, again: async () => false })).rejects.toMatchObject({
      details: expect.stringContaining('exited with 1'),
    });
    expect(await editConfig({ store: h.settings, actor, runEditor: scripted((t) => t).runEditor, again: async () => false })).toEqual({ kind: 'unchanged' });
    expect(h.readConfig()).toBe(before);
  });

  it('when the publicly known Websoft9 key is typed as the API key, then the copy is refused naming api_key.key', async () => {
    const asked: string[] = [];
    const editor = scripted((t) => t.replace(/^key = .*$/m, 'key = 9e66918137d882c6ebdc1eccb0866e25172c5f8fa2101458a8ce9b044e4c7e5e'));
    await editConfig({
      store: h.settings,
      actor,
      runEditor: editor.runEditor,
      again: async (p) => {
        asked.push(...p);
        return false;
      },
    });
    expect(asked.join(' ')).toContain('api_key.key');
    expect(h.readConfig()).not.toContain('9e66918137d882c6');
  });

  it('when an API write lands while the editor is open, then both are kept, merged key by key onto the newer file, and on a key both changed the edit (saved last) wins', async () => {
    const editor = scripted((t) => t.replace(/^port = .*$/m, 'port = 9595'));
    const outcome = await editConfig({
      store: h.settings,
      actor,
      runEditor: async (file) => {
        await h.settings.update({
          changes: [
            { section: 'console', key: 'port', value: '9181' },
            { section: 'cockpit', key: 'port', value: '9182' },
          ],
          actor: { type: 'system', id: 'test' },
        });
        return editor.runEditor(file);
      },
      again: async () => false,
    });
    expect(outcome.kind).toBe('applied');
    expect(portOf(h.readConfig())).toBe('9595');
    expect(portOf(h.readConfig(), 'console')).toBe('9181');
  });

  it('when VISUAL or EDITOR name a command with arguments, then it is split on spaces and run without a shell; vi is the default', () => {
    expect(editorCommand({ VISUAL: 'code --wait', EDITOR: 'nano' })).toEqual(['code', '--wait']);
    expect(editorCommand({ EDITOR: ' nano ' })).toEqual(['nano']);
    expect(editorCommand({})).toEqual(['vi']);
  });
});

describe('confhub edit as an admin runs it', () => {
  it('when the editor saves a valid change, then the command exits 0 and says what changed; a refused copy without a terminal exits 1 and changes nothing', async () => {
    const dir = tempDir();
    const good = join(dir, 'good-editor');
    writeFileSync(good, '#!/bin/bash\nsed -i "0,/^port = .*/s//port = 9696/" "$1"\n');
    const bad = join(dir, 'bad-editor');
    writeFileSync(bad, '#!/bin/bash\nsed -i "0,/^port = .*/s//port = nope/" "$1"\n');
    chmodSync(good, 0o755);
    chmodSync(bad, 0o755);
    const env = { ...process.env, CONFHUB_DATA_DIR: h.config.dataDir, VISUAL: '', EDITOR: good };
    // Beside a running confhub, as an admin would: the store of the CLI and the server's share the file.
    const saved = await execute(process.execPath, [...CLI, 'edit'], { env });
    expect(saved.stdout).toContain('cockpit.port changed');
    expect(portOf(readFileSync(h.config.configPath, 'utf8'))).toBe('9696');
    const before = readFileSync(h.config.configPath, 'utf8');
    const refused = await execute(process.execPath, [...CLI, 'edit'], { env: { ...env, EDITOR: bad } }).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => error,
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('cockpit.port');
    expect(readFileSync(h.config.configPath, 'utf8')).toBe(before);
  }, 30_000);
});
