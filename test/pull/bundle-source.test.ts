/**
 * A bundle is what the worker said is on disk: rendered from the revision it named (the current one
 * or one from the history, secrets opened) when that gives the reported bytes, else read from disk
 * when the file there has them, else TARGET_NOT_APPLIED.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { parseIni } from '../../src/ini/document.js';
import { createBundleSource, revisionOfBundle } from '../../src/pull/bundle-source.js';
import { createRevisionDocuments } from '../../src/pull/revision-documents.js';
import { renderTarget } from '../../src/render/index.js';
import { createKeyring, masterKey, sealValue } from '../../src/secrets/secret-box.js';
import { NO_RESOLVE } from '../../src/settings/resolve.js';
import { revisionOf } from '../../src/settings/revision.js';
import { CONFIG_SCHEMA } from '../../src/settings/schema.js';
import { renderInput } from '../../src/sync/reconcile.js';
import { NO_ENV_DECLARATIONS } from '../../src/targets/env-spec.js';
import type { FileOnDisk } from '../../src/targets/outcome.js';
import { parseSyncConfig } from '../../src/targets/target-spec.js';

const keyring = createKeyring(masterKey(randomBytes(32)));
const textOf = (password: string) => `[gitea]\nuser_name = admin\nuser_pwd = ${sealValue(keyring, 'gitea.user_pwd', password)}\n`;
const sha = (content: string | Buffer) => createHash('sha256').update(content).digest('hex');
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function setUp() {
  const dataDir = mkdtempSync(join(tmpdir(), 'confhub-bundle-src-'));
  dirs.push(dataDir);
  mkdirSync(join(dataDir, 'git'));
  const { targets, paths } = parseSyncConfig({
    doc: parseIni(
      '[target:git]\nsections = gitea\nformat = json\noutput = git/app.json\n[target:git-ini]\nsections = gitea\nformat = ini\noutput = git/app.ini\nmode = 0640\npart_of = git\n',
    ),
    dataDir,
    configDir: join(dataDir, 'config'),
    own: [],
  });
  const db = openDatabase({ path: ':memory:' });
  const commits = new Map<string, string>();
  const runs = db.prepare(
    "INSERT INTO sync_runs (revision, source, actor_type, actor_id, outcome, started_at, finished_at, targets, commit_id) VALUES (?, 'change', 'api', 'k', 'applied', 0, 0, '[]', ?)",
  );
  /** A revision in the history. */
  const commit = (text: string): { revision: string } => {
    const id = randomBytes(20).toString('hex');
    commits.set(id, text);
    runs.run(revisionOf(text), id);
    return { revision: revisionOf(text) };
  };
  const files = new Map<string, FileOnDisk>();
  const read: string[] = [];
  const source = createBundleSource({
    targets,
    paths,
    env: NO_ENV_DECLARATIONS,
    filesOnDisk: () => files,
    documentAt: createRevisionDocuments({
      db,
      textAt: async (id) => {
        read.push(id);
        return commits.get(id)!;
      },
      current: () => undefined,
      keyring,
      schema: CONFIG_SCHEMA,
      resolve: NO_RESOLVE,
    }),
  });
  const render = (target: string, password: string): string => {
    const spec = targets.find((t) => t.name === target)!;
    const doc = parseIni(`[gitea]\nuser_name = admin\nuser_pwd = ${password}\n`);
    return renderTarget(spec.format, renderInput({ doc, spec, template: undefined, env: NO_ENV_DECLARATIONS }));
  };
  return { dataDir, source, commit, files, read, render };
}

describe('bundles as the worker wrote them', () => {
  it('when the worker names an earlier revision, then its files are rendered from that history commit with its secrets opened', async () => {
    const { source, commit, files, read, render } = setUp();
    const old = commit(textOf('old-password-1')).revision;
    commit(textOf('new-password-2'));
    files.set('git', { target: 'git', revision: old, sha256: sha(render('git', 'old-password-1')) });
    files.set('git-ini', { target: 'git-ini', revision: old, sha256: sha(render('git-ini', 'old-password-1')) });
    const bundle = await source.bundle('git');
    expect(bundle.revision).toBe(old);
    expect(bundle.files.map((f) => [f.path, f.mode])).toEqual([
      ['app.json', 0o600],
      ['app.ini', 0o640],
    ]);
    expect(bundle.files[0]!.content.toString()).toContain('"user_pwd": "old-password-1"');
    // Asked again: made once.
    expect(await source.bundle('git')).toBe(bundle);
    expect(read).toHaveLength(1);
  });

  it('when the rendering does not give the bytes the worker reported, then the file on disk is served if it has them, else TARGET_NOT_APPLIED', async () => {
    const { dataDir, source, commit, files, render } = setUp();
    const now = commit(textOf('new-password-2')).revision;
    // Written by an earlier template, or put back from before this start: only the disk has these bytes.
    const onDisk = '{"written": "by the worker"}\n';
    writeFileSync(join(dataDir, 'git', 'app.json'), onDisk, { mode: 0o600 });
    files.set('git', { target: 'git', revision: now, sha256: sha(onDisk) });
    const old = commit(textOf('old-password-1')).revision;
    files.set('git-ini', { target: 'git-ini', revision: old, sha256: sha(render('git-ini', 'old-password-1')) });
    const bundle = await source.bundle('git');
    expect(bundle.files[0]!.content.toString()).toBe(onDisk);
    expect(bundle.files[1]!.content.toString()).toContain('old-password-1');
    expect(bundle.revision).toMatch(/^mixed-[0-9a-f]{32}$/);
    expect(source.revisionsNow().get('git')).toBe(bundle.revision);
    // A file of no known revision (left from before confhub, put back from an unknown one): not served.
    files.set('git-ini', { target: 'git-ini', revision: null, sha256: sha(render('git-ini', 'x')) });
    writeFileSync(join(dataDir, 'git', 'app.ini'), render('git-ini', 'x'), { mode: 0o640 });
    await expect(source.bundle('git')).rejects.toMatchObject({ code: 'TARGET_NOT_APPLIED', details: expect.stringContaining('not one confhub wrote') });
    expect(source.revisionsNow().get('git')).toBeNull();
    files.set('git-ini', { target: 'git-ini', revision: old, sha256: sha(render('git-ini', 'old-password-1')) });
    // The file on disk changes under a report that has not come yet: no bytes the worker did not write.
    writeFileSync(join(dataDir, 'git', 'app.json'), '{"half": ', { mode: 0o600 });
    files.set('git', { target: 'git', revision: now, sha256: sha('{"other": 1}\n') });
    await expect(source.bundle('git')).rejects.toMatchObject({ code: 'TARGET_NOT_APPLIED', details: expect.stringContaining('target git is being replaced') });
  });

  it('when a target has no file reported yet, or none on disk, then the bundle is TARGET_NOT_APPLIED; an unknown target TARGET_NOT_FOUND', async () => {
    const { source, files } = setUp();
    await expect(source.bundle('git')).rejects.toMatchObject({ code: 'TARGET_NOT_APPLIED', details: expect.stringContaining('not one confhub wrote yet') });
    expect(source.revisionsNow().get('git')).toBeNull();
    files.set('git', { target: 'git', revision: 'a'.repeat(64), sha256: null });
    files.set('git-ini', { target: 'git-ini', revision: 'a'.repeat(64), sha256: 'b'.repeat(64) });
    await expect(source.bundle('git')).rejects.toMatchObject({ code: 'TARGET_NOT_APPLIED' });
    expect(source.revisionsNow().get('git-ini')).toBe('a'.repeat(64));
    await expect(source.bundle('nope')).rejects.toMatchObject({ code: 'TARGET_NOT_FOUND' });
  });

  it('when files are of one known revision, then that is the bundle revision; otherwise a digest that changes with any file', () => {
    const file = (target: string, revision: string | null, sha256: string): FileOnDisk => ({ target, revision, sha256 });
    expect(revisionOfBundle([file('a', 'r1', 's1'), file('b', 'r1', 's2')])).toBe('r1');
    const mixed = revisionOfBundle([file('a', 'r1', 's1'), file('b', 'r2', 's2')]);
    expect(mixed).toMatch(/^mixed-/);
    expect(revisionOfBundle([file('a', null, 's1')])).not.toBe(revisionOfBundle([file('a', null, 's3')]));
    expect(revisionOfBundle([file('a', 'r1', 's1'), file('b', 'r3', 's2')])).not.toBe(mixed);
  });
});
