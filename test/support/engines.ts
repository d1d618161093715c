/**
 * Private Docker and supervisord engines for tests: each test file starts its own, in a temp
 * directory, and stops exactly the process it started (by pid) — never a shared daemon, never
 * anything by name. dockerd runs with DESIGN.md's flags: no bridge, no iptables, so it creates
 * no network of its own; test containers use `--network none`.
 *
 * A process 'exit' safety net sends SIGTERM to whatever is still running when the test process
 * ends without calling stop() (a crashed or interrupted run).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import Docker from 'dockerode';

export const BUSYBOX_IMAGE = 'local/busybox';
const BUSYBOX_BINARY = '/bin/busybox';

const running = new Set<ChildProcess>();
let safetyNetInstalled = false;

function installSafetyNet(): void {
  if (safetyNetInstalled) return;
  safetyNetInstalled = true;
  process.on('exit', () => {
    for (const child of running) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
      }
    }
  });
}

/** Absolute path of an installed program: the usual sbin/bin places, then PATH. */
export function findProgram(name: string): string | undefined {
  const dirs = ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/sbin', '/usr/local/bin', ...(process.env.PATH ?? '').split(delimiter)];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

export const DOCKERD = findProgram('dockerd');
export const SUPERVISORD = findProgram('supervisord');
/** For `describe.skipIf`: the only reason to skip is a missing binary; everything else must fail loudly. */
export const SKIP_DOCKERD =
  DOCKERD === undefined ? 'dockerd is not installed (Debian: apt-get install docker.io); skipping the Docker engine tests' : undefined;
export const SKIP_SUPERVISORD =
  SUPERVISORD === undefined ? 'supervisord is not installed (Debian: apt-get install supervisor); skipping the supervisord tests' : undefined;
if (SKIP_DOCKERD) console.warn(SKIP_DOCKERD);
if (SKIP_SUPERVISORD) console.warn(SKIP_SUPERVISORD);

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function tail(path: string, lines = 20): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Waits for the child to exit: SIGTERM, then SIGKILL after killAfterMs. Only this pid. */
async function stopChild(child: ChildProcess, killAfterMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
    running.delete(child);
    return;
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }, killAfterMs);
  await exited;
  clearTimeout(timer);
  running.delete(child);
}

/** Lazily unmounts what is still mounted under dir (only after a daemon was SIGKILLed). */
async function unmountUnder(dir: string): Promise<void> {
  let mountinfo: string;
  try {
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return;
  }
  const points = mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined && (p === dir || p.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const point of points) {
    await new Promise<void>((resolve) => execFile('umount', ['-l', point], () => resolve()));
  }
}

/** rm -rf that waits out EBUSY for a moment (mounts a daemon is still releasing). */
async function removeDir(dir: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      rmSync(dir, { recursive: true, force: true });
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== 'EBUSY' && code !== 'ENOTEMPTY') || attempt >= 20) throw error;
      if (attempt === 5) await unmountUnder(dir);
      await sleep(100);
    }
  }
}

function httpOverSocket(socketPath: string, method: string, path: string, body?: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        method,
        path,
        headers: body === undefined ? {} : { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(body) },
        timeout: timeoutMs,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

async function waitFor(what: string, child: ChildProcess, logPath: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${what} exited during start-up (${child.exitCode ?? child.signalCode}); log:\n${tail(logPath)}`);
    }
    if (await probe().catch(() => false)) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`${what} did not answer within ${timeoutMs} ms; log:\n${tail(logPath)}`);
    await sleep(50);
  }
}

export interface PrivateDockerd {
  readonly socketPath: string;
  readonly dir: string;
  readonly pid: number;
  /** Milliseconds from spawn to the first answered _ping. */
  readonly startupMs: number;
  stop(): Promise<void>;
}

export async function startDockerd(): Promise<PrivateDockerd> {
  if (!DOCKERD) throw new Error(SKIP_DOCKERD);
  installSafetyNet();
  // Short path: the socket path must stay under the 108-byte sun_path limit.
  const dir = mkdtempSync(join(tmpdir(), 'confhub-dockerd-'));
  const socketPath = join(dir, 'docker.sock');
  const logPath = join(dir, 'dockerd.log');
  const logFd = openSync(logPath, 'a');
  const child = spawn(
    DOCKERD,
    [
      '--host',
      `unix://${socketPath}`,
      '--data-root',
      join(dir, 'data'),
      '--exec-root',
      join(dir, 'exec'),
      '--pidfile',
      join(dir, 'pid'),
      '--bridge=none',
      '--iptables=false',
      '--ip-masq=false',
    ],
    { stdio: ['ignore', logFd, logFd] },
  );
  closeSync(logFd);
  running.add(child);
  child.once('exit', () => running.delete(child));
  let startupMs: number;
  try {
    startupMs = await waitFor('dockerd', child, logPath, 30_000, async () => (await httpOverSocket(socketPath, 'GET', '/_ping')).status === 200);
  } catch (error) {
    await stopChild(child, 5000);
    await removeDir(dir);
    throw error;
  }
  const pid = child.pid!;
  return {
    socketPath,
    dir,
    pid,
    startupMs,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        // Kill every container of this private daemon first: a shell as PID 1 ignores SIGTERM,
        // and dockerd would wait out each stop timeout before exiting.
        try {
          const docker = new Docker({ socketPath });
          const containers = await docker.listContainers({ all: true, abortSignal: AbortSignal.timeout(5000) });
          await Promise.all(
            containers.map((c) =>
              docker
                .getContainer(c.Id)
                .remove({ force: true, v: true, abortSignal: AbortSignal.timeout(10_000) })
                .catch(() => undefined),
            ),
          );
        } catch {
          /* the daemon may already be unhealthy; SIGTERM below still applies */
        }
      }
      // dockerd unmounts its data root on a clean exit; only then can the dir be removed.
      await stopChild(child, 20_000);
      await removeDir(dir);
    },
  };
}

/** Whether the daemon has this image; errors other than "no such image" are thrown. */
export async function hasImage(docker: Docker, name: string): Promise<boolean> {
  try {
    await docker.getImage(name).inspect();
    return true;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return false;
    throw error;
  }
}

/**
 * Imports the machine's static busybox as local/busybox (no registry needed): a root folder
 * with bin/busybox and a symlink per applet, tarred and fed to POST /images/create?fromSrc=-.
 * Idempotent: an existing image is kept.
 */
export async function ensureBusyboxImage(socketPath: string): Promise<string> {
  const docker = new Docker({ socketPath });
  if (await hasImage(docker, BUSYBOX_IMAGE)) return BUSYBOX_IMAGE;
  if (!existsSync(BUSYBOX_BINARY)) throw new Error(`${BUSYBOX_BINARY} is missing (Debian: apt-get install busybox-static)`);
  const root = mkdtempSync(join(tmpdir(), 'confhub-busybox-'));
  try {
    mkdirSync(join(root, 'bin'));
    mkdirSync(join(root, 'tmp'), { mode: 0o1777 });
    mkdirSync(join(root, 'etc'));
    copyFileSync(BUSYBOX_BINARY, join(root, 'bin', 'busybox'));
    const applets = await new Promise<string[]>((resolve, reject) =>
      execFile(BUSYBOX_BINARY, ['--list'], (error, stdout) => (error ? reject(error) : resolve(stdout.split('\n').filter((a) => /^[a-z0-9_.[-]+$/.test(a))))),
    );
    for (const applet of applets) {
      if (applet === 'busybox') continue;
      symlinkSync('busybox', join(root, 'bin', applet));
    }
    const tar = spawn('tar', ['-C', root, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const tarDone = new Promise<void>((resolve, reject) => {
      tar.once('error', reject);
      tar.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`tar exited with ${code}`))));
    });
    const progress = await docker.importImage(tar.stdout, { repo: BUSYBOX_IMAGE, tag: 'latest' });
    await new Promise<void>((resolve, reject) => docker.modem.followProgress(progress, (error: Error | null) => (error ? reject(error) : resolve())));
    await tarDone;
    await docker.getImage(BUSYBOX_IMAGE).inspect();
    return BUSYBOX_IMAGE;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

export interface SupervisorProgram {
  readonly name: string;
  /** supervisord's `command` line (supervisord splits it shell-like, but runs no shell). */
  readonly command: string;
  /** Any other [program:x] keys; the defaults below suit tests (quick stop, no autorestart). */
  readonly options?: Readonly<Record<string, string | number | boolean>>;
}

export interface StartSupervisordOptions {
  /** Also listen on 127.0.0.1:port with basic auth (for the http:// URL form). */
  readonly inet?: { readonly port: number; readonly username: string; readonly password: string };
  /** `[include] files =` patterns, relative to the configuration's directory (`dir`). */
  readonly include?: readonly string[];
}

export interface PrivateSupervisord {
  /** `unix:///…/supervisor.sock` */
  readonly url: string;
  readonly socketPath: string;
  readonly dir: string;
  readonly pid: number;
  readonly startupMs: number;
  stop(): Promise<void>;
}

export async function startSupervisord(programs: readonly SupervisorProgram[], options: StartSupervisordOptions = {}): Promise<PrivateSupervisord> {
  if (!SUPERVISORD) throw new Error(SKIP_SUPERVISORD);
  installSafetyNet();
  const dir = mkdtempSync(join(tmpdir(), 'confhub-supervisord-'));
  const socketPath = join(dir, 'supervisor.sock');
  const logPath = join(dir, 'supervisord.log');
  const lines = [
    '[unix_http_server]',
    `file=${socketPath}`,
    'chmod=0700',
    '',
    '[rpcinterface:supervisor]',
    'supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface',
    '',
    '[supervisord]',
    'nodaemon=true',
    `logfile=${logPath}`,
    `pidfile=${join(dir, 'supervisord.pid')}`,
    `childlogdir=${dir}`,
    'loglevel=info',
    '',
  ];
  if (options.inet) {
    lines.push('[inet_http_server]', `port=127.0.0.1:${options.inet.port}`, `username=${options.inet.username}`, `password=${options.inet.password}`, '');
  }
  if (options.include) lines.push('[include]', `files = ${options.include.join(' ')}`, '');
  for (const program of programs) {
    const settings: Record<string, string | number | boolean> = {
      command: program.command,
      autostart: true,
      autorestart: false,
      startsecs: 1,
      startretries: 0,
      stopwaitsecs: 2,
      redirect_stderr: true,
      stdout_logfile: join(dir, `${program.name}.log`),
      ...program.options,
    };
    lines.push(`[program:${program.name}]`, ...Object.entries(settings).map(([k, v]) => `${k}=${String(v)}`), '');
  }
  const configPath = join(dir, 'supervisord.conf');
  writeFileSync(configPath, lines.join('\n'), { mode: 0o600 });
  const child = spawn(SUPERVISORD, ['-c', configPath], { stdio: ['ignore', 'ignore', 'ignore'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  const getState = '<?xml version="1.0"?><methodCall><methodName>supervisor.getState</methodName><params></params></methodCall>';
  let startupMs: number;
  try {
    startupMs = await waitFor('supervisord', child, logPath, 20_000, async () => {
      const answer = await httpOverSocket(socketPath, 'POST', '/RPC2', getState);
      return answer.status === 200 && answer.body.includes('RUNNING');
    });
  } catch (error) {
    await stopChild(child, 5000);
    await removeDir(dir);
    throw error;
  }
  return {
    url: `unix://${socketPath}`,
    socketPath,
    dir,
    pid: child.pid!,
    startupMs,
    async stop() {
      // supervisord stops its programs on SIGTERM (each within its stopwaitsecs) and then exits.
      await stopChild(child, 15_000);
      await removeDir(dir);
    },
  };
}

export interface RunBusyboxInput {
  readonly docker: import('dockerode');
  readonly name: string;
  /** `sh -c` script of the container. */
  readonly script: string;
  /** Host directory bind-mounted at /conf (created). */
  readonly confDir: string;
  readonly extra?: Partial<import('dockerode').ContainerCreateOptions>;
}

/** Starts a busybox container with no network and `confDir` mounted at /conf; returns `confDir`. */
export async function runBusybox({ docker, name, script, confDir, extra = {} }: RunBusyboxInput): Promise<string> {
  mkdirSync(confDir, { recursive: true });
  const container = await docker.createContainer({
    name,
    Image: BUSYBOX_IMAGE,
    Cmd: ['sh', '-c', script],
    ...extra,
    HostConfig: { NetworkMode: 'none', Binds: [`${confDir}:/conf`], ...extra.HostConfig },
  });
  await container.start();
  return confDir;
}
