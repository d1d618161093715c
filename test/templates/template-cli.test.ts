/**
 * `confhub template` as an operator runs it: list, show, preview (nothing written, exit 1 when it
 * would be refused) and apply beside a running confhub, which syncs the write, announces its
 * changes and commits it with the template's name.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { loadRuntimeConfig } from '../../src/runtime-config.js';
import { readApiKey } from '../../src/settings/read-api-key.js';
import { killStartedProcesses, runCli, startProcess, stopProcess } from '../support/confhub-process.js';
import { connectSse } from '../support/sse-client.js';
import { tempDirs } from '../support/temp-dirs.js';
import { eventually } from '../support/wait.js';

const tempDir = tempDirs('confhub-template-cli-');
afterEach(() => killStartedProcesses());

describe('confhub template', () => {
  it('when listed, shown and previewed, then nothing is written; a preview that would be refused exits 1 naming why', async () => {
    const env = { CONFHUB_DATA_DIR: tempDir() };
    expect((await runCli(['once'], env)).code).toBe(0);
    const configPath = loadRuntimeConfig(env).configPath;
    const before = readFileSync(configPath);
    const list = await runCli(['template', 'list'], env);
    expect(list).toMatchObject({ code: 0, stdout: expect.stringMatching(/^public-https\s+shipped\s+Public domain with HTTPS$/m) });
    expect(JSON.parse((await runCli(['template', 'show', 'registry-mirror'], env)).stdout)).toMatchObject({
      name: 'registry-mirror',
      variables: [{ name: 'mirrors' }],
    });
    const good = await runCli(['template', 'preview', 'registry-mirror', 'mirrors=https://m.example.com'], env);
    expect(good).toMatchObject({ code: 0, stdout: expect.stringContaining('template registry-mirror: would be accepted') });
    expect(good.stdout).toContain('+url = https://m.example.com');
    const bad = await runCli(['template', 'preview', 'public-https', 'domain=not a domain'], env);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('missing variable: certificate');
    expect(bad.stdout).toContain('INVALID_HOSTNAME: variable.domain');
    expect((await runCli(['template', 'preview', 'nope'], env)).stderr).toContain('Template:nope does not exist');
    expect((await runCli(['template', 'apply', 'registry-mirror', 'mirrors'], env)).stderr).toContain('"mirrors" is not VAR=VALUE');
    expect(readFileSync(configPath).equals(before)).toBe(true);
  }, 60_000);

  it('when applied beside a running confhub, then it syncs it, announces the keys and commits it with the template name', async () => {
    const env = { CONFHUB_DATA_DIR: tempDir() };
    const server = await startProcess(env);
    const key = (await readApiKey(loadRuntimeConfig(env)))!;
    await eventually('ready', async () => (await fetch(`${server.url}/readyz`)).status === 200, 30_000);
    const events = await connectSse(`${server.url}/api/v1/settings/events`, { 'x-api-key': key, 'last-event-id': '0' });
    const applied = await runCli(['template', 'apply', 'registry-mirror', 'mirrors=https://m.example.com,https://n.example.com'], env);
    expect(applied).toMatchObject({ code: 0, stdout: 'template registry-mirror applied: docker_mirror.url changed\n' });
    const frame = await events.next((f) => f.event === 'settings.changed' && f.data.includes('docker_mirror.url'));
    events.close();
    expect(JSON.parse(frame.data)).toMatchObject({ source: 'template', keys: ['docker_mirror.url'] });
    await eventually(
      'the commit',
      async () => {
        const res = await fetch(`${server.url}/api/v1/settings/history?limit=1`, { headers: { 'x-api-key': key } });
        const top = ((await res.json()) as { commits: { source: string; template: string | null; actor: { id: string } }[] }).commits[0]!;
        return top.source === 'template' && top.template === 'registry-mirror' && top.actor.id === 'cli';
      },
      30_000,
    );
    expect(await stopProcess(server.child)).toBe(0);
  }, 90_000);
});
