/**
 * Builds the confhub image against a private dockerd, for the container suite and the image
 * benchmark.
 *
 * The Dockerfile's default base (the official Node image) comes from a registry; when the daemon
 * cannot pull it, a local base image is made the way DESIGN.md describes: a Debian minbase root
 * from debootstrap (the mirror is the one this machine's apt uses), the machine's node, npm and
 * Node headers in /usr/local (the official image's layout), and the machine's CA bundle for npm
 * and Node. It is passed to the build as BASE_IMAGE.
 */
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { findProgram, hasImage, type PrivateDockerd } from './engines.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/** The official image the Dockerfile defaults to (its ARG BASE_IMAGE). */
export const DEFAULT_BASE_IMAGE = /^ARG BASE_IMAGE=(\S+)$/m.exec(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8'))?.[1] ?? 'node';
export const LOCAL_BASE_IMAGE = 'local/node-base:bookworm';
/** What the Dockerfile copies; the rest of the checkout stays out of the build context. */
const CONTEXT_PATHS = [
  'Dockerfile',
  '.dockerignore',
  '.npmrc',
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'LICENSE',
  'scripts',
  'src',
  'config',
  'init',
  'web',
  'supervisord',
];
const BUILD_CA_BUNDLE = '/usr/local/share/build-ca-bundle.crt';
const BUILD_TIMEOUT_MS = 20 * 60_000;

export const DEBOOTSTRAP = findProgram('debootstrap');
export const SKIP_DEBOOTSTRAP =
  DEBOOTSTRAP === undefined ? 'debootstrap is not installed (Debian: apt-get install debootstrap); skipping the image tests' : undefined;

function run(file: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(' ')} failed: ${error.message}\n${stderr.slice(-4000)}`));
      else resolvePromise(stdout);
    });
  });
}

/** Waits for a Docker progress stream (pull, import, build); rejects on the first errorDetail. */
export function followProgress(docker: Docker, stream: NodeJS.ReadableStream, onLine?: (line: string) => void): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    docker.modem.followProgress(
      stream,
      (error: Error | null, output: { error?: string }[]) => {
        const failed = output?.find((entry) => entry.error);
        if (error) reject(error);
        else if (failed) reject(new Error(failed.error));
        else resolvePromise();
      },
      (event: { stream?: string; status?: string }) => {
        const text = event.stream ?? event.status;
        if (text && onLine) onLine(text.trimEnd());
      },
    );
  });
}

/** The first deb mirror of this machine's apt sources (deb822 or one-line format). */
export function aptMirror(): string {
  const candidates = ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list'];
  for (const file of candidates) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8');
    const deb822 = /^URIs:\s*(\S+)/m.exec(text);
    if (deb822) return deb822[1]!;
    const oneLine = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+/m.exec(text);
    if (oneLine) return oneLine[1]!;
  }
  throw new Error('no Debian mirror found in the apt sources of this machine');
}

function nodeInstallation(): { node: string; npmDir: string; includeDir: string } {
  const node = realpathSync(process.execPath);
  const prefix = dirname(dirname(node));
  const npmDir = [join(prefix, 'lib/node_modules/npm'), '/usr/lib/node_modules/npm', '/usr/local/lib/node_modules/npm'].find((dir) =>
    existsSync(join(dir, 'bin/npm-cli.js')),
  );
  const includeDir = [join(prefix, 'include/node'), '/usr/include/node', '/usr/local/include/node'].find((dir) => existsSync(join(dir, 'node_api.h')));
  if (!npmDir) throw new Error(`npm not found next to ${node}`);
  if (!includeDir) throw new Error(`Node's C headers (include/node) not found next to ${node}: native modules could not be built`);
  return { node, npmDir, includeDir };
}

/** debootstrap + this machine's Node, imported as LOCAL_BASE_IMAGE. Needs root. */
async function makeLocalBaseImage(docker: Docker, log: (line: string) => void): Promise<string> {
  if (!DEBOOTSTRAP) throw new Error(SKIP_DEBOOTSTRAP);
  const { node, npmDir, includeDir } = nodeInstallation();
  const work = mkdtempSync(join(tmpdir(), 'confhub-base-'));
  const root = join(work, 'root');
  try {
    const mirror = aptMirror();
    log(`debootstrap --variant=minbase bookworm (mirror from this machine's apt sources)`);
    await run(DEBOOTSTRAP, ['--variant=minbase', 'bookworm', root, mirror], 15 * 60_000);
    mkdirSync(join(root, 'usr/local/bin'), { recursive: true });
    mkdirSync(join(root, 'usr/local/lib/node_modules'), { recursive: true });
    mkdirSync(join(root, 'usr/local/include'), { recursive: true });
    cpSync(node, join(root, 'usr/local/bin/node'));
    cpSync(npmDir, join(root, 'usr/local/lib/node_modules/npm'), { recursive: true, verbatimSymlinks: true });
    symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(root, 'usr/local/bin/npm'));
    symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(root, 'usr/local/bin/npx'));
    cpSync(includeDir, join(root, 'usr/local/include/node'), { recursive: true });
    // Outside /etc/ssl: the ca-certificates package the image installs rewrites that bundle.
    cpSync('/etc/ssl/certs/ca-certificates.crt', join(root, BUILD_CA_BUNDLE.slice(1)));
    const tar = spawn('tar', ['-C', root, '--numeric-owner', '-c', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let tarError = '';
    tar.stderr.on('data', (chunk: Buffer) => (tarError += chunk.toString()));
    const tarDone = new Promise<void>((resolvePromise, reject) =>
      tar.once('exit', (code) => (code === 0 ? resolvePromise() : reject(new Error(`tar exited with ${code}: ${tarError.slice(-2000)}`)))),
    );
    const [repo, tag] = LOCAL_BASE_IMAGE.split(':') as [string, string];
    // Docker API: repeated `changes` query parameters, each a Dockerfile instruction.
    const progress: NodeJS.ReadableStream = await docker.importImage(tar.stdout as unknown as Readable, {
      repo,
      tag,
      changes: [
        'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        `ENV NODE_EXTRA_CA_CERTS=${BUILD_CA_BUNDLE}`,
        `ENV npm_config_cafile=${BUILD_CA_BUNDLE}`,
        // node-gyp builds against these headers instead of downloading them.
        'ENV npm_config_nodedir=/usr/local',
        'CMD ["node"]',
      ],
    });
    await followProgress(docker, progress);
    await tarDone;
    return LOCAL_BASE_IMAGE;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The base image to build from: the Dockerfile's default when the daemon can pull it, otherwise
 * a local one (made once per daemon).
 */
export async function ensureBaseImage(docker: Docker, log: (line: string) => void = () => undefined): Promise<string> {
  if (await hasImage(docker, DEFAULT_BASE_IMAGE)) return DEFAULT_BASE_IMAGE;
  try {
    const stream = await docker.pull(DEFAULT_BASE_IMAGE, { abortSignal: AbortSignal.timeout(5 * 60_000) });
    await followProgress(docker, stream);
    return DEFAULT_BASE_IMAGE;
  } catch (error) {
    // Only the status: the daemon's message names registry hosts, which logs here need not carry.
    log(`cannot pull ${DEFAULT_BASE_IMAGE} (Docker answered ${(error as { statusCode?: number }).statusCode ?? 'with an error'}); making a local base image`);
  }
  if (await hasImage(docker, LOCAL_BASE_IMAGE)) return LOCAL_BASE_IMAGE;
  return makeLocalBaseImage(docker, log);
}

export interface BuildImageInput {
  readonly tag: string;
  readonly baseImage: string;
  /** Build context directory; defaults to the checkout (only the paths the Dockerfile uses). */
  readonly contextDir?: string;
  readonly contextPaths?: readonly string[];
  readonly log?: (line: string) => void;
}

/** `docker build --network host --build-arg BASE_IMAGE=…` through the Engine API. */
export async function buildImage(
  docker: Docker,
  { tag, baseImage, contextDir = REPO_ROOT, contextPaths = CONTEXT_PATHS, log }: BuildImageInput,
): Promise<void> {
  const paths = contextPaths.filter((path) => existsSync(join(contextDir, path)));
  const tar = spawn('tar', ['-C', contextDir, '-c', '--exclude=node_modules', '--', ...paths], { stdio: ['ignore', 'pipe', 'inherit'] });
  const tail: string[] = [];
  const stream = await docker.buildImage(tar.stdout as unknown as NodeJS.ReadableStream, {
    t: tag,
    buildargs: { BASE_IMAGE: baseImage },
    networkmode: 'host',
    rm: true,
    forcerm: true,
    // A stuck apt or npm must fail the run, not hold it until CI's own limit.
    abortSignal: AbortSignal.timeout(BUILD_TIMEOUT_MS),
  });
  try {
    await followProgress(docker, stream, (line) => {
      tail.push(line);
      if (tail.length > 60) tail.shift();
      log?.(line);
    });
  } catch (error) {
    throw new Error(`docker build of ${tag} failed: ${(error as Error).message}\n${tail.join('\n')}`);
  }
}

/** The image's size in bytes as `docker images` shows it. */
export async function imageSize(docker: Docker, tag: string): Promise<number> {
  const info = (await docker.getImage(tag).inspect()) as { Size: number };
  return info.Size;
}

export interface ConfhubContainerInput {
  readonly image: string;
  readonly name: string;
  /** Host directory mounted as /data. */
  readonly dataDir: string;
  /** confhub's port on the host network (the console keeps its own, 9080 by default). */
  readonly port: number;
  readonly dockerd: PrivateDockerd;
}

/** A confhub container as deployed: --network host, the data directory as /data, the daemon's socket. */
export function createConfhubContainer(docker: Docker, { image, name, dataDir, port, dockerd }: ConfhubContainerInput): Promise<Docker.Container> {
  return docker.createContainer({
    Image: image,
    name,
    Env: [`CONFHUB_PORT=${port}`, 'CONFHUB_HOST=127.0.0.1'],
    HostConfig: { NetworkMode: 'host', Binds: [`${dataDir}:/data`, `${dockerd.socketPath}:/var/run/docker.sock`] },
  });
}
