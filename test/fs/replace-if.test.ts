/** replaceIf: the check and the rename in one step, and the replaced file watched for a late write. */
import { appendFileSync, closeSync, existsSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stageFile } from '../../src/fs/atomic-write.js';
import { tempDirs } from '../support/temp-dirs.js';

const tempDir = tempDirs('confhub-replace-');

function fileWith(text: string): string {
  const path = join(tempDir(), 'config.ini');
  writeFileSync(path, text);
  return path;
}

describe('replaceIf', () => {
  it('when the file is not what was read, then nothing is replaced, the temp file is kept for a discard, and the found content is told', async () => {
    const path = fileWith('a = 2\n');
    const staged = await stageFile(path, 'a = 3\n');
    const result = await staged.replaceIf(Buffer.from('a = 1\n'));
    expect(result).toEqual({ installed: false, found: Buffer.from('a = 2\n') });
    expect(readFileSync(path, 'utf8')).toBe('a = 2\n');
    await staged.discard();
    expect(readdirSync(join(path, '..'))).toEqual(['config.ini']);
  });

  it('when the file is replaced, then afterRename runs with the new file in place, before the directory is synced and before anything else of this process runs', async () => {
    const path = fileWith('a = 1\n');
    const staged = await stageFile(path, 'a = 3\n');
    const seen: string[] = [];
    let otherRan = false;
    // A callback queued now runs only after the synchronous part up to the rename is done.
    setImmediate(() => {
      otherRan = true;
    });
    const replacing = staged.replaceIf(Buffer.from('a = 1\n'), {
      afterRename: () => seen.push(`${readFileSync(path, 'utf8').trim()} ${otherRan ? 'late' : 'at once'}`),
    });
    expect(seen).toEqual(['a = 3 at once']);
    const result = await replacing;
    if (result.installed) result.release();
    expect(seen).toEqual(['a = 3 at once']);
  });

  it('when it is, then the new file is in place and what it replaced is told; released, `later` is that file at once', async () => {
    const path = fileWith('a = 1\n');
    const staged = await stageFile(path, 'a = 3\n');
    const result = await staged.replaceIf(Buffer.from('a = 1\n'));
    expect(result.installed).toBe(true);
    if (!result.installed) return;
    expect(result.replaced?.toString()).toBe('a = 1\n');
    expect(readFileSync(path, 'utf8')).toBe('a = 3\n');
    result.release();
    expect((await result.later)?.toString()).toBe('a = 1\n');
  });

  it('when a writer that opened the file before the rename writes after it, then `later` holds that write (it never reached the file in place)', async () => {
    const path = fileWith('a = 1\n');
    const writer = openSync(path, 'a');
    const staged = await stageFile(path, 'a = 3\n');
    const result = await staged.replaceIf(Buffer.from('a = 1\n'), { holdMs: 20 });
    writeSync(writer, 'hand = yes\n');
    closeSync(writer);
    if (!result.installed) throw new Error('not installed');
    expect((await result.later)?.toString()).toBe('a = 1\nhand = yes\n');
    expect(readFileSync(path, 'utf8')).toBe('a = 3\n');
  });

  it('when the watch is hurried (a stop), then the late write is still read, without waiting out the hold', async () => {
    const path = fileWith('a = 1\n');
    const writer = openSync(path, 'a');
    const staged = await stageFile(path, 'a = 3\n');
    // Longer than the test's own timeout: only hurry() lets `later` resolve in time.
    const result = await staged.replaceIf(Buffer.from('a = 1\n'), { holdMs: 60_000 });
    writeSync(writer, 'hand = yes\n');
    closeSync(writer);
    if (!result.installed) throw new Error('not installed');
    result.hurry();
    expect((await result.later)?.toString()).toBe('a = 1\nhand = yes\n');
  });

  it('when the file is missing, then nothing is created', async () => {
    const path = fileWith('a = 1\n');
    const staged = await stageFile(path, 'a = 3\n');
    appendFileSync(path, '');
    const other = join(path, '..', 'gone.ini');
    const gone = await stageFile(other, 'x = 1\n');
    expect(await gone.replaceIf(Buffer.from(''))).toEqual({ installed: false, found: undefined });
    expect(existsSync(other)).toBe(false);
    await gone.discard();
    await staged.discard();
  });
});
