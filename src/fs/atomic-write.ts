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
   * rename run back to back in one synchronous step. On `installed`, `replaced` is the file the
   * rename replaced, read right after it: anything that reached it since the check shows there
   * (the caller merges it back). `later` is the same file `holdMs` later: a writer that opened it
   * before the rename and wrote after wrote there, to a file no longer in place.
   */
  replaceIf(expected: Uint8Array, options?: ReplaceIfOptions): Promise<ReplaceResult>;
  discard(): Promise<void>;
}

export interface ReplaceIfOptions {
  /**
   * How long the replaced file is watched for a late write (ms; default 250): a writer that
   * opened it before the rename may be descheduled between its open and its write, longest on a
   * loaded machine.
   */
  readonly holdMs?: number;
  /** Runs after the check, just before the file about to be replaced is pinned (the settings store marks the instant for its directory watch). */
  readonly beforeCheck?: () => void;
  /** Runs at once after the rename, before any other callback of this process (the file is in place). */
  readonly afterRename?: () => void;
}

/** Two reads this far apart that agree: the replaced file rests. */
const REST_MS = 15;

export type ReplaceResult =
  | {
      readonly installed: true;
      /** Undefined: the file was removed after the check, nothing was replaced. */
      readonly replaced: Buffer | undefined;
      readonly later: Promise<Buffer | undefined>;
      /** Stops watching the replaced file now (`later` then resolves with `replaced`): its descriptor must not outlive its owner. */
      readonly release: () => void;
      /** Cuts the wait short (a stop): the file is read until it rests, without waiting out `holdMs`. */
      readonly hurry: () => void;
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

function readIfPresent(path: string): Buffer | undefined {
  const fd = openIfPresent(path);
  if (fd === undefined) return undefined;
  try {
    return readAllSync(fd);
  } finally {
    closeSync(fd);
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
    async replaceIf(expected, { holdMs = 250, beforeCheck, afterRename }: ReplaceIfOptions = {}) {
      if (settled) throw new Error('staged file already settled');
      // Synchronous from the check to the rename: no other callback of this process runs between.
      const found = readIfPresent(path);
      if (!found?.equals(expected)) return { installed: false, found };
      beforeCheck?.();
      // Only the two calls below stand between the check and the rename. The open pins the file
      // about to be replaced: whatever reached it since the check is read back from it afterwards.
      // An editor's file renamed into place between them is the only one replaced unseen.
      const fd = openIfPresent(path);
      try {
        settled = true;
        renameSync(tempPath, path);
      } catch (error) {
        if (fd !== undefined) closeSync(fd);
        await unlinkQuietly(tempPath);
        throw error;
      }
      afterRename?.();
      if (fd === undefined) {
        // Removed by hand after the check: nothing was replaced, the write brings the file back.
        await fsyncDirectory(dirname(path));
        return { installed: true, replaced: undefined, later: Promise.resolve(undefined), release: () => undefined, hurry: () => undefined };
      }
      let replaced: Buffer;
      try {
        replaced = readAllSync(fd);
      } catch {
        replaced = found;
      }
      // Read again until two reads 15 ms apart agree: a file being rewritten is never taken whole.
      let open = true;
      let hurried = false;
      let wake: () => void = () => undefined;
      const pause = (ms: number): Promise<void> =>
        new Promise((resolve) => {
          if (hurried && ms > REST_MS) {
            resolve();
            return;
          }
          // Kept referenced: a process ending while a replaced file is watched would drop an edit
          // merged back from it (the watch lasts at most a few hundred ms).
          const timer = setTimeout(resolve, ms);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      const later = (async (): Promise<Buffer | undefined> => {
        try {
          await pause(holdMs);
          let previous = open ? readAllSync(fd) : replaced;
          for (let i = 0; open && i < 20; i++) {
            await pause(REST_MS);
            if (!open) break;
            const current = readAllSync(fd);
            if (current.equals(previous)) return current;
            previous = current;
          }
          return open ? previous : replaced;
        } catch {
          return replaced;
        } finally {
          open = false;
          closeSync(fd);
        }
      })();
      const release = (): void => {
        if (!open) return;
        open = false;
        wake();
      };
      const hurry = (): void => {
        hurried = true;
        wake();
      };
      await fsyncDirectory(dirname(path));
      return { installed: true, replaced, later, release, hurry };
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
