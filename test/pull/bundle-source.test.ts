/**
 * The bundle of a target that applied another revision than config.ini holds now (a write still
 * being applied, one rolled back): rendered from that revision, taken from the history commit its
 * sync run names, secrets opened. And a bundle whose targets applied different revisions.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { parseIni } from '../../src/ini/document.js';
import { createBundleSource } from '../../src/pull/bundle-source.js';
import { createRevisionDocuments } from '../../src/pull/revision-documents.js';
import { createKeyring, masterKey, sealValue } from '../../src/secrets/secret-box.js';
import { NO_RESOLVE } from '../../src/settings/resolve.js';
import { revisionOf } from '../../src/settings/revision.js';
import { CONFIG_SCHEMA } from '../../src/settings/schema.js';
import type { TargetStatus } from '../../src/sync/target-status.js';
import { NO_ENV_DECLARATIONS } from '../../src/targets/env-spec.js';
import { parseSyncConfig } from '../../src/targets/target-spec.js';

const keyring = createKeyring(masterKey(randomBytes(32)));
const textOf = (password: string) => `[gitea]\nuser_name = admin\nuser_pwd = ${sealValue(keyring, 'gitea.user_pwd', password)}\n`;
const { targets, paths } = parseSyncConfig({
  doc: parseIni(
    '[target:git]\nsections = gitea\nformat = json\noutput = git/app.json\n[target:git-ini]\nsections = gitea\nformat = ini\noutput = git/app.ini\npart_of = git\n',
  ),
  dataDir: '/srv/data',
  configDir: '/srv/data/config',
  own: [],
});

function status(applied: Record<string, string | null>): TargetStatus[] {
  return Object.entries(applied).map(([target, revision]) => ({ target, appliedRevision: revision, state: revision ? 'in_sync' : 'unknown' }) as TargetStatus);
}

function setUp(applied: () => Record<string, string | null>) {
  const db = openDatabase({ path: ':memory:' });
  const commits = new Map<string, string>();
  const runs = db.prepare(
    "INSERT INTO sync_runs (revision, source, actor_type, actor_id, outcome, started_at, finished_at, targets, commit_id) VALUES (?, 'change', 'api', 'k', 'applied', 0, 0, '[]', ?)",
  );
  const commit = (text: string): string => {
    const id = randomBytes(20).toString('hex');
    commits.set(id, text);
    runs.run(revisionOf(text), id);
    return revisionOf(text);
  };
  const read: string[] = [];
  const source = createBundleSource({
    targets,
    paths,
    env: NO_ENV_DECLARATIONS,
    status: () => status(applied()),
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
  return { source, commit, read };
}

describe('bundles of revisions other than the current one', () => {
  it('when the targets applied an earlier revision, then its files are rendered from that history commit with its secrets opened', async () => {
    let applied: Record<string, string | null> = {};
    const { source, commit, read } = setUp(() => applied);
    const old = commit(textOf('old-password-1'));
    commit(textOf('new-password-2'));
    applied = { git: old, 'git-ini': old };
    const bundle = await source.bundle('git');
    expect(bundle.revision).toBe(old);
    expect(bundle.files.map((f) => f.path)).toEqual(['app.json', 'app.ini']);
    expect(bundle.files[0]!.content.toString()).toContain('"user_pwd": "old-password-1"');
    expect(bundle.files[1]!.content.toString()).toContain('old-password-1');
    // Asked again: made once.
    expect(await source.bundle('git')).toBe(bundle);
    expect(read).toHaveLength(1);
  });

  it('when the targets of a bundle applied different revisions, then each file is of its own and the bundle revision names both', async () => {
    let applied: Record<string, string | null> = {};
    const { source, commit } = setUp(() => applied);
    const old = commit(textOf('old-password-1'));
    const now = commit(textOf('new-password-2'));
    applied = { git: now, 'git-ini': old };
    const bundle = await source.bundle('git');
    expect(bundle.files[0]!.content.toString()).toContain('new-password-2');
    expect(bundle.files[1]!.content.toString()).toContain('old-password-1');
    expect(bundle.revision).toMatch(/^mixed-[0-9a-f]{32}$/);
    expect(source.revisionNow('git')).toBe(bundle.revision);
    applied = { git: now, 'git-ini': now };
    expect(source.revisionNow('git')).toBe(now);
    expect((await source.bundle('git')).revision).toBe(now);
  });

  it('when a target has applied nothing yet, or its revision is in no commit, then the bundle is TARGET_NOT_APPLIED; an unknown target TARGET_NOT_FOUND', async () => {
    let applied: Record<string, string | null> = { git: null, 'git-ini': null };
    const { source } = setUp(() => applied);
    await expect(source.bundle('git')).rejects.toMatchObject({
      code: 'TARGET_NOT_APPLIED',
      details: expect.stringContaining('target git has applied no revision yet'),
    });
    expect(source.revisionNow('git')).toBeNull();
    applied = { git: 'a'.repeat(64), 'git-ini': 'a'.repeat(64) };
    await expect(source.bundle('git')).rejects.toMatchObject({ code: 'TARGET_NOT_APPLIED', details: expect.stringContaining('in no history commit') });
    await expect(source.bundle('nope')).rejects.toMatchObject({ code: 'TARGET_NOT_FOUND' });
  });
});
