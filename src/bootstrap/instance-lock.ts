/**
 * One confhub per data directory. The running process listens on a unix socket in the data
 * directory; the socket file outlives a kill -9, but nobody answers on it then, so "someone
 * answers" is a reliable liveness test (unlike a pid file: pids are reused, and another pid
 * namespace sees other pids). Offline commands (masterkey rotate) refuse to run beside it, and a
 * second server on the same directory refuses to start.
 */
import { existsSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { resolve } from 'node:path';
import { AppError } from '../errors.js';

export function lockSocketPath(dataDir: string): string {
  return resolve(dataDir, 'confhub.sock');
}

/** Whether a confhub answers on the data directory's socket. */
export function instanceRunning(dataDir: string): Promise<boolean> {
  const path = lockSocketPath(dataDir);
  if (!existsSync(path)) return Promise.resolve(false);
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

export async function acquireInstanceLock(dataDir: string): Promise<InstanceLock> {
  const path = lockSocketPath(dataDir);
  if (await instanceRunning(dataDir)) {
    throw new AppError('STARTUP_CONFIG_INVALID', 'another confhub uses this data directory', {
      details: `another confhub is running with the data directory ${dataDir} (it answers on ${path}); stop it first`,
    });
  }
  // Left by a process that died: nobody answers on it.
  rmSync(path, { force: true });
  const server: Server = createServer((socket) => socket.destroy());
  await new Promise<void>((done, fail) => {
    server.once('error', (error) => fail(new AppError('STARTUP_CONFIG_INVALID', 'cannot lock the data directory', { details: `cannot listen on ${path}: ${error.message}`, cause: error })));
    server.listen(path, () => done());
  });
  server.unref();
  return {
    release: () =>
      new Promise<void>((done) => {
        server.close(() => done());
      }),
  };
}
