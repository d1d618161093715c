import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readPrevious, restorePrevious, stageTarget } from '../../src/sync/target-writer.js';

let dir: string;
const mounts: string[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'confhub-writer-'));
});
afterEach(() => {
  for (const target of mounts.splice(0)) execFileSync('umount', [target]);
  rmSync(dir, { recursive: true, force: true });
});

async function write(path: string, text: string, writeMode: 'rename' | 'inplace' | 'auto', mode = 0o640) {
  const staged = await stageTarget({ path, content: Buffer.from(text), mode, writeMode });
  expect(readFileSync(staged.checkPath, 'utf8')).toBe(text);
  return staged.commit();
}

describe('target writer', () => {
  it('when writing with rename, then the inode changes and the mode is exact', async () => {
    const path = join(dir, 'app.ini');
    writeFileSync(path, 'old');
    const inode = statSync(path).ino;
    expect(await write(path, 'new', 'rename')).toBe('rename');
    expect(readFileSync(path, 'utf8')).toBe('new');
    expect(statSync(path).ino).not.toBe(inode);
    expect(statSync(path).mode & 0o777).toBe(0o640);
    expect(readdirSync(dir)).toEqual(['app.ini']);
  });

  it('when writing in place, then the inode is kept, a longer old content is truncated and no temp file stays', async () => {
    const path = join(dir, 'app.ini');
    writeFileSync(path, 'a much longer old content');
    const inode = statSync(path).ino;
    expect(await write(path, 'short', 'inplace')).toBe('inplace');
    expect(readFileSync(path, 'utf8')).toBe('short');
    expect(statSync(path).ino).toBe(inode);
    expect(readdirSync(dir)).toEqual(['app.ini']);
  });

  it('when the output directory does not exist yet, then it is created', async () => {
    const path = join(dir, 'deep', 'er', 'app.ini');
    expect(await write(path, 'x', 'auto')).toBe('rename');
    expect(readFileSync(path, 'utf8')).toBe('x');
  });

  it('when a staged write is discarded, then the live file is untouched and the temp file is gone', async () => {
    const path = join(dir, 'app.ini');
    writeFileSync(path, 'live');
    const staged = await stageTarget({ path, content: Buffer.from('next'), mode: 0o600, writeMode: 'rename' });
    await staged.discard();
    expect(readFileSync(path, 'utf8')).toBe('live');
    expect(readdirSync(dir)).toEqual(['app.ini']);
  });

  it('when the file is a single-file bind mount, then auto writes in place and the mount source sees the content', async () => {
    const source = join(dir, 'source.ini');
    const mounted = join(dir, 'mounted', 'app.ini');
    writeFileSync(source, 'old');
    execFileSync('mkdir', ['-p', join(dir, 'mounted')]);
    writeFileSync(mounted, '');
    execFileSync('mount', ['--bind', source, mounted]);
    mounts.push(mounted);
    expect(await write(mounted, 'through the mount', 'auto')).toBe('inplace');
    expect(readFileSync(source, 'utf8')).toBe('through the mount');
  });

  it('when the previous file is restored, then bytes and mode are back, and a file that did not exist is removed', async () => {
    const path = join(dir, 'app.ini');
    writeFileSync(path, 'before', { mode: 0o644 });
    const previous = await readPrevious(path);
    const used = await write(path, 'after', 'rename', 0o600);
    await restorePrevious(path, previous, used);
    expect(readFileSync(path, 'utf8')).toBe('before');
    expect(statSync(path).mode & 0o777).toBe(0o644);

    const fresh = join(dir, 'fresh.ini');
    const none = await readPrevious(fresh);
    await restorePrevious(fresh, none, await write(fresh, 'x', 'inplace'));
    expect(readdirSync(dir)).toEqual(['app.ini']);
  });
});
