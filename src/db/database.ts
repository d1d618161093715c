/**
 * The SQLite database: audit log, sync runs, the event log. WAL so readers never block the writer;
 * synchronous=NORMAL is durable across process crashes, which is what the audit log needs.
 * Migrations are versioned and each runs in its own transaction.
 */
import { closeSync, openSync } from 'node:fs';
import BetterSqlite3, { type Database } from 'better-sqlite3';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'audit_log',
    sql: `CREATE TABLE audit_log (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      at INTEGER NOT NULL,
      actor_type TEXT NOT NULL,
      actor_id TEXT NOT NULL,
      remote_address TEXT,
      user_agent TEXT,
      request_id TEXT,
      action TEXT NOT NULL,
      section TEXT,
      key TEXT,
      old_value TEXT,
      new_value TEXT,
      result TEXT NOT NULL CHECK (result IN ('applied', 'unchanged', 'refused')),
      error_code TEXT,
      revision TEXT
    );
    CREATE INDEX audit_log_at ON audit_log (at);
    CREATE INDEX audit_log_section ON audit_log (section, id);`,
  },
  {
    version: 2,
    name: 'sync_runs',
    sql: `CREATE TABLE sync_runs (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      revision TEXT NOT NULL,
      source TEXT NOT NULL,
      actor_type TEXT NOT NULL,
      actor_id TEXT NOT NULL,
      outcome TEXT NOT NULL CHECK (outcome IN ('applied', 'unchanged', 'failed', 'rolled_back', 'source_invalid')),
      started_at INTEGER NOT NULL,
      finished_at INTEGER NOT NULL,
      targets TEXT NOT NULL
    );
    CREATE INDEX sync_runs_revision ON sync_runs (revision, id);`,
  },
  {
    version: 3,
    name: 'sync_runs_commit',
    // The history shows each commit's own outcome: two commits can hold the same content (a rollback).
    sql: `ALTER TABLE sync_runs ADD COLUMN commit_id TEXT;
    CREATE INDEX sync_runs_commit ON sync_runs (commit_id, id);`,
  },
  {
    version: 4,
    name: 'events',
    // AUTOINCREMENT: an id is never reused, even after retention deleted the newest rows' elders,
    // so a client's Last-Event-ID keeps its meaning across restarts.
    sql: `CREATE TABLE events (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      type TEXT NOT NULL,
      at INTEGER NOT NULL,
      data TEXT NOT NULL
    );`,
  },
  {
    version: 5,
    name: 'announcements',
    // Another process (the CLI) names the author of a revision it is about to write.
    sql: `CREATE TABLE announcements (
      revision TEXT PRIMARY KEY,
      actor_type TEXT NOT NULL,
      actor_id TEXT NOT NULL,
      source TEXT NOT NULL,
      rollback_of TEXT,
      at INTEGER NOT NULL
    );`,
  },
  {
    version: 6,
    name: 'sync_runs_superseded',
    // Targets whose lane went on to a newer revision before running this one: such a run did not
    // bring every target to its revision, so a restarted worker must not roll back to it.
    sql: `ALTER TABLE sync_runs ADD COLUMN superseded TEXT NOT NULL DEFAULT '[]';`,
  },
  {
    version: 7,
    name: 'audit_refused_without_values',
    // A refused write keeps no value: its key may be a typo of a secret's, which no mask knew.
    sql: `UPDATE audit_log SET old_value = NULL, new_value = NULL WHERE result = 'refused';`,
  },
  {
    version: 8,
    name: 'announcements_own',
    // confhub's own writes are announced too, before the rename: a kill -9 before the worker
    // committed the revision must not make the next start take it for a hand edit.
    sql: `ALTER TABLE announcements ADD COLUMN own INTEGER NOT NULL DEFAULT 0;`,
  },
  {
    version: 9,
    name: 'event_types_by_subject',
    // Event types are named by what they are about (sync.*, source.*): a client resuming from an
    // id of an older confhub reads the events it missed under the names it will see from now on.
    sql: `UPDATE events SET type = 'sync.' || type WHERE type IN ('applied', 'failed', 'rolled_back', 'rollback_failed');
    UPDATE events SET type = 'source.invalid',
      data = CASE WHEN json_extract(data, '$.error.line') IS NULL
        THEN json_object('revision', json_extract(data, '$.revision'), 'code', json_extract(data, '$.error.code'),
          'reason', coalesce(json_extract(data, '$.error.details'), json_extract(data, '$.error.message')))
        ELSE json_object('revision', json_extract(data, '$.revision'), 'code', json_extract(data, '$.error.code'),
          'reason', coalesce(json_extract(data, '$.error.details'), json_extract(data, '$.error.message')), 'line', json_extract(data, '$.error.line'))
      END
      WHERE type = 'source_invalid';`,
  },
  {
    version: 10,
    name: 'webhooks',
    // url and secrets are sealed with the master key: a chat webhook's URL is its credential.
    // cursor: the last event id this endpoint has looked at, so a restart enqueues what it missed.
    sql: `CREATE TABLE webhooks (
      id TEXT PRIMARY KEY,
      url TEXT NOT NULL,
      url_shown TEXT NOT NULL,
      kind TEXT NOT NULL,
      events TEXT NOT NULL,
      active INTEGER NOT NULL,
      description TEXT NOT NULL,
      secret TEXT NOT NULL,
      previous_secret TEXT,
      previous_until INTEGER,
      cursor INTEGER NOT NULL,
      disabled_reason TEXT,
      failing_since INTEGER,
      last_failure_at INTEGER,
      consecutive_failures INTEGER NOT NULL DEFAULT 0,
      next_attempt_at INTEGER,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    );
    CREATE TABLE webhook_deliveries (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
      message_id TEXT NOT NULL,
      events TEXT NOT NULL,
      state TEXT NOT NULL CHECK (state IN ('collecting', 'pending', 'delivered', 'failed')),
      created_at INTEGER NOT NULL,
      last_added_at INTEGER NOT NULL,
      due_at INTEGER NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0,
      last_error TEXT,
      finished_at INTEGER,
      redelivery_of INTEGER,
      test INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX webhook_deliveries_unsent ON webhook_deliveries (webhook_id, test, due_at) WHERE state IN ('collecting', 'pending');
    CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);
    CREATE TABLE webhook_attempts (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
      at INTEGER NOT NULL,
      duration_ms INTEGER NOT NULL,
      result TEXT NOT NULL CHECK (result IN ('delivered', 'failed', 'blocked')),
      response_status INTEGER,
      response_body TEXT,
      error TEXT,
      next_attempt_at INTEGER
    );
    CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);`,
  },
  {
    version: 11,
    name: 'announced templates',
    // The configuration template a write applied, for the history commit of its revision.
    sql: 'ALTER TABLE announcements ADD COLUMN template TEXT;',
  },
  {
    version: 12,
    name: 'pull tokens and check-ins',
    // A token is kept as the sha256 of its secret part only; it is shown once, when it is made.
    // A check-in is the revision one instance of a service installed, the newest per instance.
    sql: `CREATE TABLE target_tokens (
      id TEXT PRIMARY KEY,
      target TEXT NOT NULL,
      digest BLOB NOT NULL,
      description TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      last_used_at INTEGER
    );
    CREATE INDEX target_tokens_target ON target_tokens (target, created_at);
    CREATE TABLE target_checkins (
      target TEXT NOT NULL,
      instance TEXT NOT NULL,
      revision TEXT NOT NULL,
      address TEXT,
      at INTEGER NOT NULL,
      PRIMARY KEY (target, instance)
    );`,
  },
];

export interface OpenDatabaseOptions {
  path: string;
  migrations?: readonly Migration[];
}

export function openDatabase({ path, migrations = MIGRATIONS }: OpenDatabaseOptions): Database {
  // Created owner-only before SQLite opens it; SQLite gives the -wal and -shm files the same mode.
  if (path !== ':memory:') closeSync(openSync(path, 'a', 0o600));
  const db = new BetterSqlite3(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
  )`);
  const applied = new Set((db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version));
  const newest = Math.max(0, ...migrations.map((m) => m.version));
  const unknown = [...applied].filter((version) => version > newest);
  if (unknown.length > 0) {
    db.close();
    throw new Error(`database ${path} has schema version ${Math.max(...unknown)}, newer than this confhub (${newest}); refusing to downgrade it`);
  }
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  try {
    for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
      if (applied.has(migration.version)) continue;
      db.transaction(() => {
        db.exec(migration.sql);
        record.run(migration.version, migration.name, new Date().toISOString());
      })();
    }
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}
