/** Starting the built confhub server for a bench: its own data dir, free port and API key. */
import { execFile } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { createServer } from 'node:net';
import { relative } from 'node:path';
import { CLI, ROOT } from './paths.js';
import { answers200, log, startServer, stopServer, type Server } from './processes.js';

export const HOST = '127.0.0.1';

export function assertBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${relative(ROOT, CLI)} is missing; run "npm run build" first (npm run bench does)`);
}

/** A port on HOST that nothing listens on right now (the kernel chose it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, HOST, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => (port > 0 ? resolve(port) : reject(new Error('could not find a free port'))));
    });
  });
}

/** How confhub runs in a bench; without `asShipped`, request logs and rate limits are off. */
export interface StartConfhubOptions {
  readonly asShipped?: {
    /** Where its stdout (the JSON logs, one line per request at the shipped level) is appended. */
    readonly logFile: string;
    /**
     * CONFHUB_RATE_LIMIT: the shipped default refuses a load test within a second, so a load test
     * raises it to what it needs; unset, it stays as shipped. The failed-authentication limit and
     * the log level always stay as shipped.
     */
    readonly rateLimitPerMinute?: number;
  };
}

/**
 * The inherited environment without any CONFHUB_* variable (a developer's own settings must not
 * leak in), plus ours.
 */
function confhubEnv(port: number, dataDir: string, { asShipped }: StartConfhubOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('CONFHUB_')) env[name] = value;
  const limitsAndLogs = asShipped
    ? asShipped.rateLimitPerMinute === undefined
      ? {}
      : { CONFHUB_RATE_LIMIT: String(asShipped.rateLimitPerMinute) }
    : { CONFHUB_RATE_LIMIT: '0', CONFHUB_AUTH_FAILURE_LIMIT: '0', CONFHUB_LOG_LEVEL: 'warn' };
  return { ...env, CONFHUB_DATA_DIR: dataDir, CONFHUB_PORT: String(port), CONFHUB_HOST: HOST, ...limitsAndLogs };
}

function readApiKey(env: NodeJS.ProcessEnv): Promise<string> {
  const args = [CLI, 'apikey', 'show'];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd: ROOT, env, timeout: 15_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`node ${args.join(' ')} failed: ${error.message}\n${stderr}`));
      else if (stdout.trim() === '') reject(new Error('"confhub apikey show" printed nothing'));
      else resolve(stdout.trim());
    });
  });
}

export interface Confhub extends Server {
  /** http://127.0.0.1:port */
  readonly base: string;
  readonly apiKey: string;
}

/** `node dist/cli.js serve` on a free port, ready once `readyPath` answers 200. */
export async function startConfhub(dataDir: string, readyPath: '/healthz' | '/readyz', timeoutMs: number, options: StartConfhubOptions = {}): Promise<Confhub> {
  const port = await freePort();
  const env = confhubEnv(port, dataDir, options);
  const base = `http://${HOST}:${port}`;
  log(`starting confhub (node dist/cli.js serve) on ${base}, data dir ${dataDir}; waiting for ${readyPath}`);
  const logFd = options.asShipped ? openSync(options.asShipped.logFile, 'a') : undefined;
  let server: Server;
  try {
    server = await startServer('confhub', [CLI, 'serve'], env, answers200(`${base}${readyPath}`, port), timeoutMs, { stdoutFd: logFd });
  } finally {
    // The child has its own copy of the descriptor.
    if (logFd !== undefined) closeSync(logFd);
  }
  try {
    return { ...server, base, apiKey: await readApiKey(env) };
  } catch (error) {
    await stopServer(server);
    throw error;
  }
}
