/**
 * The confhub image, end to end, against a private dockerd: built from this checkout with
 * `--network host` (from a local debootstrap base image when no registry image can be pulled),
 * then run the way it is deployed: a data volume, the Docker socket, --network host.
 *
 * The steps share one image, one data directory and one sibling container, so they run in order:
 * first boot → a change that restarts a sibling container and the internal console program →
 * docker stop during an apply → a second start → an upgrade to an image whose template has a new key.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseIni } from '../../src/ini/document.js';
import { BUSYBOX_IMAGE, ensureBusyboxImage, SKIP_DOCKERD, startDockerd, type PrivateDockerd } from '../support/engines.js';
import { buildImage, createConfhubContainer, ensureBaseImage, REPO_ROOT, SKIP_DEBOOTSTRAP } from '../support/image.js';
import { freePort, portIsFree } from '../support/ports.js';
import { eventually } from '../support/wait.js';

const TAG = 'confhub:test';
const UPGRADE_TAG = 'confhub:test-upgrade';
const SIBLING = 'websoft9-git';
const CONSOLE_PORT = 9080;
/** A step starts containers (up to 120 s each on a loaded machine) or builds an image. */
const STEP_TIMEOUT_MS = 300_000;
// TERM is trapped so a restart takes one sleep, not Docker's whole stop timeout (sh is PID 1).
const LOOP = 'trap "exit 0" TERM; while true; do sleep 0.2; done';

/** Docker's multiplexed log stream (8-byte frame headers) as text. */
function demux(buffer: Buffer): string {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const size = buffer.readUInt32BE(offset + 4);
    parts.push(buffer.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(parts).toString('utf8');
}

/** Every file under dir, relative. */
function walk(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? walk(join(dir, entry.name), `${prefix}${entry.name}/`) : [`${prefix}${entry.name}`],
  );
}

const skip = SKIP_DOCKERD ?? SKIP_DEBOOTSTRAP;

describe.skipIf(skip !== undefined)('the confhub image', () => {
  let dockerd: PrivateDockerd;
  let docker: Docker;
  let dataDir: string;
  let apiPort: number;
  let apiKey = '';
  let giteaPassword = '';
  let current: Docker.Container | undefined;
  const log = (line: string): void => {
    if (process.env.CONFHUB_TEST_VERBOSE) console.log(line);
  };

  const base = (): string => `http://127.0.0.1:${apiPort}`;
  const api = (path: string, init: RequestInit = {}): Promise<Response> =>
    fetch(`${base()}/api/v1${path}`, { ...init, headers: { 'x-api-key': apiKey, 'content-type': 'application/json', ...(init.headers ?? {}) } });
  const logsOf = async (container: Docker.Container): Promise<string> =>
    demux((await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer);
  const configText = (): string => readFileSync(join(dataDir, 'config', 'config.ini'), 'utf8');

  async function startConfhub(image: string, name: string): Promise<{ container: Docker.Container; readyMs: number }> {
    const container = await createConfhubContainer(docker, { image, name, dataDir, port: apiPort, dockerd });
    current = container;
    const started = Date.now();
    await container.start();
    for (;;) {
      const ready = await fetch(`${base()}/readyz`).then(
        (res) => res.status === 200,
        () => false,
      );
      if (ready) return { container, readyMs: Date.now() - started };
      const state = (await container.inspect()).State;
      if (!state.Running) throw new Error(`${name} exited with ${state.ExitCode} before /readyz; logs:\n${(await logsOf(container)).slice(-6000)}`);
      if (Date.now() - started > 120_000) throw new Error(`${name} was not ready within 120 s; logs:\n${(await logsOf(container)).slice(-6000)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async function exec(container: Docker.Container, cmd: string[]): Promise<string> {
    const execution = await container.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
    const stream = await execution.start({ hijack: true, stdin: false });
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    const { ExitCode } = await execution.inspect();
    const output = demux(Buffer.concat(chunks));
    if (ExitCode !== 0) throw new Error(`${cmd.join(' ')} exited with ${ExitCode}: ${output}`);
    return output;
  }

  const siblingStartedAt = async (): Promise<string> => (await docker.getContainer(SIBLING).inspect()).State.StartedAt;
  const consoleHealth = async (port: number): Promise<{ pid: number; title: string } | undefined> =>
    fetch(`http://127.0.0.1:${port}/healthz`).then(
      async (res) => (res.ok ? ((await res.json()) as { pid: number; title: string }) : undefined),
      () => undefined,
    );

  beforeAll(async () => {
    dockerd = await startDockerd();
    docker = new Docker({ socketPath: dockerd.socketPath });
    await ensureBusyboxImage(dockerd.socketPath);
    const baseImage = await ensureBaseImage(docker, log);
    await buildImage(docker, { tag: TAG, baseImage, log });
    dataDir = mkdtempSync(join(tmpdir(), 'confhub-volume-'));
    apiPort = await freePort();
    const sibling = await docker.createContainer({ Image: BUSYBOX_IMAGE, name: SIBLING, Cmd: ['sh', '-c', LOOP], HostConfig: { NetworkMode: 'none' } });
    await sibling.start();
  }, 30 * 60_000);

  afterAll(async () => {
    await dockerd?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  it(
    'when started on an empty volume, then it initializes: defaults, keys, passwords, every reachable target, and says once how to read the key',
    async () => {
      expect(await portIsFree(CONSOLE_PORT), `the console's default port ${CONSOLE_PORT} must be free on this host`).toBe(true);
      const { container } = await startConfhub(TAG, 'confhub-first');
      apiKey = (await exec(container, ['confhub', 'apikey', 'show'])).trim();
      expect(apiKey).toMatch(/^[0-9a-f]{64}$/);

      const stored = parseIni(configText());
      for (const section of ['gitea', 'portainer', 'nginx_proxy_manager']) expect(stored.byName.get(section)!.byKey.get('user_pwd')!.value).toMatch(/^enc:v1:/);
      expect(statSync(join(dataDir, 'master.key')).mode & 0o777).toBe(0o600);
      expect(existsSync(join(dataDir, 'history.git'))).toBe(true);
      const settings = (await (await api('/settings/gitea')).json()) as { user_pwd: string };
      expect(settings.user_pwd).toMatch(/^[A-Za-z0-9]{20}$/);
      giteaPassword = settings.user_pwd;
      // Rendered on first boot: the sibling's file and the console's settings.
      expect(readFileSync(join(dataDir, 'services/gitea/conf/app.ini'), 'utf8')).toMatch(/^HTTP_PORT\s*=\s*3000$/m);
      expect(JSON.parse(readFileSync(join(dataDir, 'services/console/console.json'), 'utf8'))).toMatchObject({ console: { port: String(CONSOLE_PORT) } });

      type Init = { phase: string; firstStart: boolean; targets: { target: string; state: string }[] };
      // Ready means the first render is on disk; each target's state follows once its lane has tried its service.
      let init: Init | undefined;
      await eventually('every lane tried its service', async () => {
        init = (await (await api('/init/status')).json()) as Init;
        return init.targets.every((t) => t.state !== 'pending');
      });
      if (!init) throw new Error('no init status');
      expect(init.firstStart).toBe(true);
      expect(init.phase).toBe('waiting_for_services');
      const states = Object.fromEntries(init.targets.map((t) => [t.target, t.state]));
      expect(states).toMatchObject({ gitea: 'initialized', console: 'initialized', cockpit: 'initialized' });
      // No container named websoft9-deployment or websoft9-proxy runs here: those targets wait, the rest is ready.
      expect(states.portainer).toBe('waiting_for_service');

      // supervisord's XML-RPC socket: only root may use it.
      expect((await exec(container, ['stat', '-c', '%a %U', '/run/confhub/supervisor.sock'])).trim()).toBe('700 root');
      // The services' entrypoint script is shipped, and served as the same bytes.
      expect((await exec(container, ['stat', '-c', '%a', '/usr/local/bin/confhub-init.sh'])).trim()).toBe('755');
      const script = readFileSync(new URL('../../init/confhub-init.sh', import.meta.url), 'utf8');
      expect(await exec(container, ['cat', '/usr/local/bin/confhub-init.sh'])).toBe(script);
      expect(await (await api('/init.sh')).text()).toBe(script);
      // The console's page has its script and styles in the image.
      for (const asset of ['console.js', 'console.css']) {
        const served = await fetch(`http://127.0.0.1:${CONSOLE_PORT}/assets/${asset}`);
        expect(served.status, asset).toBe(200);
        expect(await served.text()).toBe(readFileSync(new URL(`../../web/${asset}`, import.meta.url), 'utf8'));
      }
      const logs = await logsOf(container);
      expect(logs.split('Read it with').length - 1).toBe(1);
      expect(logs).not.toContain(apiKey);
      expect(logs).not.toContain(settings.user_pwd);
    },
    STEP_TIMEOUT_MS,
  );

  it(
    'when a setting changes through the API, then the sibling container and the internal console program are restarted with it',
    async () => {
      const consolePort = await freePort();
      const sibling = await siblingStartedAt();
      const before = await consoleHealth(CONSOLE_PORT);
      expect(before?.title).toBe('Websoft9 console');

      const gitea = await api('/settings/gitea?wait=true', { method: 'PUT', body: JSON.stringify({ base_url: 'http://websoft9-git:3001/api/v1' }) });
      expect(gitea.status).toBe(200);
      expect(await siblingStartedAt()).not.toBe(sibling);
      expect(readFileSync(join(dataDir, 'services/gitea/conf/app.ini'), 'utf8')).toMatch(/^HTTP_PORT\s*=\s*3001$/m);

      const consoleChange = await api('/settings/console?wait=true', { method: 'PUT', body: JSON.stringify({ title: 'Our console', port: consolePort }) });
      expect(consoleChange.status).toBe(200);
      await eventually('the console answers on its new port', async () => (await consoleHealth(consolePort)) !== undefined, 15_000);
      const after = await consoleHealth(consolePort);
      expect(after?.title).toBe('Our console');
      expect(after?.pid).not.toBe(before?.pid);
      expect(await consoleHealth(CONSOLE_PORT)).toBeUndefined();
      // The console passes /api/ through to confhub.
      const through = await fetch(`http://127.0.0.1:${consolePort}/api/v1/settings/console`, { headers: { 'x-api-key': apiKey } });
      expect(await through.json()).toMatchObject({ title: 'Our console', port: consolePort });

      // The connection tests see the same: the sibling runs, the console program is RUNNING.
      const tested = async (name: string): Promise<{ ok: boolean | null; checks: { kind: string; state?: string }[] }> =>
        (await (await api(`/services/${name}/test`, { method: 'POST' })).json()) as { ok: boolean | null; checks: { kind: string; state?: string }[] };
      expect(await tested('console')).toMatchObject({ ok: true, checks: [{ kind: 'supervisor', state: 'RUNNING' }] });
      expect((await tested('gitea')).checks).toContainEqual(expect.objectContaining({ kind: 'container', state: 'running', ok: true }));
      expect((await tested('portainer')).checks).toContainEqual(expect.objectContaining({ kind: 'container', state: 'absent', ok: false }));
    },
    STEP_TIMEOUT_MS,
  );

  it(
    'when docker stop arrives while writes are still in their debounce, then confhub applies them, exits 0 and leaves no half-written file',
    async () => {
      // A quiet time far longer than the way of SIGTERM to confhub (docker → tini → supervisord,
      // which stops the console first): without the flush at shutdown the writes would wait.
      await current!.stop({ t: 10 });
      await current!.remove();
      const systemPath = join(dataDir, 'config', 'system.ini');
      writeFileSync(
        systemPath,
        readFileSync(systemPath, 'utf8')
          .replace(/^debounce_min_ms = \d+$/m, 'debounce_min_ms = 5000')
          .replace(/^debounce_max_ms = \d+$/m, 'debounce_max_ms = 10000'),
      );
      expect(readFileSync(systemPath, 'utf8')).toContain('debounce_min_ms = 5000');
      const { container } = await startConfhub(TAG, 'confhub-stopped');
      expect((await api('/settings/gitea', { method: 'PUT', body: JSON.stringify({ base_url: 'http://websoft9-git:3002/api/v1' }) })).status).toBe(200);
      // Its restart meets supervisord already shutting down: a reload to do later, not a failure to roll back.
      expect((await api('/settings/console', { method: 'PUT', body: JSON.stringify({ title: 'Stopped console' }) })).status).toBe(200);
      expect(readFileSync(join(dataDir, 'services/gitea/conf/app.ini'), 'utf8')).toMatch(/^HTTP_PORT\s*=\s*3001$/m);
      await container.stop({ t: 10 });
      const state = (await container.inspect()).State;
      // 0, not 137: confhub exited by itself before Docker's SIGKILL at the end of the 10 s.
      expect(state.ExitCode, await logsOf(container)).toBe(0);
      const logs = await logsOf(container);
      expect(logs).toContain('shutting down');
      // The console's restart did meet supervisord shutting down, and was kept for later.
      expect(logs).toMatch(/console[^\n]*"code":"SERVICE_UNREACHABLE"[^\n]*"msg":"reload did not happen/);
      expect(walk(dataDir).filter((file) => file.endsWith('.confhub-tmp'))).toEqual([]);
      expect(configText()).toContain('http://websoft9-git:3002/api/v1');
      expect(configText()).toContain('title = Stopped console');
      // Applied before the exit, though the writes were still in their debounce when the stop came.
      expect(readFileSync(join(dataDir, 'services/gitea/conf/app.ini'), 'utf8')).toMatch(/^HTTP_PORT\s*=\s*3002$/m);
      expect(JSON.parse(readFileSync(join(dataDir, 'services/console/console.json'), 'utf8'))).toMatchObject({ console: { title: 'Stopped console' } });
      // Every rendered file is whole: it parses.
      parseIni(readFileSync(join(dataDir, 'services/gitea/conf/app.ini'), 'utf8'));
      await container.remove();
    },
    STEP_TIMEOUT_MS,
  );

  it(
    'when started again on the same volume, then every value, key and file is kept and Docker reports it healthy',
    async () => {
      const before = configText();
      const masterKey = readFileSync(join(dataDir, 'master.key'));
      const { container } = await startConfhub(TAG, 'confhub-second');
      try {
        expect(configText()).toBe(before);
        expect(readFileSync(join(dataDir, 'master.key'))).toEqual(masterKey);
        expect((await exec(container, ['confhub', 'apikey', 'show'])).trim()).toBe(apiKey);
        expect(readFileSync(join(dataDir, 'services/gitea/conf/app.ini'), 'utf8')).toMatch(/^HTTP_PORT\s*=\s*3002$/m);
        expect(await logsOf(container)).not.toContain('Read it with');
        // The image's HEALTHCHECK (GET /healthz every 10 s, 3 s each, failures retried) reports the
        // container healthy. On a loaded machine a check's own node can miss its 3 s, so several
        // intervals are allowed.
        await eventually('Docker reports the container healthy', async () => (await container.inspect()).State.Health?.Status === 'healthy', 120_000);
        await container.stop({ t: 10 });
        expect((await container.inspect()).State.ExitCode).toBe(0);
      } finally {
        // A failure here must not leave the container running under the next step's volume.
        await container.remove({ force: true });
      }
    },
    STEP_TIMEOUT_MS,
  );

  it(
    'when upgraded to an image whose template has a new key, then the key is added with its default and every user value is kept',
    async () => {
      const upgradeDir = mkdtempSync(join(tmpdir(), 'confhub-upgrade-'));
      try {
        const template = readFileSync(join(REPO_ROOT, 'config/config.ini'), 'utf8').replace(/^port = 9080$/m, 'port = 9080\ngreeting = welcome');
        expect(template).toContain('greeting = welcome');
        writeFileSync(join(upgradeDir, 'config.ini'), template);
        writeFileSync(join(upgradeDir, 'Dockerfile'), `FROM ${TAG}\nCOPY config.ini /app/config/config.ini\n`);
        await buildImage(docker, { tag: UPGRADE_TAG, baseImage: TAG, contextDir: upgradeDir, contextPaths: ['Dockerfile', 'config.ini'] });
      } finally {
        rmSync(upgradeDir, { recursive: true, force: true });
      }
      const opened = async (): Promise<Record<string, Record<string, unknown>>> =>
        (await (await api('/settings')).json()) as Record<string, Record<string, unknown>>;
      const { container } = await startConfhub(UPGRADE_TAG, 'confhub-upgraded');
      const after = await opened();
      expect(after.console).toMatchObject({ title: 'Stopped console', greeting: 'welcome' });
      expect(after.gitea).toMatchObject({ base_url: 'http://websoft9-git:3002/api/v1' });
      // The worker commits the upgrade's revision after the start; the settings show it at once.
      await eventually(
        'the upgrade is in the history',
        async () => (await (await api('/settings/history?limit=5')).text()).includes('"source":"upgrade"'),
        30_000,
      );
      // The password of the first boot survived every start.
      expect(after.gitea!.user_pwd).toBe(giteaPassword);
      await container.stop({ t: 10 });
      expect((await container.inspect()).State.ExitCode).toBe(0);
      await container.remove();
    },
    STEP_TIMEOUT_MS,
  );

  it(
    'when the image is inspected, then tini runs supervisord and the health check asks /healthz',
    async () => {
      const config = (await docker.getImage(TAG).inspect()).Config as {
        Entrypoint: string[];
        Cmd: string[];
        Healthcheck?: { Test?: string[] };
        Volumes?: Record<string, unknown>;
      };
      expect(config.Entrypoint).toEqual(['tini', '--']);
      expect(config.Cmd).toEqual(['supervisord', '-c', '/etc/confhub/supervisord.conf']);
      expect(config.Healthcheck?.Test?.join(' ')).toContain('/healthz');
      expect(Object.keys(config.Volumes ?? {})).toEqual(['/data']);
    },
    STEP_TIMEOUT_MS,
  );
});
