/** The three-way merge that carries a replaced hand edit (or our own replaced writes) back. */
import { renameSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { applyIniChanges, parseIni } from '../../src/ini/document.js';
import { mergeHandEdit } from '../../src/settings/hand-edit-merge.js';
import { createHarness, type Harness } from '../support/harness.js';

const portOf = (text: string, section: string) => parseIni(text).byName.get(section)?.byKey.get('port')?.value;

const ancestor = parseIni('# admin notes\n[a]\nx = 1\ny = 2\nz = 3\n');

describe('mergeHandEdit', () => {
  it('when the edit set, added and removed keys the write left alone, then all three are carried onto the current file', () => {
    const edited = parseIni('# admin notes\n[a]\nx = 1\ny = 20\nw = 4\n[b]\nv = 5\n');
    const current = parseIni('# admin notes\n[a]\nx = 10\ny = 2\nz = 3\n');
    const merged = mergeHandEdit({ ancestor, edited, current });
    expect(merged.superseded).toEqual([]);
    expect(merged.layoutDropped).toBe(false);
    expect(applyIniChanges(current, merged.changes)).toBe('# admin notes\n[a]\nx = 10\ny = 20\nw = 4\n\n[b]\nv = 5\n');
  });

  it('when the write (which came later) changed the same key, then its value stays and the key is reported superseded', () => {
    const merged = mergeHandEdit({
      ancestor,
      edited: parseIni('# admin notes\n[a]\nx = 5\ny = 2\nz = 3\n'),
      current: parseIni('# admin notes\n[a]\nx = 10\ny = 2\nz = 3\n'),
    });
    expect(merged.changes).toEqual([]);
    expect(merged.superseded).toEqual(['a.x']);
  });

  it('when the edit only removed a key, then applying the merge removes it (nothing else moves)', () => {
    const merged = mergeHandEdit({ ancestor, edited: parseIni('# admin notes\n[a]\nx = 1\nz = 3\n'), current: ancestor });
    expect(merged.changes).toEqual([{ section: 'a', key: 'y', value: '', remove: true }]);
    expect(applyIniChanges(ancestor, merged.changes)).toBe('# admin notes\n[a]\nx = 1\nz = 3\n');
  });

  it('when removals are off (an edit read from a file someone may still be writing), then keys it lacks are kept and named', () => {
    const merged = mergeHandEdit({ ancestor, edited: parseIni('# admin notes\n[a]\nx = 1\n'), current: ancestor, removals: false });
    expect(merged.changes).toEqual([]);
    expect(merged.kept).toEqual(['a.y', 'a.z']);
  });

  it('when the edit changed only a comment, then nothing is carried and the layout is reported dropped', () => {
    const merged = mergeHandEdit({ ancestor, edited: parseIni('# other notes\n[a]\nx = 1\ny = 2\nz = 3\n'), current: ancestor });
    expect(merged.changes).toEqual([]);
    expect(merged.layoutDropped).toBe(true);
  });
});

describe('a copy saved from before an API write (sed -i that read the file before the write)', () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it("when it replaces the write, then the write is carried onto it, the copy's own edit is kept, and the audit says so", async () => {
    h = await createHarness();
    const before = h.readConfig();
    await h.settings.update({ changes: [{ section: 'cockpit', key: 'port', value: '9191' }], actor: { type: 'system', id: 'test' } });
    // The editor's copy: the file as it was before the write, plus its own new line.
    const stale = `${before}hand_added = yes\n`;
    writeFileSync(`${h.config.configPath}.sed`, stale);
    renameSync(`${h.config.configPath}.sed`, h.config.configPath);
    let text = h.readConfig();
    for (let i = 0; i < 50 && !/port = 9191/.test(text); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      await h.settings.idle();
      text = h.readConfig();
    }
    const doc = parseIni(text);
    expect(doc.byName.get('cockpit')?.byKey.get('port')?.value).toBe('9191');
    expect(doc.sections.at(-1)?.byKey.get('hand_added')?.value).toBe('yes');
    const rows = h.audit.query({ limit: 50 }).filter((e) => e.action === 'settings.reapply');
    expect(rows.map((r) => [r.section, r.key, r.newValue, r.actor.id])).toEqual([['cockpit', 'port', '9191', 'test']]);
  });

  it("when the copy also changed one of the written keys, then its value there stays and the write's other keys are carried onto it", async () => {
    h = await createHarness();
    const before = h.readConfig();
    await h.settings.update({
      changes: [
        { section: 'cockpit', key: 'port', value: '20002' },
        { section: 'console', key: 'port', value: '20003' },
      ],
      actor: { type: 'system', id: 'test' },
    });
    const stale = before.replace(/^\[cockpit\]\nport = .*$/m, '[cockpit]\nport = 20009');
    expect(stale).not.toBe(before);
    writeFileSync(`${h.config.configPath}.sed`, stale);
    renameSync(`${h.config.configPath}.sed`, h.config.configPath);
    let text = h.readConfig();
    for (let i = 0; i < 50 && !/port = 20003/.test(text); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      await h.settings.idle();
      text = h.readConfig();
    }
    expect(portOf(text, 'cockpit')).toBe('20009');
    expect(portOf(text, 'console')).toBe('20003');
  });
});
