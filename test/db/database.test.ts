import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDirs } from '../support/temp-dirs.js';
import { MIGRATIONS, openDatabase } from '../../src/db/database.js';

const tempDir = tempDirs('confhub-db-');
const dbPath = (): string => join(tempDir(), 'confhub.db');

describe('database migrations', () => {
  it('when opened twice, then each migration runs once and WAL is on', () => {
    const path = dbPath();
    openDatabase({ path }).close();
    const db = openDatabase({ path });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    const versions = db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[];
    expect(versions.map((v) => v.version)).toEqual(MIGRATIONS.map((m) => m.version));
    db.close();
  });

  it('when a later migration is added, then only it runs on the next open', () => {
    const path = dbPath();
    openDatabase({ path }).close();
    const extra = [...MIGRATIONS, { version: 99, name: 'extra', sql: 'CREATE TABLE extra (x INTEGER)' }];
    const db = openDatabase({ path, migrations: extra });
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'extra'").get()).toEqual({ name: 'extra' });
    db.close();
  });

  it('when an event log from before migration 9 holds the old type names, then they are renamed and source_invalid takes the new shape', () => {
    const path = dbPath();
    const old = openDatabase({ path, migrations: MIGRATIONS.filter((m) => m.version < 9) });
    const insert = old.prepare('INSERT INTO events (type, at, data) VALUES (?, 1, ?)');
    insert.run('applied', '{"revision":"r1"}');
    insert.run('source_invalid', '{"revision":"r2","error":{"code":"INI_SYNTAX","message":"INI syntax error","details":"line 3: no section","line":3}}');
    insert.run('source_invalid', '{"revision":"r3","error":{"code":"CONFIG_INVALID","message":"config.ini is invalid"}}');
    insert.run('rollback_failed', '{}');
    insert.run('settings.changed', '{"keys":[]}');
    old.close();
    const db = openDatabase({ path });
    const rows = db.prepare('SELECT type, data FROM events ORDER BY id').all() as { type: string; data: string }[];
    expect(rows.map((r) => [r.type, JSON.parse(r.data)])).toEqual([
      ['sync.applied', { revision: 'r1' }],
      ['source.invalid', { revision: 'r2', code: 'INI_SYNTAX', reason: 'line 3: no section', line: 3 }],
      ['source.invalid', { revision: 'r3', code: 'CONFIG_INVALID', reason: 'config.ini is invalid' }],
      ['sync.rollback_failed', {}],
      ['settings.changed', { keys: [] }],
    ]);
    db.close();
  });

  it('when an audit log from before migration 7 holds values of refused writes, then the migration removes them and keeps the rest', () => {
    const path = dbPath();
    openDatabase({ path, migrations: MIGRATIONS.filter((m) => m.version < 7) }).close();
    const old = openDatabase({ path, migrations: MIGRATIONS.filter((m) => m.version < 7) });
    const insert = old.prepare(
      "INSERT INTO audit_log (at, actor_type, actor_id, action, section, key, old_value, new_value, result) VALUES (1, 'api', 'k', 'settings.update', 'gitea', ?, ?, ?, ?)",
    );
    insert.run('user_pw', null, 'typed-secret', 'refused');
    insert.run('user_name', 'a', 'b', 'applied');
    old.close();
    const db = openDatabase({ path });
    expect(db.prepare('SELECT key, old_value, new_value FROM audit_log ORDER BY id').all()).toEqual([
      { key: 'user_pw', old_value: null, new_value: null },
      { key: 'user_name', old_value: 'a', new_value: 'b' },
    ]);
    db.close();
  });

  it('when the database is newer than this code, then opening it fails instead of downgrading', () => {
    const path = dbPath();
    openDatabase({ path, migrations: [...MIGRATIONS, { version: 99, name: 'future', sql: 'SELECT 1' }] }).close();
    expect(() => openDatabase({ path })).toThrow(/newer than this confhub/);
  });

  it('when a migration fails, then it is rolled back and not recorded', () => {
    const path = dbPath();
    const broken = [...MIGRATIONS, { version: 98, name: 'broken', sql: 'CREATE TABLE half (x INTEGER); THIS IS NOT SQL' }];
    expect(() => openDatabase({ path, migrations: broken })).toThrow();
    const db = openDatabase({ path });
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'half'").get()).toBeUndefined();
    expect(db.prepare('SELECT COUNT(*) AS n FROM schema_migrations').get()).toEqual({ n: MIGRATIONS.length });
    db.close();
  });
});
