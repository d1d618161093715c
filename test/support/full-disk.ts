/**
 * A directory on a disk that can be filled up and freed again, for the tests of what a full disk
 * does. As root, a small tmpfs is mounted there and filled with one file, so writes fail with the
 * kernel's own ENOSPC. Where mounting is not allowed (no root), the directory is marked full
 * instead and the atomic writer refuses to stage files in it with the same error: a test file
 * that uses this mocks `src/fs/atomic-write.ts` with `withSimulatedFullDisks`, so it runs either
 * way and never skips. `CONFHUB_TEST_SIMULATE_FULL_DISK=1` takes the simulated way as root too.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface FullDisk {
  readonly dir: string;
  /** A mounted tmpfs (false: simulated). */
  readonly real: boolean;
  /** Takes every free byte. */
  fill(): void;
  /** Gives the space back. */
  free(): void;
  /** Unmounts (the directory is left empty). */
  close(): void;
}

const simulatedFull = new Set<string>();

function enospc(syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOSPC: no space left on device, ${syscall}`), { code: 'ENOSPC', errno: -28, syscall });
}

function tryMount(dir: string): boolean {
  if (process.env.CONFHUB_TEST_SIMULATE_FULL_DISK === '1' || process.getuid?.() !== 0) return false;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512k,mode=0700', 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function fullDisk(dir: string): FullDisk {
  mkdirSync(dir, { recursive: true });
  const real = tryMount(dir);
  const filler = join(dir, '.filler');
  return {
    dir,
    real,
    fill() {
      if (!real) {
        simulatedFull.add(dir);
        return;
      }
      const fd = openSync(filler, 'a');
      const block = Buffer.alloc(4096, 1);
      try {
        for (;;) writeSync(fd, block);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      } finally {
        closeSync(fd);
      }
      // The last partial block too: not a byte is left.
      const tail = openSync(filler, 'a');
      try {
        for (;;) writeSync(tail, Buffer.alloc(1, 1));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      } finally {
        closeSync(tail);
      }
    },
    free() {
      simulatedFull.delete(dir);
      rmSync(filler, { force: true });
    },
    close() {
      simulatedFull.delete(dir);
      if (real) execFileSync('umount', [dir], { stdio: 'ignore' });
    },
  };
}

type StageFile = typeof import('../../src/fs/atomic-write.js').stageFile;

/** The atomic writer, refusing to stage a file in a directory marked full (see the header). */
export function withSimulatedFullDisks<T extends { stageFile: StageFile }>(original: T): T {
  const stageFile: StageFile = async (path, data, options) => {
    const dir = dirname(path);
    if ([...simulatedFull].some((full) => dir === full || dir.startsWith(`${full}/`))) throw enospc('write');
    return original.stageFile(path, data, options);
  };
  return { ...original, stageFile };
}
