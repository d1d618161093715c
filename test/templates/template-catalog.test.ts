import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createNodeTemplateFileAccess, loadTemplates, MAX_TEMPLATE_BYTES, MAX_TEMPLATES, SHIPPED_TEMPLATES_DIR } from '../../src/templates/template-catalog.js';
import { tempDirs } from '../support/temp-dirs.js';

const newDir = tempDirs('confhub-templates-');

function templateText(title: string): string {
  return `[template]\ntitle = ${title}\ndescription = d\n[variable:port]\ntype = port\ndefault = 9000\ndescription = p\n[console]\nport = {{ port }}\n`;
}

/** A shipped and a custom directory under one temp dir; the custom one is not made. */
function dirs(shipped: Record<string, string> = {}): { shippedDir: string; customDir: string } {
  const root = newDir();
  const shippedDir = join(root, 'shipped');
  mkdirSync(shippedDir);
  for (const [file, text] of Object.entries(shipped)) writeFileSync(join(shippedDir, file), text);
  return { shippedDir, customDir: join(root, 'custom') };
}

function summary(result: ReturnType<typeof loadTemplates>): { templates: string[]; problems: string[] } {
  return {
    templates: result.templates.map((t) => `${t.name}:${t.origin}:${t.title}`),
    problems: result.problems.map((p) => `${p.file.slice(p.file.lastIndexOf('/') + 1)}: ${p.details}`),
  };
}

describe('loading the templates on offer', () => {
  it('when confhub ships its templates, then all three are read from config/templates and none has a problem', () => {
    const result = loadTemplates({ shippedDir: SHIPPED_TEMPLATES_DIR, customDir: join(newDir(), 'none') });
    expect(result.problems).toEqual([]);
    expect(result.templates.map((t) => [t.name, t.origin])).toEqual([
      ['local-only', 'shipped'],
      ['public-https', 'shipped'],
      ['registry-mirror', 'shipped'],
    ]);
  });

  it('when the custom directory is missing, then that is no problem; a missing shipped directory is one', () => {
    const { shippedDir, customDir } = dirs({ 'a.ini': templateText('A') });
    expect(summary(loadTemplates({ shippedDir, customDir }))).toEqual({ templates: ['a:shipped:A'], problems: [] });
    expect(summary(loadTemplates({ shippedDir: customDir, customDir: shippedDir }))).toEqual({
      templates: ['a:custom:A'],
      problems: ['custom: the shipped template directory is missing'],
    });
  });

  it('when a custom template has the name of a shipped one, then it replaces it and says it is custom', () => {
    const { shippedDir, customDir } = dirs({ 'a.ini': templateText('Shipped A'), 'b.ini': templateText('Shipped B') });
    mkdirSync(customDir);
    writeFileSync(join(customDir, 'b.ini'), templateText('My B'));
    writeFileSync(join(customDir, 'c.ini'), templateText('My C'));
    expect(summary(loadTemplates({ shippedDir, customDir }))).toEqual({ templates: ['a:shipped:Shipped A', 'b:custom:My B', 'c:custom:My C'], problems: [] });
  });

  it('when files have bad names, are not templates or are invalid, then each is a problem and the others are still offered', () => {
    const { shippedDir, customDir } = dirs();
    mkdirSync(customDir);
    writeFileSync(join(customDir, 'Bad_Name.ini'), templateText('x'));
    writeFileSync(join(customDir, 'notes.txt'), 'not a template');
    writeFileSync(join(customDir, 'good.ini~'), 'an editor backup');
    writeFileSync(join(customDir, 'broken.ini'), '[template]\ntitle = t\n');
    writeFileSync(join(customDir, 'latin1.ini'), Buffer.from('[template]\ntitle = caf\xe9\n', 'latin1'));
    mkdirSync(join(customDir, 'folder.ini'));
    writeFileSync(join(customDir, 'good.ini'), templateText('Good'));
    expect(summary(loadTemplates({ shippedDir, customDir }))).toEqual({
      templates: ['good:custom:Good'],
      problems: [
        'Bad_Name.ini: not read: the template name "Bad_Name" must be 1-64 lowercase letters, digits or "-", starting with a letter or digit',
        'broken.ini: broken.ini: the template sets no config.ini section; broken.ini line 1: [template] needs a description',
        'folder.ini: not read: a directory, not a regular file',
        'latin1.ini: not read: the file is not UTF-8',
      ],
    });
  });

  it('when a custom entry is a symbolic link, then it is not read, and a shipped template of its name is withheld too', () => {
    const { shippedDir, customDir } = dirs({ 'a.ini': templateText('Shipped A') });
    mkdirSync(customDir);
    const elsewhere = join(newDir(), 'elsewhere.ini');
    writeFileSync(elsewhere, templateText('Linked'));
    symlinkSync(elsewhere, join(customDir, 'a.ini'));
    symlinkSync(elsewhere, join(customDir, 'b.ini'));
    expect(summary(loadTemplates({ shippedDir, customDir }))).toEqual({
      templates: [],
      problems: [
        'a.ini: not read: a symbolic link, not a regular file',
        'b.ini: not read: a symbolic link, not a regular file',
        'a.ini: the shipped template a is not offered either: this file replaces it',
      ],
    });
  });

  it('when an entry is listed as a symbolic link or a directory, then it is not opened at all', () => {
    const { shippedDir, customDir } = dirs();
    mkdirSync(customDir);
    symlinkSync(join(shippedDir, 'x.ini'), join(customDir, 'a.ini'));
    mkdirSync(join(customDir, 'b.ini'));
    const opened: string[] = [];
    const readFile = (path: string): Uint8Array => {
      opened.push(path);
      return new TextEncoder().encode(templateText('A'));
    };
    const result = loadTemplates({ shippedDir, customDir, readFile });
    expect(opened).toEqual([]);
    expect(summary(result).problems).toEqual(['a.ini: not read: a symbolic link, not a regular file', 'b.ini: not read: a directory, not a regular file']);
  });

  it('when a file is swapped for a symbolic link after the listing, then reading it does not follow the link', () => {
    const { shippedDir, customDir } = dirs();
    mkdirSync(customDir);
    const elsewhere = join(newDir(), 'elsewhere.ini');
    writeFileSync(elsewhere, templateText('Linked'));
    symlinkSync(elsewhere, join(customDir, 'a.ini'));
    const listedAsFile = () => [{ name: 'a.ini', type: 'file' as const }];
    expect(summary(loadTemplates({ shippedDir, customDir, readDir: (dir) => (dir === customDir ? listedAsFile() : []) }))).toEqual({
      templates: [],
      problems: ['a.ini: not read: a symbolic link, not a regular file'],
    });
  });

  it('when the custom directory itself is a symbolic link, then it is not read', () => {
    const { shippedDir, customDir } = dirs();
    const real = newDir();
    writeFileSync(join(real, 'a.ini'), templateText('A'));
    symlinkSync(real, customDir);
    expect(summary(loadTemplates({ shippedDir, customDir }))).toEqual({
      templates: [],
      problems: ['custom: the template directory cannot be read: it is a symbolic link, not a directory'],
    });
  });

  it('when an entry is a FIFO, then it is refused without opening it', () => {
    const { shippedDir, customDir } = dirs();
    mkdirSync(customDir);
    execFileSync('mkfifo', ['--', join(customDir, 'pipe.ini')]);
    expect(summary(loadTemplates({ shippedDir, customDir })).problems).toEqual(['pipe.ini: not read: a special file, not a regular file']);
  });

  it('when a file is larger than 256 KiB, then it is refused; one of exactly 256 KiB is read', () => {
    const { shippedDir, customDir } = dirs();
    mkdirSync(customDir);
    const base = templateText('Big');
    const padded = (size: number): string => `${base}#${'x'.repeat(size - base.length - 2)}\n`;
    writeFileSync(join(customDir, 'fits.ini'), padded(MAX_TEMPLATE_BYTES));
    writeFileSync(join(customDir, 'large.ini'), padded(MAX_TEMPLATE_BYTES + 1));
    expect(summary(loadTemplates({ shippedDir, customDir }))).toEqual({
      templates: ['fits:custom:Big'],
      problems: ['large.ini: not read: larger than 256 KiB'],
    });
  });

  it('when a directory holds more than 200 template files, then the first 200 by name are read and the rest are one problem', () => {
    const { shippedDir, customDir } = dirs();
    mkdirSync(customDir);
    for (let i = 0; i < MAX_TEMPLATES + 2; i++) writeFileSync(join(customDir, `t${String(i).padStart(3, '0')}.ini`), templateText(`T${i}`));
    const result = loadTemplates({ shippedDir, customDir });
    expect(result.templates).toHaveLength(MAX_TEMPLATES);
    expect(result.templates.at(-1)!.name).toBe('t199');
    expect(summary(result).problems).toEqual(['custom: holds 202 template files; only the first 200 by name are read (2 left out, from t200.ini)']);
  });

  it('when the file access is injected, then loading reads nothing else', () => {
    const files: Record<string, string> = { '/s/a.ini': templateText('A'), '/c/a.ini': templateText('Mine') };
    const result = loadTemplates({
      shippedDir: '/s',
      customDir: '/c',
      readDir: (dir) => Object.keys(files).flatMap((path) => (path.startsWith(`${dir}/`) ? [{ name: path.slice(dir.length + 1), type: 'file' as const }] : [])),
      readFile: (path) => new TextEncoder().encode(files[path]),
    });
    expect(summary(result)).toEqual({ templates: ['a:custom:Mine'], problems: [] });
  });

  it('when the node file access reads a file, then it stops one byte past the limit', () => {
    const dir = newDir();
    writeFileSync(join(dir, 'f'), 'abcdefgh');
    const access = createNodeTemplateFileAccess();
    expect(Buffer.from(access.readFile(join(dir, 'f'), { maxBytes: 3 })).toString()).toBe('abcd');
    expect(Buffer.from(access.readFile(join(dir, 'f'), { maxBytes: 100 })).toString()).toBe('abcdefgh');
    expect(access.readDir(join(dir, 'missing'))).toBeUndefined();
  });
});
