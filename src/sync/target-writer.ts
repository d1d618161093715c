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
 *
 * Every step goes through the output's directory as opened and checked by fs/contained-path.ts:
 * a directory that leads outside the output roots, or onto one of confhub's own files, is
 * refused before anything is read or written there.
 */
import { constants } from 'node:fs';
import { lstat, open, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { AppError } from '../core/errors.js';
import { stageFile, type StagedFile } from '../fs/atomic-write.js';
import { openOutputDir, type OutputDir } from '../fs/contained-path.js';
import type { PathRules } from '../targets/path-rules.js';
import type { WriteMode } from '../targets/target-spec.js';
import type { UsedWriteMode } from '../targets/outcome.js';

/** What was on disk before a write: enough to restore it exactly. */
export type PreviousFile = { readonly exists: false } | { readonly exists: true; readonly content: Buffer; readonly mode: number };

/** True when the bytes or the mode on disk differ from what should be there. */
export function differs(previous: PreviousFile, content: Buffer, mode: number): boolean {
  return !previous.exists || previous.mode !== mode || !previous.content.equals(content);
}

function notRegular(path: string, what: string): AppError {
  return new AppError('WRITE_FAILED', { details: `${path} is ${what}; confhub does not write through it` });
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

export interface TargetWriter {
  /**
   * What is on disk now. Output files live in volumes services can write, so a service could put a
   * symlink there to make confhub (often root) write elsewhere: anything but a regular file is refused.
   */
  readPrevious(path: string): Promise<PreviousFile>;
  stage(input: StageTargetInput): Promise<StagedTarget>;
  /** Puts the previous content back (or removes a file that did not exist), with the same write mode. */
  restore(path: string, previous: PreviousFile, usedMode: UsedWriteMode): Promise<void>;
}

export function createTargetWriter({ rules }: { rules: Pick<PathRules, 'outputRoots' | 'own'> }): TargetWriter {
  async function inDir<T>(input: { path: string; create: boolean }, use: (dir: OutputDir | undefined) => Promise<T>): Promise<T> {
    const dir = await openOutputDir({ output: input.path, rules, create: input.create });
    try {
      return await use(dir);
    } finally {
      await dir?.close();
    }
  }

  return {
    readPrevious: (path) =>
      inDir({ path, create: false }, async (dir): Promise<PreviousFile> => {
        if (!dir) return { exists: false };
        const info = await lstat(dir.file).catch((error: NodeJS.ErrnoException) => {
          if (error.code === 'ENOENT') return undefined;
          throw error;
        });
        if (!info) return { exists: false };
        if (!info.isFile()) throw notRegular(path, info.isSymbolicLink() ? 'a symbolic link' : 'not a regular file');
        // Opened without following a link, and checked again: what is read is what was looked at.
        const handle = await open(dir.file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((error: NodeJS.ErrnoException) => {
          throw error.code === 'ELOOP' ? notRegular(path, 'a symbolic link') : error;
        });
        try {
          const opened = await handle.stat();
          if (!opened.isFile()) throw notRegular(path, 'not a regular file');
          return { exists: true, content: await handle.readFile(), mode: opened.mode & 0o7777 };
        } finally {
          await handle.close();
        }
      }),

    async stage({ path, content, mode, writeMode }) {
      const dir = (await openOutputDir({ output: path, rules, create: true }))!;
      let staged: StagedFile;
      let inplace: boolean;
      try {
        inplace = writeMode === 'inplace' || (writeMode === 'auto' && (await isMountPoint(dir.file)));
        // Even an in-place write is checked through a staged copy, so the live file is untouched until the check passed.
        staged = await stageFile(dir.file, content, { mode });
      } catch (error) {
        await dir.close();
        throw error;
      }
      return {
        checkPath: join(dir.real, basename(staged.tempPath)),
        async commit() {
          try {
            if (inplace) {
              await staged.discard();
              await writeInPlace(dir.file, content, mode);
              return 'inplace';
            }
            try {
              await staged.commit();
              return 'rename';
            } catch (error) {
              const code = (error as NodeJS.ErrnoException).code;
              if (writeMode === 'auto' && (code === 'EBUSY' || code === 'EXDEV')) {
                await writeInPlace(dir.file, content, mode);
                return 'inplace';
              }
              throw error;
            }
          } finally {
            await dir.close();
          }
        },
        async discard() {
          try {
            await staged.discard();
          } finally {
            await dir.close();
          }
        },
      };
    },

    restore: (path, previous, usedMode) =>
      inDir({ path, create: previous.exists }, async (dir) => {
        if (!previous.exists) {
          if (!dir) return;
          await unlink(dir.file).catch((error: NodeJS.ErrnoException) => {
            if (error.code !== 'ENOENT') throw error;
          });
          return;
        }
        if (usedMode === 'inplace') {
          await writeInPlace(dir!.file, previous.content, previous.mode);
          return;
        }
        const staged = await stageFile(dir!.file, previous.content, { mode: previous.mode });
        await staged.commit();
      }),
  };
}
