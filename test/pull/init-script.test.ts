/**
 * init/confhub-init.sh run by the host's busybox (sh and its applets only: PATH holds nothing but
 * busybox links) against a real HTTP server on loopback that answers as confhub's pull API does.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../support/ports.js';
import { tempDirs } from '../support/temp-dirs.js';
import { eventually } from '../support/wait.js';

const SCRIPT = fileURLToPath(new URL('../../init/confhub-init.sh', import.meta.url));
const BUSYBOX = '/usr/bin/busybox';
// What the script runs (sh also runs the test's commands).
const APPLETS = [
  'sh',
  'wget',
  'tar',
  'sha256sum',
  'mv',
  'mktemp',
  'cat',
  'chmod',
  'mkdir',
  'rm',
  'sleep',
  'date',
  'od',
  'hostname',
  'dirname',
  'timeout',
  'stat',
  'id',
];
const TOKEN = 'tok-2f1c9a77e0b14d3c-read';
const TARGET = 'web';

interface BundleFile {
  path: string;
  mode: number;
  data: string;
  /** Bytes in the archive when they differ from what the manifest's checksum says. */
  tampered?: string;
}

interface BundleInput {
  revision: string;
  files: BundleFile[];
  /** Extra MANIFEST lines (path, bytes) with a matching file under files/ in the archive. */
  extra?: { manifestPath: string; archiveName: string; data: string }[];
  /** Entries appended to the archive as they are. */
  raw?: TarEntry[];
}

interface TarEntry {
  name: string;
  mode: number;
  data?: Buffer;
  dir?: boolean;
  symlinkTo?: string;
  hardlinkTo?: string;
  /** A FIFO or a character device instead of a regular file. */
  special?: 'fifo' | 'char';
}

/** A POSIX ustar archive: 512-byte headers, data padded to 512, two zero blocks at the end. */
function ustar(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const data = entry.data ?? Buffer.alloc(0);
    const header = Buffer.alloc(512);
    if (Buffer.byteLength(entry.name) > 100) throw new Error(`tar name too long for this builder: ${entry.name}`);
    header.write(entry.name, 0, 'utf8');
    header.write(`${entry.mode.toString(8).padStart(7, '0')}\0`, 100, 'ascii');
    header.write('0000000\0', 108, 'ascii');
    header.write('0000000\0', 116, 'ascii');
    header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
    header.write(
      `${Math.floor(Date.now() / 1000)
        .toString(8)
        .padStart(11, '0')}\0`,
      136,
      'ascii',
    );
    header.write('        ', 148, 'ascii');
    const type = entry.dir ? '5' : entry.symlinkTo ? '2' : entry.hardlinkTo ? '1' : entry.special === 'fifo' ? '6' : entry.special === 'char' ? '3' : '0';
    header.write(type, 156, 'ascii');
    const link = entry.symlinkTo ?? entry.hardlinkTo;
    if (link) header.write(link, 157, 'utf8');
    if (entry.special === 'char') {
      // /dev/null's numbers.
      header.write('0000001\0', 329, 'ascii');
      header.write('0000003\0', 337, 'ascii');
    }
    header.write('ustar\0', 257, 'ascii');
    header.write('00', 263, 'ascii');
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const octal = (mode: number) => mode.toString(8).padStart(4, '0');

/** The bundle as the contract lays it out: MANIFEST, REVISION, parent directories, files/<path>. */
function bundle(input: BundleInput): Buffer {
  const manifest = [
    ...input.files.map((f) => `${sha256(f.data)} ${octal(f.mode)} ${f.path}\n`),
    ...(input.extra ?? []).map((e) => `${sha256(e.data)} 0644 ${e.manifestPath}\n`),
  ].join('');
  const entries: TarEntry[] = [
    { name: 'MANIFEST', mode: 0o644, data: Buffer.from(manifest) },
    { name: 'REVISION', mode: 0o644, data: Buffer.from(`${input.revision}\n`) },
    { name: 'files/', mode: 0o755, dir: true },
  ];
  const dirs = new Set<string>();
  for (const f of input.files) {
    const parts = f.path.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const dir = `files/${parts.slice(0, i).join('/')}/`;
      if (!dirs.has(dir)) entries.push({ name: dir, mode: 0o755, dir: true });
      dirs.add(dir);
    }
  }
  for (const f of input.files) entries.push({ name: `files/${f.path}`, mode: f.mode, data: Buffer.from(f.tampered ?? f.data) });
  for (const e of input.extra ?? []) entries.push({ name: e.archiveName, mode: 0o644, data: Buffer.from(e.data) });
  return ustar([...entries, ...(input.raw ?? [])]);
}

/** confhub's pull API as the contract describes it, with counters for what the script asked. */
interface FakeConfhub {
  url: string;
  /** How many /readyz requests answer 503 before they answer 200. */
  notReadyFor: number;
  current?: BundleInput;
  readyz: number;
  bundleRequests: number;
  /** Send the headers and the first block of the bundle, then nothing more. */
  stallBundle?: boolean;
  /** Send the headers at once and the bundle's bytes only after this many ms. */
  bundleDelayMs?: number;
  /** Set when the connection of a stalled bundle closes. */
  bundleClosed?: boolean;
  /** Answer the bundle request with this instead: a 200 that is not a tar. */
  bundlePage?: string;
  /** Send this many bytes of the bundle (Content-Length says all), then close the connection. */
  truncateBundleAt?: number;
  /** The check-in's status when it is not 200. */
  checkinStatus?: number;
  checkins: { authorization?: string; contentType?: string; body: unknown }[];
}

let server: Server;
let confhub: FakeConfhub;
let binDir: string;

function jsonError(res: ServerResponse, status: number, code: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ code, message: code, details: {} }));
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  if (req.url === '/readyz') {
    confhub.readyz++;
    res.writeHead(confhub.readyz > confhub.notReadyFor ? 200 : 503, { 'content-type': 'text/plain' });
    res.end(confhub.readyz > confhub.notReadyFor ? 'ready' : 'starting');
    return;
  }
  const authorized = req.headers.authorization === `Bearer ${TOKEN}`;
  if (req.method === 'GET' && req.url === `/api/v1/targets/${TARGET}/bundle`) {
    confhub.bundleRequests++;
    if (!authorized) return jsonError(res, 401, 'UNAUTHORIZED');
    if (!confhub.current) return jsonError(res, 503, 'NOT_APPLIED');
    if (confhub.bundlePage !== undefined) {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(confhub.bundlePage);
      return;
    }
    const body = bundle(confhub.current);
    res.writeHead(200, {
      'content-type': 'application/x-tar',
      'content-length': body.length,
      etag: `"${confhub.current.revision}"`,
      'cache-control': 'no-store',
    });
    if (confhub.truncateBundleAt !== undefined) {
      res.write(body.subarray(0, confhub.truncateBundleAt), () => res.destroy());
      return;
    }
    if (confhub.stallBundle) {
      const stalled = confhub;
      res.once('close', () => {
        stalled.bundleClosed = true;
      });
      res.write(body.subarray(0, 512));
      return;
    }
    if (confhub.bundleDelayMs) {
      res.flushHeaders();
      await new Promise((resolve) => setTimeout(resolve, confhub.bundleDelayMs));
    }
    res.end(body);
    return;
  }
  if (req.method === 'POST' && req.url === `/api/v1/targets/${TARGET}/checkin`) {
    if (!authorized) return jsonError(res, 401, 'UNAUTHORIZED');
    if (confhub.checkinStatus) return jsonError(res, confhub.checkinStatus, 'INTERNAL');
    confhub.checkins.push({
      authorization: req.headers.authorization,
      contentType: req.headers['content-type'],
      body: JSON.parse(Buffer.concat(chunks).toString('utf8')),
    });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
    return;
  }
  jsonError(res, 404, 'NOT_FOUND');
}

beforeAll(async () => {
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing (Debian: apt-get install busybox-static, as bash test/run.sh does)`);
  binDir = mkdtempSync(join(tmpdir(), 'confhub-init-bin-'));
  // Runs as another user reach busybox through it.
  chmodSync(binDir, 0o755);
  for (const applet of APPLETS) symlinkSync(BUSYBOX, join(binDir, applet));
  server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      res.destroy(error as Error);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(binDir, { recursive: true, force: true });
});

beforeEach(() => {
  const { port } = server.address() as AddressInfo;
  confhub = { url: `http://127.0.0.1:${port}`, notReadyFor: 0, readyz: 0, bundleRequests: 0, checkins: [] };
});

afterEach(() => {
  server.closeAllConnections();
});

const newDir = tempDirs('confhub-init-');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  pid: number;
  ms: number;
}

/**
 * `busybox sh init/confhub-init.sh COMMAND…` with only the given environment and busybox on PATH;
 * `prefix` runs it through another command first.
 */
function startInit(env: Record<string, string | undefined>, command: string[], prefix: string[] = []): { pid: number; done: Promise<Run> } {
  const started = Date.now();
  const clean = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
  const [file = BUSYBOX, ...args] = [...prefix, BUSYBOX, 'sh', SCRIPT, ...command];
  const child = spawn(file, args, {
    env: { PATH: binDir, ...clean },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const pid = child.pid ?? -1;
  const done = new Promise<Run>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr, pid, ms: Date.now() - started }));
  });
  return { pid, done };
}

const runInit = (...args: Parameters<typeof startInit>): Promise<Run> => startInit(...args).done;

/** A destination, a token file holding `token` and the environment of a normal start. */
function setup(token = `${TOKEN}\n`) {
  const root = newDir();
  const dest = join(root, 'dest');
  const tokenFile = join(root, 'token');
  writeFileSync(tokenFile, token, { mode: 0o600 });
  const env: Record<string, string | undefined> = {
    CONFHUB_URL: confhub.url,
    CONFHUB_TARGET: TARGET,
    CONFHUB_TOKEN_FILE: tokenFile,
    CONFHUB_DEST: dest,
    CONFHUB_TIMEOUT: '20',
  };
  return { root, dest, tokenFile, env };
}

/** Every entry under dir with its mode and bytes, to compare a destination before and after. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    const st = statSync(path);
    out[name] = `${octal(st.mode & 0o7777)} ${st.isDirectory() ? '<dir>' : readFileSync(path, 'utf8')}`;
  }
  return out;
}

/** A service user: what a container that does not run as root gets. */
const USER = 1000;
const SETPRIV = '/usr/bin/setpriv';
/** Runs the rest as USER (setpriv: util-linux, on every Debian). */
const asUser = [SETPRIV, `--reuid=${USER}`, `--regid=${USER}`, '--clear-groups'];

/**
 * Bind-mounts `source` onto `target` in a private mount namespace (the mount ends with the run and
 * never reaches the host's), then runs the script there, through `then` first.
 */
function bindMounted(source: string, target: string, then: string[] = []): string[] {
  const bindThenRun = `${BUSYBOX} mount --bind "$1" "$2" && shift 2 && exec "$@"`;
  return [BUSYBOX, 'unshare', '-m', '--propagation', 'private', BUSYBOX, 'sh', '-c', bindThenRun, 'sh', source, target, ...then];
}

/** setup() for a run as USER: the directories on the way and the token are USER's to read. */
function setupForUser() {
  const made = setup();
  chmodSync(made.root, 0o755);
  chownSync(made.tokenFile, USER, USER);
  mkdirSync(made.dest);
  chownSync(made.dest, USER, USER);
  return made;
}

const REV_A = 'a'.repeat(64);
const REV_B = 'b1'.repeat(32);
const FIRST: BundleInput = {
  revision: REV_A,
  files: [
    { path: 'app.conf', mode: 0o640, data: 'port = 8080\n' },
    { path: 'conf.d/site one.conf', mode: 0o600, data: 'server { listen 80; }\n' },
    { path: 'bin/start hook.sh', mode: 0o755, data: '#!/bin/sh\necho hook\n' },
  ],
};
// Prints its own pid: equal to the pid the test spawned only when the script exec'd it.
const SHOW_PID = ['sh', '-c', 'echo "pid=$$"; cat "$CONFHUB_DEST/app.conf"'];

describe('confhub-init.sh under busybox', () => {
  it('when confhub becomes ready, then the files are installed with the manifest bytes and modes and the command is exec’d in its place', async () => {
    const { dest, env } = setup();
    confhub.notReadyFor = 2;
    confhub.current = FIRST;
    const run = await runInit(env, SHOW_PID);
    expect(run.stderr).toContain('confhub not ready: HTTP 503');
    expect(run.code).toBe(0);
    expect(confhub.readyz).toBe(3);
    expect(run.stdout).toBe(`pid=${run.pid}\nport = 8080\n`);
    for (const f of FIRST.files) {
      expect(readFileSync(join(dest, f.path), 'utf8')).toBe(f.data);
      expect(statSync(join(dest, f.path)).mode & 0o7777).toBe(f.mode);
    }
    // No temp directory or file is left behind.
    expect(readdirSync(dest).sort()).toEqual(['.confhub-revision', '.confhub-revision.files', 'app.conf', 'bin', 'conf.d']);
    expect(readdirSync(join(dest, 'conf.d'))).toEqual(['site one.conf']);
  });

  it('when confhub is not ready, then the waits grow from 1 s doubling to 10 s, each a random part of its bound', async () => {
    const { env } = setup();
    confhub.notReadyFor = 5;
    confhub.current = FIRST;
    const run = await runInit({ ...env, CONFHUB_TIMEOUT: '120' }, SHOW_PID);
    expect(run.code, run.stderr).toBe(0);
    const waits = [...run.stderr.matchAll(/retrying in (\d+\.\d{3}) s \(a random part of up to (\d+) s\)/g)].map((m) => ({
      s: Number(m[1]),
      bound: Number(m[2]),
    }));
    expect(waits.map((w) => w.bound)).toEqual([1, 2, 4, 8, 10]);
    for (const w of waits) {
      expect(w.s).toBeGreaterThanOrEqual(0);
      expect(w.s).toBeLessThanOrEqual(w.bound);
    }
    // Full jitter: the waits are drawn, not the bounds themselves, and not all alike.
    expect(waits.some((w) => w.s !== w.bound)).toBe(true);
    expect(new Set(waits.map((w) => w.s)).size).toBeGreaterThan(1);
  }, 60_000);

  it('when installed, then the revision is in the state file and the instance checks in with it', async () => {
    const { dest, env } = setup();
    confhub.current = FIRST;
    const run = await runInit(env, ['sh', '-c', 'cat "$CONFHUB_DEST/.confhub-revision"']);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`${REV_A}\n`);
    expect(readFileSync(join(dest, '.confhub-revision'), 'utf8')).toBe(`${REV_A}\n`);
    expect(confhub.checkins).toEqual([{ authorization: `Bearer ${TOKEN}`, contentType: 'application/json', body: { revision: REV_A, instance: hostname() } }]);

    const stateFile = join(setup().root, 'state', 'rev');
    const named = await runInit({ ...env, CONFHUB_INSTANCE: 'web-1.example:2', CONFHUB_STATE_FILE: stateFile }, ['sh', '-c', 'true']);
    expect(named.code).toBe(0);
    expect(readFileSync(stateFile, 'utf8')).toBe(`${REV_A}\n`);
    expect(confhub.checkins[1]?.body).toEqual({ revision: REV_A, instance: 'web-1.example:2' });
  });

  it('when the check-in fails, then the command starts anyway, with a warning', async () => {
    const { dest, env } = setup();
    confhub.current = FIRST;
    confhub.checkinStatus = 500;
    const run = await runInit(env, SHOW_PID);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe(`pid=${run.pid}\nport = 8080\n`);
    expect(run.stderr).toContain(`warning: check-in of revision ${REV_A} failed (HTTP 500); starting anyway`);
    expect(readFileSync(join(dest, '.confhub-revision'), 'utf8')).toBe(`${REV_A}\n`);
  });

  it('when the bundle request answers 200 with an HTML page, then nothing is installed and the script fails (78)', async () => {
    const { dest, env } = setup();
    confhub.current = FIRST;
    confhub.bundlePage = '<!doctype html><html><body><h1>Sign in</h1></body></html>\n';
    const run = await runInit({ ...env, CONFHUB_TIMEOUT: '1' }, SHOW_PID);
    expect(run.code).toBe(78);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('bundle of target web: not a tar archive');
    expect(readdirSync(dest)).toEqual([]);
  });

  it.each([
    ['in the middle of a file', 2048],
    ['after MANIFEST and REVISION', 1536],
  ])('when the download is cut off %s, then nothing is installed and the script fails (78)', async (_where, bytes) => {
    const { dest, env } = setup();
    confhub.current = FIRST;
    confhub.truncateBundleAt = bytes;
    const run = await runInit({ ...env, CONFHUB_TIMEOUT: '1' }, SHOW_PID);
    expect(run.code).toBe(78);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('bundle of target web:');
    expect(readdirSync(dest)).toEqual([]);
    expect(confhub.checkins).toEqual([]);
  });

  it('when a file of the bundle differs from its MANIFEST checksum, then nothing is installed and the script fails after the timeout', async () => {
    const { dest, env } = setup();
    confhub.current = FIRST;
    expect((await runInit(env, ['sh', '-c', 'true'])).code).toBe(0);
    const before = snapshot(dest);

    confhub.current = {
      revision: REV_B,
      files: [
        { path: 'app.conf', mode: 0o600, data: 'port = 9090\n' },
        { path: 'conf.d/site one.conf', mode: 0o600, data: 'server { listen 81; }\n', tampered: 'server { listen 6666; }\n' },
        { path: 'new.conf', mode: 0o644, data: 'new\n' },
      ],
    };
    const run = await runInit({ ...env, CONFHUB_TIMEOUT: '2' }, SHOW_PID);
    expect(run.code).toBe(78);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('checksum mismatch: conf.d/site one.conf');
    expect(run.stderr).toContain('no good bundle of target web within 2 s');
    expect(confhub.bundleRequests).toBeGreaterThan(1);
    expect(snapshot(dest)).toEqual(before);
    expect(confhub.checkins).toHaveLength(1);
  });

  it.each([
    ['../x', 'files/../x'],
    ['/etc/x', 'files/etc/x'],
    ['conf.d/./x', 'files/conf.d/x'],
  ])('when the MANIFEST names %s, then nothing is installed', async (manifestPath, archiveName) => {
    const { root, dest, env } = setup();
    confhub.current = { ...FIRST, extra: [{ manifestPath, archiveName, data: 'escaped\n' }] };
    const run = await runInit({ ...env, CONFHUB_TIMEOUT: '1' }, SHOW_PID);
    expect(run.code).toBe(78);
    expect(run.stderr).toContain(`path: ${manifestPath}`);
    expect(readdirSync(dest)).toEqual([]);
    expect(readdirSync(root).sort()).toEqual(['dest', 'token']);
  });

  it('when the archive holds a symlink, then nothing is extracted through it and nothing is installed', async () => {
    const { root, dest, env } = setup();
    const outside = join(root, 'outside');
    mkdirSync(outside);
    confhub.current = {
      ...FIRST,
      raw: [
        { name: 'files/escape', mode: 0o777, symlinkTo: outside },
        { name: 'files/escape/planted', mode: 0o644, data: Buffer.from('planted\n') },
      ],
    };
    const run = await runInit({ ...env, CONFHUB_TIMEOUT: '1' }, SHOW_PID);
    expect(run.code).toBe(78);
    expect(run.stderr).toContain('an entry is not a regular file or directory');
    expect(readdirSync(outside)).toEqual([]);
    expect(readdirSync(dest)).toEqual([]);
  });

  it('when the archive holds a hard link to a file outside, then it is refused and nothing is installed', async () => {
    const { root, dest, env } = setup();
    const secret = join(root, 'host-secret');
    writeFileSync(secret, 'host secret\n');
    // busybox tar -tv lists a hard link as a regular file ("-rw-r--r-- … files/leak -> /…") and
    // would link the outside file into the temp dir, which the MANIFEST then names.
    confhub.current = {
      ...FIRST,
      extra: [{ manifestPath: 'leak', archiveName: 'files/unused', data: 'host secret\n' }],
      raw: [{ name: 'files/leak', mode: 0o644, hardlinkTo: secret }],
    };
    const run = await runInit({ ...env, CONFHUB_TIMEOUT: '1' }, SHOW_PID);
    expect(run.code).toBe(78);
    expect(run.stderr).toContain('an entry is not a regular file or directory');
    expect(readdirSync(dest)).toEqual([]);
    expect(statSync(secret).nlink).toBe(1);
  });

  it.each(['fifo', 'char'] as const)('when the archive holds a %s, then it is refused and nothing is installed', async (special) => {
    const { dest, env } = setup();
    confhub.current = {
      ...FIRST,
      extra: [{ manifestPath: 'odd', archiveName: 'files/unused', data: '' }],
      raw: [{ name: 'files/odd', mode: 0o644, special }],
    };
    const run = await runInit({ ...env, CONFHUB_TIMEOUT: '1' }, SHOW_PID);
    expect(run.code).toBe(78);
    expect(run.stderr).toContain('an entry is not a regular file or directory');
    expect(readdirSync(dest)).toEqual([]);
  });

  it('when the MANIFEST asks for a setuid, setgid or sticky mode, then nothing is installed', async () => {
    const { dest, env } = setup();
    confhub.current = { revision: REV_A, files: [...FIRST.files, { path: 'bin/suid', mode: 0o4755, data: '#!/bin/sh\n' }] };
    const run = await runInit({ ...env, CONFHUB_TIMEOUT: '1' }, SHOW_PID);
    expect(run.code).toBe(78);
    expect(run.stderr).toContain("the MANIFEST's mode of bin/suid is not 0 and 3 octal digits");
    expect(readdirSync(dest)).toEqual([]);
  });

  it('when stopped with SIGTERM while it waits, then it exits 143 and leaves no temp directory', async () => {
    const { dest, env } = setup();
    // Ready, but the target is not applied yet: every attempt makes a temp directory and retries.
    const started = startInit({ ...env, CONFHUB_TIMEOUT: '600' }, SHOW_PID);
    await eventually('the script has asked for the bundle', () => confhub.bundleRequests >= 1);
    process.kill(started.pid, 'SIGTERM');
    const run = await started.done;
    expect(run.code).toBe(143);
    expect(run.stdout).toBe('');
    expect(readdirSync(dest)).toEqual([]);
  });

  it('when stopped with SIGTERM while the bundle is downloading, then it ends the download, exits 143 and leaves no temp entry with the bundle', async () => {
    const { dest, env } = setup();
    confhub.current = FIRST;
    confhub.stallBundle = true;
    const started = startInit({ ...env, CONFHUB_TIMEOUT: '600' }, SHOW_PID);
    const temps = () => (existsSync(dest) ? readdirSync(dest).filter((name) => name.startsWith('.confhub-init.')) : []);
    await eventually('the bundle is being written into the temp dir', () => temps().some((name) => existsSync(join(dest, name, 'bundle.tar'))));
    process.kill(started.pid, 'SIGTERM');
    const run = await started.done;
    expect(run.code).toBe(143);
    expect(run.stdout).toBe('');
    expect(temps()).toEqual([]);
    // wget was ended with the script, not left running on its own.
    await eventually('the download connection is closed', () => confhub.bundleClosed === true);
  });

  it('when the bundle takes longer than a short request, then it may use all of CONFHUB_TIMEOUT that is left', async () => {
    const { dest, env } = setup();
    confhub.current = FIRST;
    confhub.bundleDelayMs = 11_000;
    const run = await runInit({ ...env, CONFHUB_TIMEOUT: '30' }, SHOW_PID);
    expect(run.code, run.stderr).toBe(0);
    expect(confhub.bundleRequests).toBe(1);
    expect(readFileSync(join(dest, 'app.conf'), 'utf8')).toBe('port = 8080\n');
  }, 45_000);

  it('when temp entries of a killed run are older than 10 minutes, then they are swept; younger ones (another container at work) stay', async () => {
    const { root, dest, env } = setup();
    const stateDir = join(root, 'state');
    mkdirSync(join(dest, '.confhub-init.old111'), { recursive: true });
    writeFileSync(join(dest, '.confhub-init.old111', 'bundle.tar'), 'secrets');
    writeFileSync(join(dest, '.confhub-init.old222'), 'half a file');
    mkdirSync(join(dest, '.confhub-init.new333'));
    mkdirSync(stateDir);
    writeFileSync(join(stateDir, '.confhub-init.old444'), 'a revision');
    // Beside a file an earlier run installed.
    writeFileSync(join(stateDir, 'rev.files'), `dest=${dest}\nconf.d/site one.conf\n`);
    mkdirSync(join(dest, 'conf.d'));
    writeFileSync(join(dest, 'conf.d', '.confhub-init.old555'), 'half a file');
    writeFileSync(join(dest, 'old-but-not-ours'), 'kept');
    const old = new Date(Date.now() - 20 * 60_000);
    for (const path of [
      join(dest, '.confhub-init.old111'),
      join(dest, '.confhub-init.old222'),
      join(stateDir, '.confhub-init.old444'),
      join(dest, 'conf.d', '.confhub-init.old555'),
      join(dest, 'old-but-not-ours'),
    ]) {
      utimesSync(path, old, old);
    }
    confhub.current = FIRST;
    const run = await runInit({ ...env, CONFHUB_STATE_FILE: join(stateDir, 'rev') }, SHOW_PID);
    expect(run.code, run.stderr).toBe(0);
    expect(readdirSync(dest).filter((name) => name.includes('confhub-init') || name.startsWith('old'))).toEqual(['.confhub-init.new333', 'old-but-not-ours']);
    expect(readdirSync(stateDir).sort()).toEqual(['rev', 'rev.files']);
    expect(readdirSync(join(dest, 'conf.d'))).toEqual(['site one.conf']);
  });

  it('when an install stops half way, then the state file says so, and with CONFHUB_REQUIRED=0 the command starts on the files as they are, warned', async () => {
    const { dest, env } = setup();
    confhub.current = FIRST;
    expect((await runInit(env, ['sh', '-c', 'true'])).code).toBe(0);
    // A directory where the second file of the next bundle goes: app.conf is installed, then it fails.
    rmSync(join(dest, 'conf.d', 'site one.conf'));
    mkdirSync(join(dest, 'conf.d', 'site one.conf'));
    confhub.current = {
      revision: REV_B,
      files: [{ path: 'extra.conf', mode: 0o644, data: 'extra\n' }, { ...FIRST.files[0]!, data: 'port = 9090\n' }, ...FIRST.files.slice(1)],
    };
    const failed = await runInit(env, SHOW_PID);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('is a directory');
    expect(readFileSync(join(dest, 'app.conf'), 'utf8')).toBe('port = 9090\n');
    expect(readFileSync(join(dest, '.confhub-revision'), 'utf8')).toBe(`installing ${REV_B}\n`);

    const down = { ...env, CONFHUB_URL: `http://127.0.0.1:${await freePort()}`, CONFHUB_TIMEOUT: '1', CONFHUB_REQUIRED: '0' };
    const run = await runInit(down, SHOW_PID);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`pid=${run.pid}\nport = 9090\n`);
    expect(run.stderr).toContain(`the install of revision ${REV_B} was interrupted`);
    expect(run.stderr).not.toContain('no files were ever installed');

    // A file the interrupted run installed goes when the next bundle does not hold it.
    rmSync(join(dest, 'conf.d', 'site one.conf'), { recursive: true });
    confhub.current = FIRST;
    const fixed = await runInit(env, SHOW_PID);
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(existsSync(join(dest, 'extra.conf'))).toBe(false);
    expect(readFileSync(join(dest, '.confhub-revision'), 'utf8')).toBe(`${REV_A}\n`);
  });

  it('when a file leaves the bundle, then the file installed earlier is removed; files the script never installed stay', async () => {
    const { root, dest, env } = setup();
    confhub.current = FIRST;
    expect((await runInit(env, ['sh', '-c', 'true'])).code).toBe(0);
    const list = join(dest, '.confhub-revision.files');
    expect(readFileSync(list, 'utf8')).toBe(`dest=${dest}\napp.conf\nconf.d/site one.conf\nbin/start hook.sh\n`);
    writeFileSync(join(dest, 'conf.d', 'keep.conf'), 'by hand\n');
    writeFileSync(join(dest, 'other.conf'), 'by hand\n');

    confhub.current = { revision: REV_B, files: [FIRST.files[0]!, { path: 'conf.d/new.conf', mode: 0o644, data: 'new\n' }] };
    const run = await runInit(env, ['sh', '-c', 'ls "$CONFHUB_DEST/conf.d"']);
    expect(run.code, run.stderr).toBe(0);
    // Gone before the command starts.
    expect(run.stdout).toBe('keep.conf\nnew.conf\n');
    expect(run.stderr).toContain('removed conf.d/site one.conf: it is no longer in the bundle');
    expect(existsSync(join(dest, 'bin', 'start hook.sh'))).toBe(false);
    expect(readFileSync(join(dest, 'conf.d', 'keep.conf'), 'utf8')).toBe('by hand\n');
    expect(readFileSync(join(dest, 'other.conf'), 'utf8')).toBe('by hand\n');
    expect(readFileSync(list, 'utf8')).toBe(`dest=${dest}\napp.conf\nconf.d/new.conf\n`);
    expect(readFileSync(join(dest, '.confhub-revision'), 'utf8')).toBe(`${REV_B}\n`);

    // A list naming a path outside DEST, or one kept for another DEST, removes nothing.
    writeFileSync(join(root, 'outside'), 'outside\n');
    writeFileSync(list, `dest=${dest}\n../outside\n/${join(root, 'outside')}\nconf.d/new.conf\n`);
    confhub.current = { revision: REV_A, files: [FIRST.files[0]!] };
    expect((await runInit(env, ['sh', '-c', 'true'])).code).toBe(0);
    expect(readFileSync(join(root, 'outside'), 'utf8')).toBe('outside\n');
    expect(existsSync(join(dest, 'conf.d', 'new.conf'))).toBe(false);
    writeFileSync(join(dest, 'conf.d', 'new.conf'), 'by hand\n');
    writeFileSync(list, `dest=${join(root, 'elsewhere')}\nconf.d/new.conf\n`);
    expect((await runInit(env, ['sh', '-c', 'true'])).code).toBe(0);
    expect(existsSync(join(dest, 'conf.d', 'new.conf'))).toBe(true);
  });

  it('when confhub refuses the token (401), then the script exits 77 at once and never prints the token', async () => {
    const wrong = 'wrong-s3cret-7d0e1f';
    const { dest, env } = setup(`${wrong}\r\n`);
    confhub.current = FIRST;
    const run = await runInit(env, SHOW_PID);
    expect(run.code).toBe(77);
    expect(run.stderr).toContain('HTTP 401');
    expect(confhub.bundleRequests).toBe(1);
    expect(`${run.stdout}${run.stderr}`).not.toContain(wrong);
    expect(readdirSync(dest)).toEqual([]);
  });

  it('when confhub cannot be reached and files are required, then the script exits 78 once CONFHUB_TIMEOUT has passed', async () => {
    const { env } = setup();
    const run = await runInit({ ...env, CONFHUB_URL: `http://127.0.0.1:${await freePort()}`, CONFHUB_TIMEOUT: '3' }, SHOW_PID);
    expect(run.code).toBe(78);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/confhub-init: confhub at http:\/\/127\.0\.0\.1:\d+ was not ready within 3 s/);
    // Whole seconds from `date +%s`: the wait is more than CONFHUB_TIMEOUT - 1.
    expect(run.ms).toBeGreaterThanOrEqual(2000);
  });

  it('when confhub cannot be reached and files are not required, then the command starts with the files of the earlier install', async () => {
    const { env } = setup();
    confhub.current = FIRST;
    expect((await runInit(env, ['sh', '-c', 'true'])).code).toBe(0);

    const down = { ...env, CONFHUB_URL: `http://127.0.0.1:${await freePort()}`, CONFHUB_TIMEOUT: '1', CONFHUB_REQUIRED: '0' };
    const run = await runInit(down, SHOW_PID);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`pid=${run.pid}\nport = 8080\n`);
    expect(run.stderr).toContain(`with the files of revision ${REV_A} installed earlier (CONFHUB_REQUIRED=0)`);

    // A refused token starts it as well when there are earlier files.
    const refused = await runInit({ ...env, CONFHUB_REQUIRED: '0', CONFHUB_TOKEN_FILE: setup('revoked-token\n').tokenFile }, SHOW_PID);
    expect(refused.code).toBe(0);
    expect(refused.stdout).toBe(`pid=${refused.pid}\nport = 8080\n`);
    expect(refused.stderr).toContain('HTTP 401');
  });

  it('when files are not required and none were ever installed, then the command starts anyway with a warning', async () => {
    const { env } = setup();
    const run = await runInit({ ...env, CONFHUB_URL: `http://127.0.0.1:${await freePort()}`, CONFHUB_TIMEOUT: '1', CONFHUB_REQUIRED: '0' }, [
      'sh',
      '-c',
      'echo started',
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('started\n');
    expect(run.stderr).toContain('no files were ever installed');
  });

  it.each(['CONFHUB_URL', 'CONFHUB_TARGET', 'CONFHUB_TOKEN_FILE', 'CONFHUB_DEST'])('when %s is missing, then the script exits 64 naming it', async (name) => {
    const { env } = setup();
    const run = await runInit({ ...env, [name]: undefined }, SHOW_PID);
    expect(run.code).toBe(64);
    expect(run.stderr).toMatch(new RegExp(`^confhub-init: ${name} is required`));
    expect(confhub.readyz + confhub.bundleRequests).toBe(0);
  });

  it.each([
    ['CONFHUB_URL', 'http://127.0.0.1:1/prefix'],
    ['CONFHUB_URL', 'ftp://127.0.0.1:1'],
    ['CONFHUB_TARGET', '../web'],
    ['CONFHUB_TIMEOUT', '10s'],
    ['CONFHUB_TIMEOUT', '010'],
    ['CONFHUB_REQUIRED', 'yes'],
    ['CONFHUB_INSTANCE', 'web"1'],
    ['CONFHUB_TOKEN_FILE', '/nonexistent/token'],
  ])('when %s is %s, then the script exits 64 naming it', async (name, value) => {
    const { env } = setup();
    const run = await runInit({ ...env, [name]: value }, SHOW_PID);
    expect(run.code).toBe(64);
    expect(run.stderr).toMatch(new RegExp(`^confhub-init: ${name}`));
    expect(confhub.readyz).toBe(0);
  });

  it('when the environment names an HTTP proxy, then confhub is still asked directly: the token and the bundle never go through the proxy', async () => {
    const { dest, env } = setup();
    confhub.current = FIRST;
    const proxied: string[] = [];
    const proxy = createServer((req, res) => {
      proxied.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('proxy');
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      // busybox wget ignores no_proxy: only -Y off keeps it away from the proxy.
      const run = await runInit({ ...env, http_proxy: proxyUrl, HTTP_PROXY: proxyUrl, no_proxy: '127.0.0.1', CONFHUB_TIMEOUT: '3' }, SHOW_PID);
      expect(run.code, run.stderr).toBe(0);
      expect(proxied).toEqual([]);
      expect(readFileSync(join(dest, 'app.conf'), 'utf8')).toBe('port = 8080\n');
      expect(confhub.checkins).toHaveLength(1);
    } finally {
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });

  it('when no command is given, then the script exits 64', async () => {
    const run = await runInit(setup().env, []);
    expect(run.code).toBe(64);
    expect(run.stderr).toContain('no command given');
  });

  it('when the command starts, then no token is in its environment, not even one the environment held', async () => {
    const { env } = setup();
    confhub.current = FIRST;
    const run = await runInit({ ...env, CONFHUB_TOKEN: 'env-token-1', confhub_token: 'env-token-2' }, ['sh', '-c', 'echo "[$CONFHUB_TOKEN] [$confhub_token]"']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('[] []\n');
  });

  it('when the token is only in the environment, then it is refused: the token file is required', async () => {
    const { env } = setup();
    const run = await runInit({ ...env, CONFHUB_TOKEN_FILE: undefined, CONFHUB_TOKEN: TOKEN }, SHOW_PID);
    expect(run.code).toBe(64);
    expect(run.stderr).toContain('CONFHUB_TOKEN_FILE is required');
    expect(run.stderr).not.toContain(TOKEN);
    expect(confhub.readyz + confhub.bundleRequests).toBe(0);
  });

  it('when a destination file is a single-file bind mount, then it is written in place and keeps its inode', async () => {
    const { root, dest, env } = setup();
    mkdirSync(dest);
    writeFileSync(join(dest, 'app.conf'), 'mount point\n');
    const mounted = join(root, 'mounted.conf');
    writeFileSync(mounted, 'old\n', { mode: 0o644 });
    const inode = statSync(mounted).ino;
    confhub.current = FIRST;
    const run = await runInit(env, ['sh', '-c', 'cat "$CONFHUB_DEST/app.conf"'], bindMounted(mounted, join(dest, 'app.conf')));
    expect(run.stderr).not.toContain('cannot install');
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('port = 8080\n');
    expect(readFileSync(mounted, 'utf8')).toBe('port = 8080\n');
    expect(statSync(mounted).ino).toBe(inode);
    expect(statSync(mounted).mode & 0o7777).toBe(0o640);
    // The mount point itself was never written, and no temp file was left beside it.
    expect(readFileSync(join(dest, 'app.conf'), 'utf8')).toBe('mount point\n');
    expect(readdirSync(dest).filter((name) => name.startsWith('.confhub-init'))).toEqual([]);
    expect(existsSync(join(dest, 'conf.d', 'site one.conf'))).toBe(true);
  });
  it('when the script runs as a user and a bind-mounted file has a mode without owner write (0440), then every later run still writes it in place', async () => {
    const { root, dest, env } = setupForUser();
    writeFileSync(join(dest, 'app.conf'), 'mount point\n');
    const mounted = join(root, 'mounted.conf');
    writeFileSync(mounted, 'old\n', { mode: 0o644 });
    chownSync(mounted, USER, USER);
    const inode = statSync(mounted).ino;
    const readOnly = (data: string, revision: string): BundleInput => ({ revision, files: [{ path: 'app.conf', mode: 0o440, data }] });
    const prefix = bindMounted(mounted, join(dest, 'app.conf'), asUser);

    confhub.current = readOnly('port = 8080\n', REV_A);
    const first = await runInit(env, ['sh', '-c', 'id -u; cat "$CONFHUB_DEST/app.conf"'], prefix);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toBe(`${USER}\nport = 8080\n`);
    expect(statSync(mounted).mode & 0o7777).toBe(0o440);

    confhub.current = readOnly('port = 9090\n', REV_B);
    const second = await runInit(env, ['sh', '-c', 'cat "$CONFHUB_DEST/app.conf"'], prefix);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toBe('port = 9090\n');
    expect(readFileSync(mounted, 'utf8')).toBe('port = 9090\n');
    expect(statSync(mounted).ino).toBe(inode);
    expect(statSync(mounted).mode & 0o7777).toBe(0o440);
  });

  it("when the script runs as a user and a bind-mounted file is root's and writable by all, then it is written in place and the refused chmod is only a warning", async () => {
    const { root, dest, env } = setupForUser();
    writeFileSync(join(dest, 'app.conf'), 'mount point\n');
    const mounted = join(root, 'mounted.conf');
    writeFileSync(mounted, 'old\n');
    chmodSync(mounted, 0o666);
    confhub.current = FIRST;
    const run = await runInit(env, ['sh', '-c', 'cat "$CONFHUB_DEST/app.conf"'], bindMounted(mounted, join(dest, 'app.conf'), asUser));
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('port = 8080\n');
    expect(readFileSync(mounted, 'utf8')).toBe('port = 8080\n');
    // The host's file keeps the host's mode; the log says so.
    expect(statSync(mounted).mode & 0o7777).toBe(0o666);
    expect(run.stderr).toContain('its mode stays 666: chmod 0640 was refused');
    expect(readFileSync(join(dest, '.confhub-revision'), 'utf8')).toBe(`${REV_A}\n`);
  });

  it('when a rename fails for another reason than a bind mount, then the script fails (1) even when a path holds the word "busy"', async () => {
    const { root, env } = setupForUser();
    // A sticky directory: the user may add files but not rename over root's app.conf (EPERM).
    const dest = join(root, 'busy', 'dest');
    mkdirSync(dest, { recursive: true });
    chmodSync(dest, 0o1777);
    writeFileSync(join(dest, 'app.conf'), 'old\n');
    chmodSync(join(dest, 'app.conf'), 0o666);
    confhub.current = FIRST;
    const run = await runInit({ ...env, CONFHUB_DEST: dest }, SHOW_PID, asUser);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('cannot install app.conf:');
    expect(run.stdout).toBe('');
    // Not taken for a bind mount: the file was not written in place.
    expect(readFileSync(join(dest, 'app.conf'), 'utf8')).toBe('old\n');
  });
  it('when a file is replaced, then it keeps its owner, and a new file gets the owner of its directory', async () => {
    const { dest, env } = setup();
    mkdirSync(join(dest, 'conf.d'), { recursive: true });
    chownSync(dest, 1001, 1001);
    chownSync(join(dest, 'conf.d'), 1002, 1003);
    writeFileSync(join(dest, 'app.conf'), 'old\n');
    chownSync(join(dest, 'app.conf'), USER, USER);
    confhub.current = FIRST;
    const run = await runInit(env, SHOW_PID);
    expect(run.code, run.stderr).toBe(0);
    const owner = (path: string) => {
      const st = statSync(join(dest, path));
      return `${st.uid}:${st.gid}`;
    };
    expect(readFileSync(join(dest, 'app.conf'), 'utf8')).toBe('port = 8080\n');
    expect(owner('app.conf')).toBe(`${USER}:${USER}`);
    expect(statSync(join(dest, 'app.conf')).mode & 0o7777).toBe(0o640);
    expect(owner('conf.d/site one.conf')).toBe('1002:1003');
    // bin/ is new: made by the script (root), so its file is root's.
    expect(owner('bin/start hook.sh')).toBe('0:0');
  });
});
