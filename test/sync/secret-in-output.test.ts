/**
 * A check or reload command that prints the file it rejects puts the secrets of that file in its
 * output, and the output is what a failed target reports. A whole confhub with such a target: the
 * secret, as config.ini holds it and as the rendered file spells it, reaches no consumer of the
 * failure (the write's answer, /sync/status, the event log over SSE, a standard webhook, a chat
 * webhook).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, startConfhub, type Confhub } from '../support/confhub.js';
import { startChatReceiver } from '../support/chat-receivers.js';
import { ensureBusyboxImage, runBusybox, SKIP_DOCKERD, startDockerd } from '../support/engines.js';
import { connectSse } from '../support/sse-client.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const SYSTEM_INI = `[sync]
output_roots = @DIR@
docker_socket = /nonexistent/docker.sock
supervisor_url = http://127.0.0.1:1/RPC2
debounce_min_ms = 50

[notify]
allow_hosts = 127.0.0.1
debounce_ms = 0

[target:gitea]
sections = gitea
format = json
output = @DIR@/out/gitea.json
check = /bin/sh @DIR@/data/config/reject.sh {file}
reload = none
health = none
on_failure = keep
`;

/** A checker that rejects every file, quoting it whole (as `nginx -t` quotes the line it rejects). */
const REJECT = 'cat "$1"; echo; echo "rejected: $(cat "$1")" >&2; exit 3\n';

/** JSON escapes both `"` and `\`: the rendered file spells this password differently from config.ini. */
const PASSWORD = 'Wz8"long\\enough-passphrase-91';
/** In every spelling of the password; none of them may reach a consumer. */
const FRAGMENT = 'enough-passphrase';

async function startReceiver(): Promise<{ url: string; bodies: string[] }> {
  const bodies: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, bodies };
}

describe('secrets in the output of a failing check', () => {
  it('when a check prints the rendered file holding a password, then the password (in any spelling) is in no answer, status, event or webhook', async () => {
    const ch: Confhub = await startConfhub({ systemIni: SYSTEM_INI, files: { 'reject.sh': REJECT } });
    cleanups.push(() => ch.close());
    await eventually('the first run is done', async () => ((await (await ch.api('/api/v1/sync/status')).json()) as { lastRun: unknown }).lastRun !== null);
    const standard = await startReceiver();
    const slack = await startChatReceiver('slack');
    cleanups.push(() => slack.close());
    for (const hook of [
      { url: standard.url, events: ['sync.failed'] },
      { url: slack.url, kind: 'slack', events: ['sync.failed'] },
    ]) {
      expect((await ch.api('/api/v1/webhooks', { method: 'POST', body: JSON.stringify(hook) })).status).toBe(201);
    }
    const sse = await connectSse(`${ch.url}/api/v1/settings/events`, { 'x-api-key': ch.apiKey });
    cleanups.push(() => sse.close());

    const put = await ch.api('/api/v1/settings/gitea?wait=true', { method: 'PUT', body: JSON.stringify({ user_pwd: PASSWORD }) });
    const answer = await put.text();
    expect(answer).toContain('CHECK_FAILED');
    // The output is there, with the password masked: the check's reason is not lost.
    expect(answer).toContain('rejected: ');
    expect(answer).toContain('******');
    expect(answer).not.toContain(FRAGMENT);

    const failed = await sse.next((frame) => frame.event === 'sync.failed');
    expect(JSON.parse(failed.data)).toMatchObject({ type: 'sync.failed', targets: [{ target: 'gitea', error: { code: 'CHECK_FAILED' } }] });
    expect(failed.data).toContain('******');
    expect(failed.data).not.toContain(FRAGMENT);

    const status = (await (await ch.api('/api/v1/sync/status')).json()) as { targets: { target: string; lastError: { details: string } | null }[] };
    const lastError = status.targets.find((t) => t.target === 'gitea')?.lastError;
    expect(lastError?.details).toContain('******');
    expect(JSON.stringify(status)).not.toContain(FRAGMENT);

    await eventually('both webhooks got the failure', () => standard.bodies.length > 0 && slack.requests.length > 0);
    expect(standard.bodies[0]).toContain('CHECK_FAILED');
    for (const body of [...standard.bodies, ...slack.requests.map((r) => r.body)]) expect(body).not.toContain(FRAGMENT);
  }, 60_000);
});

describe.skipIf(SKIP_DOCKERD !== undefined)('secrets in the output of a failing reload', () => {
  it('when a docker exec reload prints the .env file holding a password and fails, then service.unhealthy and the webhook carry its output masked', async () => {
    const dockerd = await startDockerd();
    cleanups.push(() => dockerd.stop());
    await ensureBusyboxImage(dockerd.socketPath);
    const dir = mkdtempSync(join(tmpdir(), 'confhub-leak-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const conf = await runBusybox({
      docker: new Docker({ socketPath: dockerd.socketPath }),
      name: 'svc',
      script: 'trap "exit 0" TERM; while true; do sleep 0.2; done',
      confDir: join(dir, 'svc'),
    });
    writeFileSync(join(conf, 'reload.sh'), 'cat /conf/gitea.env; exit 4\n');
    const ch = await startConfhub({
      systemIni: `[sync]
output_roots = ${dir}
docker_socket = ${dockerd.socketPath}
supervisor_url = http://127.0.0.1:1/RPC2
debounce_min_ms = 50

[notify]
allow_hosts = 127.0.0.1
debounce_ms = 0

[target:gitea]
sections = gitea
format = env
output = ${conf}/gitea.env
reload = docker:exec:svc:sh /conf/reload.sh
health = none
on_failure = keep
timeout = 20
`,
    });
    cleanups.push(() => ch.close());
    await eventually(
      'the first run is done',
      async () => ((await (await ch.api('/api/v1/sync/status')).json()) as { lastRun: unknown }).lastRun !== null,
      30_000,
    );
    const receiver = await startReceiver();
    expect((await ch.api('/api/v1/webhooks', { method: 'POST', body: JSON.stringify({ url: receiver.url, events: ['service.unhealthy'] }) })).status).toBe(201);
    const sse = await connectSse(`${ch.url}/api/v1/settings/events`, { 'x-api-key': ch.apiKey });
    cleanups.push(() => sse.close());

    // A compose .env file doubles the $: config.ini's spelling is not in the output.
    const password = 'Wz8$long-enough-passphrase-91';
    const put = await ch.api('/api/v1/settings/gitea?wait=true', { method: 'PUT', body: JSON.stringify({ user_pwd: password }) });
    expect(await put.text()).not.toContain(FRAGMENT);
    const unhealthy = await sse.next((frame) => frame.event === 'service.unhealthy', 30_000);
    expect(JSON.parse(unhealthy.data)).toMatchObject({ target: 'gitea', code: 'RELOAD_FAILED', reason: expect.stringContaining('exit code 4') });
    expect(unhealthy.data).toContain('******');
    expect(unhealthy.data).not.toContain(FRAGMENT);
    await eventually('the webhook got it', () => receiver.bodies.length > 0);
    expect(receiver.bodies.join('\n')).not.toContain(FRAGMENT);
    const status = await (await ch.api('/api/v1/sync/status')).text();
    expect(status).toContain('RELOAD_FAILED');
    expect(status).not.toContain(FRAGMENT);
  }, 120_000);
});
