/**
 * Writes one rendered file into a service volume, only when its bytes or mode changed.
 *
 * - `rename`: atomic replacement (temp file in the same directory, fsync, chmod, rename, fsync
 *   dir); readers see the old or the new file, never a mix.
 * - `inplace`: rewrites the existing inode (write, truncate, fsync). A single-file bind mount
 *   pins the inode the container sees, so a rename would leave the container on the old file.
 * - `auto`: `inplace` when the file is a mount point in this process's view (its device differs
 *   from its directory's), else `rename`, falling back to `inplace` when the rename is refused
 *   with EBUSY or EXDEV. The mode actually used is reported.
 *
 * The previous content is kept so a failed reload can put it back.
 */
import { constants, type Stats } from 'node:fs';
import { lstat, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AppError } from '../core/errors.js';
import { stageFile, type StagedFile } from '../fs/atomic-write.js';
import type { WriteMode } from '../targets/target-spec.js';
import type { UsedWriteMode } from '../targets/outcome.js';

/** What was on disk before a write: enough to restore it exactly. */
export type PreviousFile = { readonly exists: false } | { readonly exists: true; readonly content: Buffer; readonly mode: number };

/**
 * What is on disk now. Output files live in volumes services can write, so a service could put a
 * symlink there to make confhub (often root) write elsewhere: anything but a regular file is refused.
 */
export async function readPrevious(path: string): Promise<PreviousFile> {
  let info: Stats;
  try {
    info = await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { exists: false };
    throw error;
  }
  if (!info.isFile()) {
    throw new AppError('WRITE_FAILED', {
      details: `${path} is ${info.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}; confhub does not write through it`,
    });
  }
  return { exists: true, content: await readFile(path), mode: info.mode & 0o7777 };
}

/** True when the bytes or the mode on disk differ from what should be there. */
export function differs(previous: PreviousFile, content: Buffer, mode: number): boolean {
  return !previous.exists || previous.mode !== mode || !previous.content.equals(content);
}

async function isMountPoint(path: string): Promise<boolean> {
  try {
    const [file, dir] = await Promise.all([lstat(path), stat(dirname(path))]);
    return file.dev !== dir.dev;
  } catch {
    return false;
  }
}

async function writeInPlace(path: string, content: Buffer, mode: number): Promise<void> {
  // O_CREAT without O_TRUNC: the inode is kept; truncating after the write keeps the window in
  // which a reader sees a short file as small as it can be.
  const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW, mode);
  try {
    await handle.write(content, 0, content.length, 0);
    await handle.truncate(content.length);
    await handle.chmod(mode);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export interface StageTargetInput {
  path: string;
  content: Buffer;
  mode: number;
  writeMode: WriteMode;
}

/**
 * A file ready to be put in place: for rename writes the staged temp file (which a check
 * command can read), for in-place writes the content waiting in memory.
 */
export interface StagedTarget {
  /** Path a check command should read. */
  readonly checkPath: string;
  commit(): Promise<UsedWriteMode>;
  discard(): Promise<void>;
}

export async function stageTarget({ path, content, mode, writeMode }: StageTargetInput): Promise<StagedTarget> {
  await mkdir(dirname(path), { recursive: true });
  const inplace = writeMode === 'inplace' || (writeMode === 'auto' && (await isMountPoint(path)));
  // Even an in-place write is checked through a staged copy, so the live file is untouched until the check passed.
  const staged: StagedFile = await stageFile(path, content, { mode });
  return {
    checkPath: staged.tempPath,
    async commit() {
      if (inplace) {
        await staged.discard();
        await writeInPlace(path, content, mode);
        return 'inplace';
      }
      try {
        await staged.commit();
        return 'rename';
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (writeMode === 'auto' && (code === 'EBUSY' || code === 'EXDEV')) {
          await writeInPlace(path, content, mode);
          return 'inplace';
        }
        throw error;
      }
    },
    discard: () => staged.discard(),
  };
}

/** Puts the previous content back (or removes a file that did not exist), with the same write mode. */
export async function restorePrevious(path: string, previous: PreviousFile, usedMode: UsedWriteMode): Promise<void> {
  if (!previous.exists) {
    await unlink(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    return;
  }
  if (usedMode === 'inplace') {
    await writeInPlace(path, previous.content, previous.mode);
    return;
  }
  const staged = await stageFile(path, previous.content, { mode: previous.mode });
  await staged.commit();
}
