/** `confhub once` as an init container runs it: on an empty volume, again, and on a config.ini put there by hand. */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { killStartedProcesses, runCli, startProcess, stopProcess } from '../support/confhub-process.js';
import { tempDirs } from '../support/temp-dirs.js';
import { eventually } from '../support/wait.js';

const execute = promisify(execFile);
const tempDir = tempDirs('confhub-once-');
afterEach(() => killStartedProcesses());

const cli = runCli;

/** Files and their modes under a data directory, without the git objects, whose names are content hashes. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (at: string): void => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      const name = relative(dir, path);
      if (/^history\.git\/(objects|logs)\//.test(`${name}/`) || /^confhub\.(db-|sock)/.test(name)) continue;
      if (entry.isDirectory()) walk(path);
      else out.push(`${name} ${(statSync(path).mode & 0o777).toString(8)}`);
    }
  };
  walk(dir);
  return out.sort();
}

async function commits(dataDir: string): Promise<string[]> {
  const { stdout } = await execute('git', ['--git-dir', join(dataDir, 'history.git'), 'log', '--format=%an %s']);
  return stdout.trim().split('\n');
}

describe('confhub once', () => {
  it('when run on an empty data directory, then it does what a first serve does, step by step, and exits 0; a second run changes nothing', async () => {
    const dataDir = join(tempDir(), 'data');
    const env = { CONFHUB_DATA_DIR: dataDir };
    const ran = await cli(['once'], env);
    expect(ran.code, ran.stdout + ran.stderr).toBe(0);
    const lines = ran.stdout.trimEnd().split('\n');
    expect(lines.slice(0, 6)).toEqual([
      `installed ${join(dataDir, 'config', 'config.ini')} from the shipped defaults`,
      `installed ${join(dataDir, 'config', 'system.ini')} from the shipped defaults`,
      `generated the master key ${join(dataDir, 'master.key')} (back it up)`,
      'generated the API key (print it with: confhub apikey show)',
      expect.stringMatching(/^generated passwords: .*gitea\.user_pwd/),
      expect.stringMatching(/^committed revision [0-9a-f]{12} to the history as system:first-boot \(first_boot\)$/),
    ]);
    expect(lines[6]).toMatch(/^revision [0-9a-f]{12} \(commit [0-9a-f]{12}\): applied$/);
    expect(ran.stdout).toMatch(/^ {2}cockpit: in_sync$/m);
    // Logs stay logs: at the default level none of them is on stdout, and none repeats the steps on stderr.
    expect(ran.stdout).not.toContain('{"level"');
    expect(ran.stderr).toBe('');
    expect(readFileSync(join(dataDir, 'services', 'cockpit', 'cockpit.conf'), 'utf8')).toContain('9090');
    expect(await commits(dataDir)).toHaveLength(1);
    expect((await cli(['history'], env)).stdout).toMatch(/^[0-9a-f]{12} {2}\S+ {2}system:first-boot\s+first_boot\s+applied\s/);

    // What a first serve leaves on another empty data directory: the same files, modes and first commit.
    const served = join(tempDir(), 'data');
    const server = await startProcess({ CONFHUB_DATA_DIR: served });
    await eventually('ready', async () => (await fetch(`${server.url}/readyz`)).status === 200);
    expect(await stopProcess(server.child)).toBe(0);
    expect(tree(dataDir)).toEqual(tree(served));
    expect((await commits(dataDir))[0]!.split(' ')[0]).toBe((await commits(served))[0]!.split(' ')[0]);

    const before = tree(dataDir).join('\n') + readFileSync(join(dataDir, 'config', 'config.ini'), 'utf8');
    const again = await cli(['once'], env);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^revision [0-9a-f]{12} is already in the history\nrevision [0-9a-f]{12} \(commit [0-9a-f]{12}\): unchanged\n/);
    expect(again.stdout).not.toMatch(/installed|generated/);
    expect(tree(dataDir).join('\n') + readFileSync(join(dataDir, 'config', 'config.ini'), 'utf8')).toBe(before);
    expect(await commits(dataDir)).toHaveLength(1);
  }, 90_000);

  it('when config.ini is in place but no master key, then once generates it as a first serve does; a configured key file that is missing is one line naming the fix', async () => {
    const dataDir = tempDir();
    mkdirSync(join(dataDir, 'config'));
    writeFileSync(join(dataDir, 'config', 'config.ini'), readFileSync(new URL('../../config/config.ini', import.meta.url)));
    const missing = join(tempDir(), 'master.key');
    const refused = await cli(['once'], { CONFHUB_DATA_DIR: dataDir, CONFHUB_MASTER_KEY_FILE: missing });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      `confhub: the master key file ${missing} does not exist; create it (32 random bytes: umask 077; head -c 32 /dev/urandom > ${missing}), or unset CONFHUB_MASTER_KEY_FILE to use master.key in the data directory, generated on first start\n`,
    );

    const ran = await cli(['once'], { CONFHUB_DATA_DIR: dataDir });
    expect(ran.code, ran.stdout + ran.stderr).toBe(0);
    expect(ran.stdout).toContain(`generated the master key ${join(dataDir, 'master.key')} (back it up)`);
    expect(ran.stdout).not.toContain('installed');
    expect(statSync(join(dataDir, 'master.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dataDir, 'config', 'config.ini'), 'utf8')).toMatch(/^user_pwd = enc:v1:/m);
  }, 60_000);

  it('when the master key that sealed config.ini is lost, then once says so in one line with the fix and leaves no new key behind', async () => {
    const dataDir = tempDir();
    expect((await cli(['once'], { CONFHUB_DATA_DIR: dataDir })).code).toBe(0);
    const key = join(dataDir, 'master.key');
    writeFileSync(key, randomBytes(32));
    const sealedElsewhere = await cli(['once'], { CONFHUB_DATA_DIR: dataDir });
    expect(sealedElsewhere.code).toBe(1);
    expect(sealedElsewhere.stderr).toMatch(/^confhub: config\.ini holds secrets the master key \(file .*\) cannot open: [^\n]*\n$/);
    rmSync(key);
    const lost = await cli(['once'], { CONFHUB_DATA_DIR: dataDir });
    expect(lost.code).toBe(1);
    expect(lost.stderr).toMatch(
      new RegExp(`^confhub: [^\\n]*; ${key.replaceAll('.', '\\.')} did not exist: put the master key that sealed them back from a backup\\n$`),
    );
    expect(existsSync(key)).toBe(false);
  }, 60_000);

  it('when config.ini was edited by hand, then once commits it as a hand edit; the audit log and the event log tell of its runs as of a running confhub', async () => {
    const dataDir = tempDir();
    expect((await cli(['once'], { CONFHUB_DATA_DIR: dataDir })).code).toBe(0);
    const path = join(dataDir, 'config', 'config.ini');
    writeFileSync(path, readFileSync(path, 'utf8').replace(/^port = 9090$/m, 'port = 9292'));
    const ran = await cli(['once'], { CONFHUB_DATA_DIR: dataDir });
    expect(ran.code).toBe(0);
    expect(ran.stdout).toMatch(/^committed revision \w+ to the history as file:file \(startup\)$/m);
    const db = new Database(join(dataDir, 'confhub.db'), { readonly: true });
    try {
      const audit = db.prepare("SELECT action, actor_type || ':' || actor_id AS actor FROM audit_log WHERE action LIKE 'sync.%' ORDER BY id").all();
      expect(audit).toEqual([
        { action: 'sync.applied', actor: 'system:first-boot' },
        { action: 'sync.applied', actor: 'file:file' },
      ]);
      const events = db.prepare("SELECT type FROM events WHERE type LIKE 'sync.%' ORDER BY id").all();
      expect(events).toEqual([{ type: 'sync.applied' }, { type: 'sync.applied' }]);
    } finally {
      db.close();
    }
  }, 60_000);

  it('when the data directory cannot be made (a file in its path, or a directory it may not write), then once and serve say so in one line naming the fix', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'file'), '');
    for (const command of ['once', 'serve']) {
      const ran = await cli([command], { CONFHUB_DATA_DIR: join(dir, 'file', 'data'), CONFHUB_PORT: '0' });
      expect(ran.code).toBe(1);
      expect(ran.stderr).toMatch(
        /^confhub: cannot write \S+ \(ENOTDIR: a part of the path is a file, not a directory\): run confhub as a user [^\n]*CONFHUB_DATA_DIR[^\n]*\n$/,
      );
    }
  }, 60_000);
});
