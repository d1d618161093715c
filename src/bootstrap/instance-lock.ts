/**
 * One confhub per data directory. The running process listens on a unix socket in the data
 * directory; the socket file outlives a kill -9, but nobody answers on it then, so "someone
 * answers" is a reliable liveness test (unlike a pid file: pids are reused, and another pid
 * namespace sees other pids). Offline commands (masterkey rotate) take the same lock, and a second
 * server on the same directory refuses to start.
 *
 * A socket path is at most 107 bytes, and a longer one is silently cut by the kernel; for a data
 * directory that deep the lock is an abstract socket named by a hash of the directory's real path
 * (it is seen by processes of the same network namespace only, e.g. the same container).
 */
import { createHash } from 'node:crypto';
import { realpathSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { resolve } from 'node:path';
import { AppError } from '../core/errors.js';
import { unusableDirectory } from '../fs/write-failure.js';

const MAX_SOCKET_PATH_BYTES = 107;

/** Where the lock listens: the socket file in the data directory, or an abstract name when its path is too long. */
export function lockAddress(dataDir: string): { path: string; file: boolean } {
  const path = resolve(dataDir, 'confhub.sock');
  if (Buffer.byteLength(path) <= MAX_SOCKET_PATH_BYTES) return { path, file: true };
  let real = resolve(dataDir);
  try {
    real = realpathSync(dataDir);
  } catch {
    // Not created yet: the resolved path names it.
  }
  return { path: `\0confhub-${createHash('sha256').update(real).digest('hex').slice(0, 40)}`, file: false };
}

function answers(path: string): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

export interface InstanceLock {
  release(): Promise<void>;
}

function listen(server: Server, path: string): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((done) => {
    const onError = (error: NodeJS.ErrnoException): void => done(error);
    server.once('error', onError);
    server.listen(path, () => {
      server.off('error', onError);
      done(undefined);
    });
  });
}

function busy(dataDir: string): AppError {
  return new AppError('STARTUP_CONFIG_INVALID', {
    message: 'another confhub uses this data directory',
    details: `another confhub is running with the data directory ${dataDir}; stop it first`,
    data: { busy: true },
  });
}

/**
 * Takes the lock: bind first (atomic), and only when the address is taken ask whether anyone
 * answers; a socket file nobody answers on was left by a process that died, and is replaced once.
 */
export async function acquireInstanceLock(dataDir: string): Promise<InstanceLock> {
  const { path, file } = lockAddress(dataDir);
  const server: Server = createServer((socket) => socket.destroy());
  let error = await listen(server, path);
  if (error?.code === 'EADDRINUSE') {
    if (!file || (await answers(path))) throw busy(dataDir);
    rmSync(path, { force: true });
    error = await listen(server, path);
    if (error?.code === 'EADDRINUSE') throw busy(dataDir);
  }
  if (error) {
    throw (
      unusableDirectory(error) ??
      new AppError('STARTUP_CONFIG_INVALID', {
        message: 'cannot lock the data directory',
        details: `cannot listen on ${path}: ${error.message}`,
        cause: error,
      })
    );
  }
  server.unref();
  return {
    release: () =>
      new Promise<void>((done) => {
        server.close(() => done());
      }),
  };
}
