/**
 * Crash-safe file replacement: a temp file in the same directory (a dot-name ending in
 * `.confhub-tmp`, which no service glob such as *.ini or *.conf matches), written, fsynced and
 * given the final mode, then renamed over the target, then the directory fsynced. A crash at any
 * instant leaves the old file or the new one, never a mix. Staging is separate from committing
 * so a caller can check the staged file (or that nobody changed the target) before the rename.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, readSync, renameSync } from 'node:fs';
import { chown, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export const TEMP_SUFFIX = '.confhub-tmp';

export interface StageOptions {
  /** File mode; default: the target's current mode, or 0600 for a new file. */
  mode?: number;
}

export interface StagedFile {
  readonly tempPath: string;
  readonly mode: number;
  commit(): Promise<void>;
  /**
   * Renames the file into place only if the target still holds `expected`; the check and the
   * rename run back to back in one synchronous step. On `installed`, `replaced` is the replaced
   * file as it is right after the rename (a write into it that landed just before shows there),
   * and `later` the same file `holdMs` later: a writer that opened it before the rename and
   * wrote after wrote there, to a file no longer in place.
   */
  replaceIf(expected: Uint8Array, options?: ReplaceIfOptions): Promise<ReplaceResult>;
  discard(): Promise<void>;
}

export interface ReplaceIfOptions {
  /** How long the replaced file is watched for a late write (ms; default 50). */
  readonly holdMs?: number;
  /** Runs just before the check (the settings store marks the instant for its directory watch). */
  readonly beforeCheck?: () => void;
}

export type ReplaceResult =
  | {
      readonly installed: true;
      readonly replaced: Buffer;
      readonly later: Promise<Buffer>;
      /** Stops watching the replaced file now (`later` then resolves with `replaced`): its descriptor must not outlive its owner. */
      readonly release: () => void;
    }
  | { readonly installed: false; readonly found: Buffer | undefined };

/** The whole file behind `fd`, from its start, whatever the descriptor's position. */
function readAllSync(fd: number): Buffer {
  const chunks: Buffer[] = [];
  let position = 0;
  for (;;) {
    const chunk = Buffer.allocUnsafe(64 * 1024);
    const n = readSync(fd, chunk, 0, chunk.length, position);
    if (n === 0) return Buffer.concat(chunks);
    chunks.push(chunk.subarray(0, n));
    position += n;
  }
}

function openIfPresent(path: string): number | undefined {
  try {
    return openSync(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function unlinkQuietly(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

export async function stageFile(path: string, data: string | Uint8Array, options: StageOptions = {}): Promise<StagedFile> {
  const current = await stat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  const mode = options.mode ?? (current ? current.mode & 0o7777 : 0o600);
  const tempPath = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`);
  const handle = await open(tempPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await handle.writeFile(data);
    // chmod on the handle: the umask must not weaken or tighten the requested mode.
    await handle.chmod(mode);
    if (current && process.getuid?.() === 0 && (current.uid !== 0 || current.gid !== 0)) {
      // Keep the owner a service inside a container expects; only root can, and failure is harmless.
      await chown(tempPath, current.uid, current.gid).catch(() => undefined);
    }
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await unlinkQuietly(tempPath);
    throw error;
  }
  await handle.close();
  let settled = false;
  return {
    tempPath,
    mode,
    async commit() {
      if (settled) throw new Error('staged file already settled');
      settled = true;
      try {
        await rename(tempPath, path);
      } catch (error) {
        await unlinkQuietly(tempPath);
        throw error;
      }
      await fsyncDirectory(dirname(path));
    },
    async replaceIf(expected, { holdMs = 50, beforeCheck }: ReplaceIfOptions = {}) {
      if (settled) throw new Error('staged file already settled');
      beforeCheck?.();
      // Synchronous from the check to the rename: no other callback of this process runs between.
      const fd = openIfPresent(path);
      let found: Buffer | undefined;
      try {
        found = fd === undefined ? undefined : readAllSync(fd);
        if (!found?.equals(expected)) {
          if (fd !== undefined) closeSync(fd);
          return { installed: false, found };
        }
        settled = true;
        renameSync(tempPath, path);
      } catch (error) {
        if (fd !== undefined) closeSync(fd);
        await unlinkQuietly(tempPath);
        throw error;
      }
      let replaced: Buffer;
      try {
        replaced = readAllSync(fd!);
      } catch {
        // The new file is in place: what was checked is the best knowledge of what it replaced.
        replaced = found;
      }
      let finish: (read: boolean) => void = () => undefined;
      const later = new Promise<Buffer>((resolve) => {
        let open = true;
        const timer = setTimeout(() => finish(true), holdMs);
        timer.unref();
        finish = (read) => {
          if (!open) return;
          open = false;
          clearTimeout(timer);
          try {
            resolve(read ? readAllSync(fd!) : replaced);
          } catch {
            resolve(replaced);
          } finally {
            closeSync(fd!);
          }
        };
      });
      await fsyncDirectory(dirname(path));
      return { installed: true, replaced, later, release: () => finish(false) };
    },
    async discard() {
      if (settled) return;
      settled = true;
      await unlinkQuietly(tempPath);
    },
  };
}

export async function writeFileAtomic(path: string, data: string | Uint8Array, options: StageOptions = {}): Promise<void> {
  const staged = await stageFile(path, data, options);
  await staged.commit();
}

/**
 * Removes temp files a crash left between staging and rename (only ours: the target's dot-name
 * prefix and our suffix). Returns the names removed.
 */
export async function removeStaleTempFiles(path: string): Promise<string[]> {
  const dir = dirname(path);
  const prefix = `.${basename(path)}.`;
  const names = await readdir(dir).catch(() => [] as string[]);
  const stale = names.filter((name) => name.startsWith(prefix) && name.endsWith(TEMP_SUFFIX));
  for (const name of stale) await unlinkQuietly(join(dir, name));
  return stale;
}
