import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDirs } from '../support/temp-dirs.js';
import { connect } from 'node:net';
import { acquireInstanceLock, lockAddress } from '../../src/bootstrap/instance-lock.js';

const tempDir = tempDirs('confhub-lock-');

/** Whether something answers on the data directory's lock, as a second confhub would ask. */
function instanceRunning(dir: string): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(lockAddress(dir).path);
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

describe('instance lock', () => {
  it('when the lock is held, then a second acquire is refused and the directory reads as running; released, it can be taken again', async () => {
    const dir = tempDir();
    const first = await acquireInstanceLock(dir);
    expect(await instanceRunning(dir)).toBe(true);
    await expect(acquireInstanceLock(dir)).rejects.toMatchObject({ data: { busy: true } });
    await first.release();
    expect(await instanceRunning(dir)).toBe(false);
    const again = await acquireInstanceLock(dir);
    await again.release();
  });

  it('when a socket file was left by a process that died, then the lock is taken over', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'confhub.sock'), '');
    expect(await instanceRunning(dir)).toBe(false);
    const lock = await acquireInstanceLock(dir);
    expect(await instanceRunning(dir)).toBe(true);
    await lock.release();
  });

  it('when the data directory is too deep for a socket path, then an abstract socket named by the directory is the lock, and nothing is bound elsewhere', async () => {
    const dir = join(tempDir(), 'x'.repeat(60), 'y'.repeat(60));
    mkdirSync(dir, { recursive: true });
    const address = lockAddress(dir);
    expect(address.file).toBe(false);
    expect(address.path.startsWith('\0confhub-')).toBe(true);
    const lock = await acquireInstanceLock(dir);
    expect(await instanceRunning(dir)).toBe(true);
    await expect(acquireInstanceLock(dir)).rejects.toMatchObject({ data: { busy: true } });
    expect(await instanceRunning(tempDir())).toBe(false);
    await lock.release();
  });
});
