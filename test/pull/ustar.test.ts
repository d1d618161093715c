import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bundleArchive, manifestOf, sha256Hex } from '../../src/pull/bundle.js';
import { ustar } from '../../src/pull/ustar.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function temp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'confhub-ustar-'));
  dirs.push(dir);
  return dir;
}

const deep = `${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(50)}/file with space.conf`;
const files = [
  { path: 'app.ini', mode: 0o640, content: Buffer.from('[server]\nport = 3000\n') },
  { path: 'conf/sub/app.json', mode: 0o600, content: Buffer.from('{"a": "ü €"}\n') },
  { path: 'empty', mode: 0o644, content: Buffer.alloc(0) },
  // Exactly one block, then one byte over: the padding arithmetic.
  { path: 'block', mode: 0o644, content: Buffer.alloc(512, 0x41) },
  { path: 'block+1', mode: 0o755, content: Buffer.alloc(513, 0x42) },
  { path: deep, mode: 0o600, content: Buffer.from('deep\n') },
];

describe('the ustar writer', () => {
  it.each([
    ['GNU tar', ['tar', '-xf']],
    ['busybox tar', ['busybox', 'tar', '-xf']],
  ])('when %s extracts a bundle, then every file has its bytes and mode, and MANIFEST and REVISION say them', (_name, command) => {
    const dir = temp();
    const archive = bundleArchive({ files, revision: 'abc123', mtime: 0 });
    writeFileSync(join(dir, 'b.tar'), archive);
    execFileSync(command[0]!, [...command.slice(1), join(dir, 'b.tar'), '-C', dir], { stdio: 'pipe' });
    for (const file of files) {
      const path = join(dir, 'files', file.path);
      expect(readFileSync(path)).toEqual(file.content);
      expect(statSync(path).mode & 0o7777).toBe(file.mode);
    }
    expect(readFileSync(join(dir, 'REVISION'), 'utf8')).toBe('abc123\n');
    const manifest = readFileSync(join(dir, 'MANIFEST'), 'utf8');
    expect(manifest).toBe(manifestOf(files));
    expect(manifest.split('\n')[0]).toBe(`${sha256Hex(files[0]!.content)} 0640 app.ini`);
    expect(manifest).toContain(` 0600 ${deep}\n`);
  });

  it('when GNU tar lists an archive, then it finds no error and the entries are in order, directories before their files', () => {
    const dir = temp();
    writeFileSync(join(dir, 'b.tar'), bundleArchive({ files: files.slice(0, 2), revision: 'r', mtime: 1_700_000_000 }));
    const listing = execFileSync('tar', ['-tvf', join(dir, 'b.tar')], { encoding: 'utf8' });
    expect(listing.split('\n').map((line) => line.split(/\s+/).pop())).toEqual([
      'MANIFEST',
      'REVISION',
      'files/',
      'files/conf/',
      'files/conf/sub/',
      'files/app.ini',
      'files/conf/sub/app.json',
      '',
    ]);
    expect(listing).toContain('root/root');
    expect(listing).toContain('2023-11-14');
  });

  it('when a file has setuid, setgid or sticky bits (read from disk), then the bundle carries its permission bits only, which the init script accepts', () => {
    expect(manifestOf([{ path: 'x', mode: 0o7755, content: Buffer.from('x') }])).toBe(`${sha256Hex(Buffer.from('x'))} 0755 x\n`);
    const dir = temp();
    writeFileSync(join(dir, 'b.tar'), bundleArchive({ files: [{ path: 'x', mode: 0o4755, content: Buffer.from('x') }], revision: 'r', mtime: 0 }));
    execFileSync('tar', ['-xf', join(dir, 'b.tar'), '-C', dir]);
    expect(statSync(join(dir, 'files', 'x')).mode & 0o7777).toBe(0o755);
  });

  it('when a path cannot fit ustar (a name over 100 bytes after its last fitting directory), then the archive is refused naming it', () => {
    expect(() => ustar([{ path: `dir/${'n'.repeat(101)}`, mode: 0o600, content: Buffer.from('x') }], { mtime: 0 })).toThrow(
      expect.objectContaining({ code: 'RENDER_FAILED', details: expect.stringMatching(/^the path dir\/n+ is too long for a tar archive/) }),
    );
  });
});
