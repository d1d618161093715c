import { execFileSync } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startServer } from '../../src/server.js';
import { revisionOf } from '../../src/settings/revision.js';
import { eventually, startConfhub, type Confhub } from '../support/confhub.js';
import { freePort } from '../support/ports.js';

/** A reload hook on loopback that counts reloads and answers 500 while `failing` is set. */
let hook: Server;
let hookUrl: string;
let reloads = 0;
let failing = false;
/** While set, the hook holds each reload this long before answering. */
let slowMs = 0;
let hookAnsweredAt = 0;
/** While set, the hook holds each reload until it settles (a service as slow as the test wants). */
let gate: Promise<void> | undefined;
/** Reloads the hook holds now. */
let held = 0;
/** GETs the hook answered (it serves as a health URL too). */
let gets = 0;

beforeAll(async () => {
  hook = createServer((req, res) => {
    if (req.method === 'POST') reloads++;
    if (req.method === 'GET') gets++;
    const answer = (): void => {
      res.statusCode = failing ? 500 : 204;
      res.end();
      hookAnsweredAt = Date.now();
    };
    const holding = gate;
    if (holding) {
      held++;
      void holding.then(() => {
        held--;
        answer();
      });
      return;
    }
    setTimeout(answer, slowMs);
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/reload`;
});
afterAll(() => new Promise<void>((resolve) => hook.close(() => resolve())));

let ch: Confhub;
afterEach(async () => {
  failing = false;
  slowMs = 0;
  gate = undefined;
  await ch?.close();
});

interface SyncTimes {
  debounceMinMs: number;
  debounceMaxMs: number;
  pollIntervalMs: number;
}

const QUICK: SyncTimes = { debounceMinMs: 50, debounceMaxMs: 400, pollIntervalMs: 500 };

const systemIni = (extraTarget: string, times: SyncTimes): string => `[sync]
output_roots = @DIR@
debounce_min_ms = ${times.debounceMinMs}
debounce_max_ms = ${times.debounceMaxMs}
poll_interval_ms = ${times.pollIntervalMs}

[target:app]
sections = extra
format = template
template = app.tmpl
output = @DIR@/out/app.conf
mode = 0640
reload = http:POST:${hookUrl}
health = none
${extraTarget}`;

function start(options: { extraTarget?: string; times?: SyncTimes } = {}): Promise<Confhub> {
  return startConfhub({
    systemIni: systemIni(options.extraTarget ?? '', options.times ?? QUICK),
    configExtra: '\n[extra]\nmode = first\n',
    files: { 'app.tmpl': 'mode = {{ extra.mode }}\n' },
  });
}

/** Until confhub is ready (the first render is on disk) and the first run has finished (its reloads too). */
async function ready(c: Confhub): Promise<void> {
  await eventually('confhub is ready', async () => (await fetch(`${c.url}/readyz`)).status === 200);
  expect(output(c)).toBe('mode = first\n');
  await eventually('the first run is done', async () => ((await (await c.api('/api/v1/sync/status')).json()) as { lastRun: unknown }).lastRun !== null);
}

const output = (c: Confhub): string => readFileSync(join(c.dir, 'out', 'app.conf'), 'utf8');

/** A hand edit the way editors save: write a temp file, rename it over config.ini. */
function handEditByRename(c: Confhub, text: string): void {
  const temp = join(c.config.configDir, '.config.ini.swp');
  writeFileSync(temp, text, { mode: 0o600 });
  renameSync(temp, c.config.configPath);
}

describe('config.ini to service files', () => {
  it('when a PUT waits, then it answers after the target file holds the new bytes, with per-target results', async () => {
    ch = await start();
    await ready(ch);
    const before = reloads;
    const res = await ch.api('/api/v1/settings/extra?key=mode&value=second&wait=true', { method: 'PUT' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { settings: unknown; sync: { outcome: string; targets: Record<string, unknown>[] } };
    expect(body.settings).toEqual({ mode: 'second' });
    expect(body.sync.outcome).toBe('applied');
    expect(body.sync.targets).toEqual([
      { target: 'app', state: 'in_sync', changed: true, writeMode: 'rename', reloaded: true, healthy: true, durationMs: expect.any(Number), error: null },
    ]);
    expect(output(ch)).toBe('mode = second\n');
    expect(reloads).toBe(before + 1);
    const status = (await (await ch.api('/api/v1/sync/status')).json()) as { targets: Record<string, unknown>[] };
    expect(status.targets[0]).toMatchObject({ target: 'app', state: 'in_sync', writeMode: 'rename', lastError: null });
  });

  it('when config.ini is replaced by rename or edited with sed -i, then the target follows, with actor file', async () => {
    ch = await start();
    await ready(ch);
    handEditByRename(ch, ch.readConfig().replace('mode = first', 'mode = renamed'));
    await eventually('the rename is applied', () => output(ch) === 'mode = renamed\n');
    execFileSync('sed', ['-i', 's/^mode = renamed$/mode = sedded/', ch.config.configPath]);
    await eventually('the sed -i edit is applied', () => output(ch) === 'mode = sedded\n');
    const changeRuns = (): { actor_type: string; actor_id: string }[] => {
      const db = new BetterSqlite3(ch.config.databasePath, { readonly: true });
      try {
        return db.prepare("SELECT actor_type, actor_id FROM sync_runs WHERE source = 'change' AND outcome = 'applied' ORDER BY id").all() as {
          actor_type: string;
          actor_id: string;
        }[];
      } finally {
        db.close();
      }
    };
    await eventually('both hand edits are recorded', () => changeRuns().length === 2);
    expect(changeRuns()).toEqual([
      { actor_type: 'file', actor_id: 'file' },
      { actor_type: 'file', actor_id: 'file' },
    ]);
    const api = await ch.api('/api/v1/settings/extra?key=mode&value=by-api&wait=true', { method: 'PUT' });
    expect(api.status).toBe(200);
    expect(changeRuns()[2]).toMatchObject({ actor_type: 'api', actor_id: expect.stringMatching(/^key:[0-9a-f]{12}$/) });
  });

  it('when config.ini is edited by hand, then settings.changed and env.changed name every key the edit changed, with actor file, never values; its seal is not announced twice', async () => {
    ch = await start();
    await ready(ch);
    const events = (): { type: string; data: { keys?: string[]; variables?: string[]; actor: { type: string }; source: string } }[] => {
      const db = new BetterSqlite3(ch.config.databasePath, { readonly: true });
      try {
        return (
          db.prepare("SELECT type, data FROM events WHERE type IN ('settings.changed', 'env.changed') ORDER BY id").all() as { type: string; data: string }[]
        ).map((row) => ({ type: row.type, data: JSON.parse(row.data) }));
      } finally {
        db.close();
      }
    };
    const before = events().length;
    const typed = 'Typed-by-hand-passphrase-77';
    handEditByRename(
      ch,
      `${ch
        .readConfig()
        .replace('mode = first', 'mode = edited')
        .replace(/^(\[gitea\][^[]*?user_pwd = ).*$/m, `$1${typed}`)}\n[env:global]\nDb_Url = postgres://db\n`,
    );
    await eventually('the sealed hand edit is announced', () => events().length > before + 1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const announced = events().slice(before);
    expect(announced).toEqual([
      {
        type: 'settings.changed',
        data: expect.objectContaining({ keys: expect.arrayContaining(['extra.mode', 'gitea.user_pwd']), actor: { type: 'file', id: 'file' } }),
      },
      { type: 'env.changed', data: expect.objectContaining({ variables: ['global.Db_Url'], scopes: ['global'], actor: { type: 'file', id: 'file' } }) },
    ]);
    expect(announced[0]!.data.keys).toHaveLength(2);
    expect(JSON.stringify(announced)).not.toContain(typed);
    expect(JSON.stringify(announced)).not.toContain('postgres://db');
  });

  it('when a hand edit is invalid, then nothing changes, status and readiness say why, and the next valid save resumes', async () => {
    ch = await start();
    await ready(ch);
    const valid = ch.readConfig();
    handEditByRename(ch, `${valid.replace('mode = first', 'mode = broken')}\n[extra]\nmode = twice\n`);
    await eventually('the invalid source is reported', async () => {
      const status = (await (await ch.api('/api/v1/sync/status')).json()) as { source: { valid: boolean } };
      return !status.source.valid;
    });
    const status = (await (await ch.api('/api/v1/sync/status')).json()) as { source: { error: { details: string; line: number } } };
    expect(status.source.error.details).toMatch(/line \d+: duplicate section \[extra\]/);
    expect(status.source.error.line).toBeGreaterThan(1);
    const readyz = await fetch(`${ch.url}/readyz`);
    expect(readyz.status).toBe(503);
    expect(((await readyz.json()) as { reasons: string[] }).reasons.join()).toContain('config.ini invalid');
    expect(output(ch)).toBe('mode = first\n');
    handEditByRename(ch, valid.replace('mode = first', 'mode = fixed'));
    await eventually('the valid save is applied', () => output(ch) === 'mode = fixed\n');
    // The file is written before the reload; readiness follows once the run is reported.
    await eventually('confhub is ready again', async () => (await fetch(`${ch.url}/readyz`)).status === 200, 5000);
  });

  it('when one service is slow to reload, then confhub is ready, other targets apply at once, an invalid hand edit is reported at once, and the slow one gets the newest revision', async () => {
    const before = reloads;
    let release!: () => void;
    gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    ch = await start({
      extraTarget: `
[target:fast]
sections = extra
format = json
output = @DIR@/out/fast.json
reload = none
health = none
`,
    });
    const fast = (): string => readFileSync(join(ch.dir, 'out', 'fast.json'), 'utf8');
    // The first reload is held: readiness means the files are on disk, not that services restarted.
    await eventually('confhub is ready', async () => (await fetch(`${ch.url}/readyz`)).status === 200);
    await eventually('the first reload is held', () => held === 1);
    expect((await fetch(`${ch.url}/readyz`)).status).toBe(200);
    expect(output(ch)).toBe('mode = first\n');

    const put = await ch.api('/api/v1/settings/extra?key=mode&value=second', { method: 'PUT' });
    expect(put.status).toBe(200);
    await eventually('the fast target has the write while the slow reload is held', () => fast().includes('"second"'));
    const putRevision = revisionOf(ch.readConfig());
    type Status = { targets: { target: string; state: string; lastRevision: string | null }[] };
    let status: Status | undefined;
    await eventually('the fast target reports the write', async () => {
      status = (await (await ch.api('/api/v1/sync/status')).json()) as Status;
      return status.targets.find((t) => t.target === 'fast')?.lastRevision === putRevision;
    });
    expect(held).toBe(1);
    expect(status!.targets.find((t) => t.target === 'fast')).toMatchObject({ state: 'in_sync', lastRevision: putRevision });
    expect(status!.targets.find((t) => t.target === 'app')!.lastRevision).not.toBe(putRevision);

    const valid = ch.readConfig();
    handEditByRename(ch, `${valid}\n[extra]\nmode = twice\n`);
    await eventually('the invalid hand edit is reported while the slow reload is held', async () => {
      const now = (await (await ch.api('/api/v1/sync/status')).json()) as { source: { valid: boolean } };
      return !now.source.valid;
    });
    expect(held).toBe(1);
    handEditByRename(ch, valid.replace('mode = second', 'mode = third'));
    await eventually('the fast target has the hand edit', () => fast().includes('"third"'));

    gate = undefined;
    release();
    // The slow lane skipped what it had no time for: after the first revision, only the newest.
    await eventually('the slow target has the newest revision', () => output(ch) === 'mode = third\n');
    await eventually('every target is in sync', async () => {
      const now = (await (await ch.api('/api/v1/sync/status')).json()) as { targets: { state: string; lastRevision: string }[] };
      return now.targets.every((t) => t.state === 'in_sync' && t.lastRevision === revisionOf(ch.readConfig()));
    });
    expect(reloads - before).toBe(2);
  });

  it('when 100 writes land within the quiet time, then nothing is applied before it ends, and then the last content once, with one reload', async () => {
    // A quiet time no storm outlasts, however slow the machine: the end of it is the stop below,
    // which runs the pending change at once (the debounce's own timing is source-watcher.test.ts's).
    ch = await start({ times: { debounceMinMs: 60_000, debounceMaxMs: 600_000, pollIntervalMs: 3_600_000 } });
    await ready(ch);
    const base = ch.readConfig();
    const before = reloads;
    for (let i = 1; i <= 100; i++) handEditByRename(ch, base.replace('mode = first', `mode = storm-${i}`));
    expect(output(ch)).toBe('mode = first\n');
    expect(reloads).toBe(before);
    await ch.server.close();
    expect(output(ch)).toBe('mode = storm-100\n');
    expect(reloads).toBe(before + 1);
    const db = new BetterSqlite3(ch.config.databasePath, { readonly: true });
    const runs = db.prepare("SELECT outcome FROM sync_runs WHERE source = 'change' ORDER BY id").all();
    db.close();
    expect(runs).toEqual([{ outcome: 'applied' }]);
  });

  it('when events are streamed, then an applied change arrives as an SSE event without values of secrets', async () => {
    ch = await start();
    await ready(ch);
    const controller = new AbortController();
    const stream = await fetch(`${ch.url}/api/v1/settings/events`, { headers: { 'x-api-key': ch.apiKey }, signal: controller.signal });
    expect(stream.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = stream.body!.getReader();
    await ch.api('/api/v1/settings/extra?key=mode&value=streamed', { method: 'PUT' });
    let text = '';
    const decoder = new TextDecoder();
    while (!text.includes('event: sync.applied')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
    }
    controller.abort();
    const data = JSON.parse(text.split('event: sync.applied\ndata: ')[1]!.split('\n')[0]!) as {
      type: string;
      actor: { type: string };
      targets: { target: string }[];
    };
    expect(data).toMatchObject({ type: 'sync.applied', actor: { type: 'api' }, targets: [{ target: 'app', changed: true }] });
    expect(text).not.toContain(ch.apiKey);
    // A client reconnecting with the id before that event gets it again.
    const id = Number(/id: (\d+)\nevent: sync.applied/.exec(text)![1]);
    const again = new AbortController();
    const replay = await fetch(`${ch.url}/api/v1/settings/events`, {
      headers: { 'x-api-key': ch.apiKey, 'last-event-id': String(id - 1) },
      signal: again.signal,
    });
    const replayReader = replay.body!.getReader();
    let replayed = '';
    while (!replayed.includes('event: sync.applied')) {
      const { value, done } = await replayReader.read();
      if (done) break;
      replayed += decoder.decode(value);
    }
    again.abort();
    expect(replayed).toContain(`id: ${id}\nevent: sync.applied`);
  });

  it('when a reload is forced, then unchanged targets are reloaded too and the results are returned', async () => {
    ch = await start();
    await ready(ch);
    const before = reloads;
    const res = await ch.api('/api/v1/settings/reload?force=true&wait=true', { method: 'POST' });
    const body = (await res.json()) as { outcome: string; targets: { changed: boolean; reloaded: boolean }[] };
    expect(body.outcome).toBe('applied');
    expect(body.targets[0]).toMatchObject({ changed: false, reloaded: true });
    expect(reloads).toBe(before + 1);
    const accepted = await ch.api('/api/v1/settings/reload', { method: 'POST' });
    expect(accepted.status).toBe(202);
    expect((await ch.api('/api/v1/settings/reload?wait=maybe', { method: 'POST' })).status).toBe(400);
  });

  it('when the reload fails, then the file is restored, config.ini goes back to the last applied revision, and the failure is reported', async () => {
    ch = await start();
    await ready(ch);
    const applied = ch.readConfig();
    failing = true;
    const res = await ch.api('/api/v1/settings/extra?key=mode&value=bad&wait=true', { method: 'PUT' });
    expect(res.status).toBe(502);
    const body = (await res.json()) as { code: string; details: string; sync: { outcome: string } };
    expect(body.code).toBe('SYNC_FAILED');
    expect(body.details).toContain('target app: RELOAD_FAILED');
    expect(body.sync.outcome).toBe('rolled_back');
    expect(output(ch)).toBe('mode = first\n');
    failing = false;
    await eventually('config.ini is rolled back', () => ch.readConfig() === applied);
    // The audit row is recorded just after the file is renamed into place.
    let audit: { entries: { action: string; actor: { id: string }; newValue: string }[] } = { entries: [] };
    await eventually('the rollback is audited', async () => {
      audit = (await (await ch.api('/api/v1/audit?section=extra&limit=5')).json()) as typeof audit;
      return audit.entries[0]?.action === 'settings.rollback';
    });
    expect(audit.entries[0]).toMatchObject({ action: 'settings.rollback', actor: { id: 'auto-rollback' }, newValue: 'first' });
    // The history has the failed revision and the automatic rollback to the applied one, each with its outcome.
    let commits: { source: string; actor: { id: string }; rollbackOf: string | null; id: string; changes: unknown[]; sync: { outcome: string } | null }[] = [];
    await eventually('the rollback is committed', async () => {
      commits = ((await (await ch.api('/api/v1/settings/history?limit=3')).json()) as { commits: typeof commits }).commits;
      return commits[0]?.source === 'auto_rollback';
    });
    expect(commits[0]).toMatchObject({ actor: { id: 'auto-rollback' }, rollbackOf: commits[2]!.id, changes: [{ key: 'extra.mode', change: 'changed' }] });
    expect(commits[1]).toMatchObject({ source: 'api', sync: { outcome: 'rolled_back' } });
    const status = (await (await ch.api('/api/v1/sync/status')).json()) as { targets: { state: string; lastError: { code: string } }[] };
    expect(status.targets[0]).toMatchObject({ state: 'failed', lastError: { code: 'RELOAD_FAILED' } });
    // The same failing revision is not retried in a loop; the next good change applies.
    const good = await ch.api('/api/v1/settings/extra?key=mode&value=good&wait=true', { method: 'PUT' });
    expect(good.status).toBe(200);
    expect(output(ch)).toBe('mode = good\n');
  });

  it('when the first revision after a restart fails, then config.ini goes back to the revision applied before the restart', async () => {
    ch = await start();
    await ready(ch);
    const put = await ch.api('/api/v1/settings/extra?key=mode&value=second&wait=true', { method: 'PUT' });
    const applied = { text: ch.readConfig(), commit: ((await put.json()) as { sync: { commit: string } }).sync.commit };
    await ch.server.close();
    writeFileSync(ch.config.configPath, applied.text.replace('mode = second', 'mode = broken'));
    failing = true;
    const again = await startServer(ch.config, pino({ level: 'silent' }));
    try {
      await eventually('config.ini is back at the applied revision', () => ch.readConfig() === applied.text);
      expect(output(ch)).toBe('mode = second\n');
      let top: { source: string; rollbackOf: string | null } | undefined;
      await eventually('the rollback is committed', async () => {
        top = (
          (await (await fetch(`${again.url}/api/v1/settings/history?limit=1`, { headers: { 'x-api-key': ch.apiKey } })).json()) as { commits: (typeof top)[] }
        ).commits[0];
        return top?.source === 'auto_rollback';
      });
      expect(top?.rollbackOf).toBe(applied.commit);
    } finally {
      failing = false;
      await again.close();
    }
  });

  it('when the first revision after a restart fails health at its new address, then the files put back are checked at the address of the revision applied before', async () => {
    const serving = new URL(hookUrl).port;
    const web = `
[target:web]
sections = extra
format = template
template = web.tmpl
output = @DIR@/out/web.conf
reload = http:POST:${hookUrl}-web
health = http:http://127.0.0.1:{{ extra.port }}/health
timeout = 2
`;
    ch = await startConfhub({
      systemIni: systemIni(web, QUICK),
      configExtra: `\n[extra]\nmode = first\nport = ${serving}\n`,
      files: { 'app.tmpl': 'mode = {{ extra.mode }}\n', 'web.tmpl': 'listen {{ extra.port }}\n' },
    });
    await ready(ch);
    const applied = ch.readConfig();
    await ch.server.close();
    writeFileSync(ch.config.configPath, applied.replace(`port = ${serving}`, `port = ${await freePort()}`));
    gets = 0;
    const again = await startServer(ch.config, pino({ level: 'silent' }));
    try {
      await eventually('config.ini is back at the applied revision', () => ch.readConfig() === applied);
      expect(readFileSync(join(ch.dir, 'out', 'web.conf'), 'utf8')).toBe(`listen ${serving}\n`);
      // Nothing listens at the new port: only a check of the restored file at the old one reaches the hook.
      await eventually('the restored file is checked where it serves', () => gets > 0);
    } finally {
      await again.close();
    }
  });

  it('when confhub is stopped during an apply, then the stop waits for the reload in flight and the run is recorded', async () => {
    ch = await start();
    await ready(ch);
    slowMs = 800;
    hookAnsweredAt = 0;
    const before = reloads;
    await ch.api('/api/v1/settings/extra?key=mode&value=in-flight', { method: 'PUT' });
    await eventually('the reload is in flight', () => reloads === before + 1);
    await ch.server.close();
    const stoppedAt = Date.now();
    expect(hookAnsweredAt).toBeGreaterThan(0);
    expect(stoppedAt).toBeGreaterThanOrEqual(hookAnsweredAt);
    expect(output(ch)).toBe('mode = in-flight\n');
    const db = new BetterSqlite3(ch.config.databasePath, { readonly: true });
    const last = db.prepare('SELECT outcome, source FROM sync_runs ORDER BY id DESC LIMIT 1').get();
    db.close();
    expect(last).toEqual({ outcome: 'applied', source: 'change' });
    // close() again (afterEach) must be harmless.
  });
});
