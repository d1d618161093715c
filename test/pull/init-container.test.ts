/**
 * confhub-init.sh as a busybox container's entrypoint against a whole confhub, on a private
 * dockerd with --network host: the container waits while confhub is not up, installs what the
 * worker wrote (bytes and modes), checks in and execs its command as PID 1; a tampered bundle
 * installs nothing; tokens are held to their target; confhub down with CONFHUB_REQUIRED=0 starts
 * with the earlier files, with 1 exits 78; a single-file bind mount keeps its inode.
 */
import { createServer, request, type Server } from 'node:http';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Confhub, eventually, startConfhub } from '../support/confhub.js';
import { BUSYBOX_IMAGE, ensureBusyboxImage, SKIP_DOCKERD, startDockerd, type PrivateDockerd } from '../support/engines.js';
import { freePort } from '../support/ports.js';

const SCRIPT = new URL('../../init/confhub-init.sh', import.meta.url).pathname;
const SYSTEM_INI = [
  '[sync]\noutput_roots = @DIR@\ndebounce_min_ms = 30',
  '[target:web]\nsections = cockpit, gitea\nformat = ini\noutput = @DIR@/out/web/app.ini\nmode = 0640\nreload = none\nhealth = none',
  '[target:web-json]\nsections = cockpit\nformat = json\noutput = @DIR@/out/web/conf/app.json\nreload = none\nhealth = none\npart_of = web',
  '[target:single]\nsections = cockpit\nformat = ini\noutput = @DIR@/out/single/single.ini\nmode = 0644\nreload = none\nhealth = none',
].join('\n\n');

let engine: PrivateDockerd;
let docker: Docker;
let work: string;
let port: number;
let ch: Confhub | undefined;
let dir: string;
const tokens: Record<string, { id: string; token: string; file: string }> = {};
let names = 0;

async function start(): Promise<Confhub> {
  ch = await startConfhub({
    systemIni: SYSTEM_INI,
    env: { CONFHUB_PORT: String(port), CONFHUB_HOST: '127.0.0.1' },
    ...(dir ? { restartIn: dir } : {}),
  });
  dir = ch.dir;
  await eventually('confhub is ready', async () => (await fetch(`${ch!.url}/readyz`)).status === 200, 30_000);
  return ch;
}

/** Stops confhub and keeps its directory for the next start. */
async function stop(): Promise<void> {
  await ch?.server.close();
  ch = undefined;
}

interface Run {
  target: string;
  token: string;
  dest: string;
  command: string;
  env?: Record<string, string>;
  binds?: string[];
  url?: string;
}

async function run({ target, token, dest, command, env = {}, binds = [], url }: Run): Promise<Docker.Container> {
  const out = join(work, 'out');
  mkdirSync(out, { recursive: true });
  const container = await docker.createContainer({
    name: `confhub-init-${process.pid}-${++names}`,
    Image: BUSYBOX_IMAGE,
    Entrypoint: ['/confhub-init.sh'],
    Cmd: ['sh', '-c', command],
    Env: [
      `CONFHUB_URL=${url ?? `http://127.0.0.1:${port}`}`,
      `CONFHUB_TARGET=${target}`,
      'CONFHUB_TOKEN_FILE=/run/confhub/token',
      `CONFHUB_DEST=${dest}`,
      ...Object.entries(env).map(([name, value]) => `${name}=${value}`),
    ],
    HostConfig: {
      NetworkMode: 'host',
      Binds: [`${SCRIPT}:/confhub-init.sh:ro`, `${token}:/run/confhub/token:ro`, `${out}:/out`, ...binds],
    },
  });
  await container.start();
  return container;
}

async function finished(container: Docker.Container): Promise<{ status: number; logs: string }> {
  const { StatusCode } = (await container.wait()) as { StatusCode: number };
  const logs = (await container.logs({ stdout: true, stderr: true })).toString('utf8');
  await container.remove({ force: true });
  return { status: StatusCode, logs };
}

async function makeToken(target: string): Promise<{ id: string; token: string; file: string }> {
  const res = await ch!.api(`/api/v1/targets/${target}/tokens`, { method: 'POST', body: '{}' });
  const made = (await res.json()) as { id: string; token: string };
  const file = join(work, `${target}-${made.id}.token`);
  writeFileSync(file, `${made.token}\n`, { mode: 0o600 });
  return { ...made, file };
}

const fileOf = (name: string) => join(dir, 'out', name);
const modeOf = (path: string) => statSync(path).mode & 0o7777;

describe.skipIf(SKIP_DOCKERD)('confhub-init.sh in a busybox container', () => {
  beforeAll(async () => {
    engine = await startDockerd();
    docker = new Docker({ socketPath: engine.socketPath });
    await ensureBusyboxImage(engine.socketPath);
    work = mkdtempSync(join(tmpdir(), 'confhub-init-ct-'));
    chmodSync(work, 0o755);
    port = await freePort();
    dir = '';
    await start();
    tokens.web = await makeToken('web');
    tokens.single = await makeToken('single');
  }, 120_000);

  afterAll(async () => {
    await stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (work) rmSync(work, { recursive: true, force: true });
    await engine?.stop();
  }, 60_000);

  it('when the container starts before confhub is up, then it waits, installs the files the worker wrote and execs its command as PID 1, and the instance checks in', async () => {
    await stop();
    const dest = join(work, 'dest-web');
    const container = await run({
      target: 'web',
      token: tokens.web!.file,
      dest: '/dest',
      binds: [`${dest}:/dest`],
      command: 'echo "pid=$$ host=$(hostname)" > /out/web-started; exec sleep 600',
    });
    // confhub is down: the script waits, the command has not run.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(existsSync(join(work, 'out', 'web-started'))).toBe(false);
    expect((await container.inspect()).State.Running).toBe(true);
    await start();
    await eventually('the command ran', async () => existsSync(join(work, 'out', 'web-started')), 60_000);
    const started = readFileSync(join(work, 'out', 'web-started'), 'utf8');
    expect(started).toMatch(/^pid=1 /);
    for (const name of ['app.ini', 'conf/app.json']) {
      expect(readFileSync(join(dest, name)).equals(readFileSync(fileOf(`web/${name}`))), name).toBe(true);
      expect(modeOf(join(dest, name)), name).toBe(modeOf(fileOf(`web/${name}`)));
    }
    const revision = readFileSync(join(dest, '.confhub-revision'), 'utf8').trim();
    const host = /host=(\S+)/.exec(started)![1]!;
    const status = (await (await ch!.api('/api/v1/sync/status')).json()) as { targets: { target: string; instances: unknown[] }[] };
    expect(status.targets.find((t) => t.target === 'web')!.instances).toEqual([expect.objectContaining({ instance: host, revision, current: true })]);
    await container.remove({ force: true });
  }, 120_000);

  it('when the bundle is tampered with on the way, then nothing is installed and the script fails (78) naming the checksum', async () => {
    const upstream = `http://127.0.0.1:${port}`;
    const proxyPort = await freePort();
    // Flips the first byte of files/app.ini's data; the tar and the MANIFEST are left as they were.
    const proxy: Server = createServer((req, res) => {
      const forward = request(`${upstream}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => chunks.push(chunk));
        answer.on('end', () => {
          const body = Buffer.concat(chunks);
          if (req.url?.endsWith('/bundle') && answer.statusCode === 200) {
            const at = body.indexOf('files/app.ini\0');
            body[at + 512] = body[at + 512]! ^ 0x20;
          }
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          res.end(body);
        });
      });
      req.pipe(forward);
    });
    await new Promise<void>((resolve) => proxy.listen(proxyPort, '127.0.0.1', resolve));
    try {
      const dest = join(work, 'dest-tampered');
      const { status, logs } = await finished(
        await run({
          target: 'web',
          token: tokens.web!.file,
          dest: '/dest',
          binds: [`${dest}:/dest`],
          url: `http://127.0.0.1:${proxyPort}`,
          env: { CONFHUB_TIMEOUT: '4' },
          command: 'echo ran > /out/tampered-ran',
        }),
      );
      expect(status).toBe(78);
      expect(logs).toContain('checksum mismatch: app.ini');
      expect(existsSync(join(work, 'out', 'tampered-ran'))).toBe(false);
      expect(readdirSync(dest)).toEqual([]);
    } finally {
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  }, 60_000);

  it("when the token is made up, revoked, or another target's, then the script exits 77 at once and installs nothing", async () => {
    const bogus = join(work, 'bogus.token');
    writeFileSync(bogus, 'cht_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n');
    const revoked = await makeToken('web');
    expect((await ch!.api(`/api/v1/targets/web/tokens/${revoked.id}`, { method: 'DELETE' })).status).toBe(200);
    for (const [token, why] of [
      [bogus, 'made up'],
      [revoked.file, 'revoked'],
      [tokens.single!.file, "single's"],
    ] as const) {
      const dest = join(work, `dest-refused-${revoked.id}-${why.replace(/\W/g, '')}`);
      const { status, logs } = await finished(
        await run({ target: 'web', token, dest: '/dest', binds: [`${dest}:/dest`], command: 'echo ran > /out/refused-ran' }),
      );
      expect(status, why).toBe(77);
      expect(logs, why).toContain('HTTP 401');
      expect(logs).not.toContain('cht_');
      expect(readdirSync(dest), why).toEqual([]);
    }
    expect(existsSync(join(work, 'out', 'refused-ran'))).toBe(false);
  }, 60_000);

  it('when the target is a single-file bind mount, then the file is updated in place: same inode, the new bytes and mode', async () => {
    const file = join(work, 'single.ini');
    writeFileSync(file, 'stale\n', { mode: 0o600 });
    const inode = statSync(file).ino;
    const { status, logs } = await finished(
      await run({ target: 'single', token: tokens.single!.file, dest: '/etc/svc', binds: [`${file}:/etc/svc/single.ini`], command: 'true' }),
    );
    expect(status, logs).toBe(0);
    expect(statSync(file).ino).toBe(inode);
    expect(readFileSync(file).equals(readFileSync(fileOf('single/single.ini')))).toBe(true);
    expect(modeOf(file)).toBe(0o644);
  }, 60_000);

  it('when confhub is down, then with CONFHUB_REQUIRED=0 the command starts with the files installed earlier, and with 1 the script exits 78', async () => {
    // The earlier install, made here so the test stands on its own.
    if (!ch) await start();
    const dest = join(work, 'dest-down');
    const installed = await finished(await run({ target: 'web', token: tokens.web!.file, dest: '/dest', binds: [`${dest}:/dest`], command: 'true' }));
    expect(installed.status, installed.logs).toBe(0);
    const before = readFileSync(join(dest, 'app.ini'));
    expect(before.equals(readFileSync(fileOf('web/app.ini')))).toBe(true);
    await stop();
    const lenient = await finished(
      await run({
        target: 'web',
        token: tokens.web!.file,
        dest: '/dest',
        binds: [`${dest}:/dest`],
        env: { CONFHUB_REQUIRED: '0', CONFHUB_TIMEOUT: '3' },
        command: 'cat /dest/app.ini > /out/down-seen',
      }),
    );
    expect(lenient.status, lenient.logs).toBe(0);
    expect(lenient.logs).toContain('CONFHUB_REQUIRED=0');
    expect(readFileSync(join(work, 'out', 'down-seen'))).toEqual(before);
    const strict = await finished(
      await run({
        target: 'web',
        token: tokens.web!.file,
        dest: '/dest',
        binds: [`${dest}:/dest`],
        env: { CONFHUB_TIMEOUT: '3' },
        command: 'echo ran > /out/strict-ran',
      }),
    );
    expect(strict.status, strict.logs).toBe(78);
    expect(existsSync(join(work, 'out', 'strict-ran'))).toBe(false);
  }, 60_000);
});
