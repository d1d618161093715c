/**
 * The bench's child processes and temp dirs. Every exit path (the end of main, a thrown error,
 * SIGINT/SIGTERM/SIGHUP) kills the children still running, by pid, and removes the temp dirs, so
 * an interrupted bench leaves no server listening and no data behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './paths.js';

/** Progress goes to stderr; stdout carries only the Markdown report. */
export function log(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

const children = new Set<ChildProcess>();
const exitHooks = new Set<() => void>();
const tempDirs = new Set<string>();

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

export function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

function cleanupSync(): void {
  for (const child of children) if (!hasExited(child) && child.pid !== undefined) signalPid(child.pid, 'SIGKILL');
  children.clear();
  for (const hook of exitHooks) hook();
  exitHooks.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

process.on('exit', cleanupSync);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping the servers and removing the temp dirs\n`);
    cleanupSync();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

/** A cleanup for what this module did not spawn (supervisord), run on every exit path; returns its undo. */
export function onExit(hook: () => void): () => void {
  exitHooks.add(hook);
  return () => exitHooks.delete(hook);
}

/** A temp dir removed on every exit path (it is still there for reading after the servers stop). */
export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

/** Runs a bench's main: an error is one line on stderr and exit code 1, never a stack of noise. */
export function runBench(main: () => Promise<void>): void {
  main()
    .catch((error: unknown) => {
      process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    })
    .finally(cleanupSync);
}

export interface Server {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  /** The last lines the child wrote, for error messages. */
  output(): string;
}

/** What a readiness check gets while the server starts. */
export interface Starting {
  readonly child: ChildProcess;
  readonly stdoutLines: AsyncIterable<string>;
  /** Records what the check saw last, for the message if the server is never ready. */
  saw(detail: string): void;
}

class ChildStartError extends Error {}

export interface StartServerOptions {
  /**
   * An open file the child's stdout is written to directly (its logs), instead of a pipe this
   * process reads: then reading them costs the bench process nothing, and `stdoutLines` is empty.
   */
  readonly stdoutFd?: number;
}

/**
 * Spawns `node args` and resolves once `ready` returns the port it answers on. Rejects with the
 * child's output if it exits first or is not ready in time (and then stops it).
 */
export async function startServer(
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: (starting: Starting) => Promise<number>,
  timeoutMs: number,
  { stdoutFd }: StartServerOptions = {},
): Promise<Server> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', stdoutFd ?? 'pipe', 'pipe'] });
  children.add(child);
  const tail: string[] = [];
  const remember = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') tail.push(line);
    if (tail.length > 40) tail.splice(0, tail.length - 40);
  };
  child.stderr!.on('data', remember);
  const stdoutLines = linesOf(child, remember);
  const output = (): string => tail.join('\n') || '(no output)';
  let lastSeen = '';
  const saw = (detail: string): void => {
    lastSeen = ` (${detail})`;
  };

  const exited = new Promise<never>((_, reject) => {
    child.once('error', (error) => reject(new ChildStartError(`${name}: could not start: ${error.message}`)));
    child.once('exit', (code, signal) =>
      reject(new ChildStartError(`${name} exited before it was ready (code ${code}, signal ${signal}). Its output:\n${output()}`)),
    );
  });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ChildStartError(`${name} was not ready after ${timeoutMs} ms${lastSeen}. Its output:\n${output()}`)), timeoutMs);
  });
  try {
    const port = await Promise.race([ready({ child, stdoutLines, saw }), exited, timedOut]);
    return { name, child, pid: child.pid!, port, output };
  } catch (error) {
    await stopServer({ name, child, pid: child.pid ?? -1, port: 0, output }).catch(() => undefined);
    throw error;
  } finally {
    clearTimeout(timer);
    exited.catch(() => undefined);
  }
}

/** stdout split into lines, also fed to the output tail; the pipe is always drained. */
function linesOf(child: ChildProcess, remember: (chunk: Buffer) => void): AsyncIterable<string> {
  const waiting: ((line: string | null) => void)[] = [];
  const queued: string[] = [];
  let partial = '';
  let ended = false;
  if (!child.stdout) return { async *[Symbol.asyncIterator]() {} };
  child.stdout.on('data', (chunk: Buffer) => {
    remember(chunk);
    partial += chunk.toString('utf8');
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      const next = waiting.shift();
      if (next) next(line);
      else if (queued.length < 100) queued.push(line);
    }
  });
  child.stdout.on('end', () => {
    ended = true;
    for (const next of waiting.splice(0)) next(null);
  });
  return {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const line = queued.shift() ?? (ended ? null : await new Promise<string | null>((resolve) => waiting.push(resolve)));
        if (line === null) return;
        yield line;
      }
    },
  };
}

/** Readiness of a server whose port is known: `url` answers 200 (polled until the child exits). */
export function answers200(url: string, port: number, intervalMs = 50): (starting: Starting) => Promise<number> {
  return async ({ child, saw }) => {
    while (!hasExited(child)) {
      try {
        const response = await fetch(url);
        saw(`last answer: ${response.status} ${await response.text()}`);
        if (response.status === 200) return port;
      } catch {
        // not listening yet
      }
      await sleep(intervalMs);
    }
    throw new ChildStartError(`${url}: the server exited`);
  };
}

/** SIGTERM by pid, then SIGKILL if it has not exited after 10 s. */
export async function stopServer(server: Server): Promise<void> {
  const { child, pid } = server;
  if (hasExited(child) || pid < 0) {
    children.delete(child);
    return;
  }
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  signalPid(pid, 'SIGTERM');
  const killed = await Promise.race([gone.then(() => false), sleep(10_000).then(() => true)]);
  if (killed) {
    log(`${server.name} (pid ${pid}) ignored SIGTERM for 10 s; sending SIGKILL`);
    signalPid(pid, 'SIGKILL');
    await gone;
  }
  children.delete(child);
}
