import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../src/core/errors.js';
import { createTargetWriter } from '../../src/sync/target-writer.js';

let dir: string;
const mounts: string[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'confhub-writer-'));
});
afterEach(() => {
  for (const target of mounts.splice(0)) execFileSync('umount', [target]);
  rmSync(dir, { recursive: true, force: true });
});

const writer = () => createTargetWriter({ rules: { outputRoots: [dir], own: [] } });
const readPrevious = (path: string) => writer().readPrevious(path);
const restorePrevious = (...args: Parameters<ReturnType<typeof writer>['restore']>) => writer().restore(...args);
const stageTarget = (input: Parameters<ReturnType<typeof writer>['stage']>[0]) => writer().stage(input);

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

describe('target writer: outputs stay under the output roots', () => {
  /** A directory outside the roots, standing in for /etc. */
  let etc: string;
  let root: string;
  beforeEach(() => {
    etc = mkdtempSync(join(tmpdir(), 'confhub-etc-'));
    writeFileSync(join(etc, 'shadow'), 'root:SECRET-HASH:19000::::::\n');
    root = join(dir, 'data');
    mkdirSync(join(root, 'services'), { recursive: true });
  });
  afterEach(() => rmSync(etc, { recursive: true, force: true }));

  const contained = () => createTargetWriter({ rules: { outputRoots: [root], own: [{ path: join(root, 'master.key'), what: 'the master key' }] } });
  const refusal = async (promise: Promise<unknown>): Promise<AppError> => {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AppError);
    return error as AppError;
  };

  it('when the output directory is a link to a directory outside the roots, then nothing is written, read or removed there and the reason is named', async () => {
    symlinkSync(etc, join(root, 'services', 'conf'));
    const output = join(root, 'services', 'conf', 'app.conf');
    const error = await refusal(contained().stage({ path: output, content: Buffer.from('evil = 1\n'), mode: 0o644, writeMode: 'auto' }));
    expect(error.code).toBe('WRITE_FAILED');
    expect(error.details).toBe(
      `${output} (which leads to ${join(etc, 'app.conf')}) is outside the output roots (${root}) that [sync] output_roots allows; confhub does not write there`,
    );
    expect(readdirSync(etc)).toEqual(['shadow']);
    // Nor is a file there read (a plan or a restore would show or overwrite it), nor removed.
    const read = await refusal(contained().readPrevious(join(root, 'services', 'conf', 'shadow')));
    expect(read.details).not.toContain('SECRET');
    await refusal(contained().restore(join(root, 'services', 'conf', 'shadow'), { exists: false }, 'rename'));
    await refusal(contained().restore(join(root, 'services', 'conf', 'shadow'), { exists: true, content: Buffer.from('x'), mode: 0o600 }, 'inplace'));
    expect(readFileSync(join(etc, 'shadow'), 'utf8')).toBe('root:SECRET-HASH:19000::::::\n');
  });

  it('when missing directories would be made through a link outside the roots, then none is made', async () => {
    symlinkSync(etc, join(root, 'services', 'conf'));
    await refusal(
      contained().stage({ path: join(root, 'services', 'conf', 'new', 'deeper', 'app.conf'), content: Buffer.from('x'), mode: 0o644, writeMode: 'rename' }),
    );
    expect(readdirSync(etc)).toEqual(['shadow']);
  });

  it('when a link stays inside the roots, then the write goes through it', async () => {
    mkdirSync(join(root, 'volumes', 'web'), { recursive: true });
    symlinkSync(join(root, 'volumes', 'web'), join(root, 'services', 'web'));
    const staged = await contained().stage({ path: join(root, 'services', 'web', 'app.conf'), content: Buffer.from('ok\n'), mode: 0o644, writeMode: 'rename' });
    // A check command runs in another process: it gets the real path of the staged file.
    expect(staged.checkPath.startsWith(`${join(root, 'volumes', 'web')}/`)).toBe(true);
    expect(readFileSync(staged.checkPath, 'utf8')).toBe('ok\n');
    expect(await staged.commit()).toBe('rename');
    expect(readFileSync(join(root, 'volumes', 'web', 'app.conf'), 'utf8')).toBe('ok\n');
  });

  it('when a link inside the roots leads onto one of confhub own files, then it is refused', async () => {
    writeFileSync(join(root, 'master.key'), 'KEY');
    symlinkSync(root, join(root, 'services', 'up'));
    const error = await refusal(
      contained().stage({ path: join(root, 'services', 'up', 'master.key'), content: Buffer.from('x'), mode: 0o600, writeMode: 'rename' }),
    );
    expect(error.details).toContain(`is the master key, which confhub keeps for itself`);
    expect(readFileSync(join(root, 'master.key'), 'utf8')).toBe('KEY');
  });

  it('when the checked directory is swapped for a link after staging, then the commit still lands in the directory that was checked', async () => {
    mkdirSync(join(root, 'services', 'conf'));
    const staged = await contained().stage({
      path: join(root, 'services', 'conf', 'app.conf'),
      content: Buffer.from('new\n'),
      mode: 0o644,
      writeMode: 'rename',
    });
    renameSync(join(root, 'services', 'conf'), join(root, 'services', 'conf.moved'));
    symlinkSync(etc, join(root, 'services', 'conf'));
    expect(await staged.commit()).toBe('rename');
    expect(readdirSync(etc)).toEqual(['shadow']);
    expect(readFileSync(join(root, 'services', 'conf.moved', 'app.conf'), 'utf8')).toBe('new\n');
  });
});
