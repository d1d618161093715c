/**
 * Crash-safe file replacement: a temp file in the same directory (a dot-name ending in
 * `.confhub-tmp`, which no service glob such as *.ini or *.conf matches), written, fsynced and
 * given the final mode, then renamed over the target, then the directory fsynced. A crash at any
 * instant leaves the old file or the new one, never a mix. Staging is separate from committing
 * so a caller can check the staged file (or that nobody changed the target) before the rename.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
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
  discard(): Promise<void>;
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
