/**
 * confhub as its own process (`node src/cli.ts serve`), for tests that need what only a process
 * has: its whole log output (both threads), signals, kill -9. Each test ends only the processes
 * it started.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const CLI = ['--import', 'tsx', 'src/cli.ts'];

export interface ConfhubProcess {
  child: ChildProcess;
  url: string;
  /** stdout and stderr so far. */
  output: () => string;
}

const started: ChildProcess[] = [];

/** Starts `confhub serve` with the environment given (on top of this one) and waits until it listens. */
export function startProcess(env: Record<string, string>): Promise<ConfhubProcess> {
  const child = spawn(process.execPath, [...CLI, 'serve'], { env: { ...process.env, CONFHUB_PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      const match = /listening on (http:\/\/[^\s";]+)/.exec(out);
      if (match) resolve({ child, url: match[1]!, output: () => out });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`confhub exited with ${code}: ${out}`)));
  });
}

/** SIGTERM, then the exit code. */
export function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve(child.exitCode);
      return;
    }
    child.on('exit', (code) => resolve(code));
    child.kill(signal);
  });
}

/** After each test: the processes this module started that still run are killed. */
export function killStartedProcesses(): void {
  for (const child of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs one confhub command to its end with the environment given (on top of this one): its exit code and output, whatever the code. */
export function runCli(args: string[], env: Record<string, string>): Promise<CliRun> {
  return execFileAsync(process.execPath, [...CLI, ...args], { env: { ...process.env, ...env } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: CliRun) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
  );
}
