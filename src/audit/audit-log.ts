/**
 * The audit log: every write attempt, accepted or refused, with who, when and what. Sensitive
 * values are masked before they reach this module's callers' rows; this module only stores.
 */
import type { Database } from 'better-sqlite3';

import type { Actor, ActorType } from '../core/actor.js';

export type AuditResult = 'applied' | 'unchanged' | 'refused';

export interface AuditRecord {
  readonly at: number;
  readonly actor: Actor;
  readonly action: string;
  readonly section: string | null;
  readonly key: string | null;
  readonly oldValue: string | null;
  readonly newValue: string | null;
  readonly result: AuditResult;
  readonly errorCode: string | null;
  readonly revision: string | null;
}

export interface AuditEntry {
  id: number;
  time: string;
  actor: { type: ActorType; id: string; remoteAddress: string | null; userAgent: string | null; requestId: string | null };
  action: string;
  section: string | null;
  key: string | null;
  oldValue: string | null;
  newValue: string | null;
  result: AuditResult;
  errorCode: string | null;
  revision: string | null;
}

export interface AuditQuery {
  section?: string;
  /** epoch ms, inclusive */
  since?: number;
  /** entries with a smaller id only (paging) */
  before?: number;
  limit: number;
}

/**
 * What a write whose audit rows could not be recorded tells its caller: the write itself happened
 * (or was refused) all the same. A full disk is the one a user can fix, so it is named.
 */
export function auditFailureWarning(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === 'SQLITE_FULL' ? 'the audit log could not be written: disk full' : 'the audit log could not be written';
}

export interface AuditLog {
  record(records: readonly AuditRecord[]): void;
  query(query: AuditQuery): AuditEntry[];
}

interface AuditRow {
  id: number;
  at: number;
  actor_type: ActorType;
  actor_id: string;
  remote_address: string | null;
  user_agent: string | null;
  request_id: string | null;
  action: string;
  section: string | null;
  key: string | null;
  old_value: string | null;
  new_value: string | null;
  result: AuditResult;
  error_code: string | null;
  revision: string | null;
}

const MAX_TEXT = 1024;

/** Stored strings are bounded and free of control characters (they come from request headers). */
function clean(text: string | null | undefined): string | null {
  if (text === undefined || text === null) return null;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what it is for.
  const visible = text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '?');
  return visible.length > MAX_TEXT ? `${visible.slice(0, MAX_TEXT)}…` : visible;
}

export interface AuditLogOptions {
  db: Database;
  /** Oldest rows beyond this count are pruned. */
  maxRows?: number;
}

export function createAuditLog({ db, maxRows = 200_000 }: AuditLogOptions): AuditLog {
  const insert = db.prepare(`INSERT INTO audit_log
    (at, actor_type, actor_id, remote_address, user_agent, request_id, action, section, key, old_value, new_value, result, error_code, revision)
    VALUES (@at, @actorType, @actorId, @remoteAddress, @userAgent, @requestId, @action, @section, @key, @oldValue, @newValue, @result, @errorCode, @revision)`);
  const prune = db.prepare('DELETE FROM audit_log WHERE id <= (SELECT MAX(id) FROM audit_log) - ?');
  let insertsSincePrune = 0;
  const insertMany = db.transaction((records: readonly AuditRecord[]) => {
    for (const r of records) {
      insert.run({
        at: r.at,
        actorType: r.actor.type,
        actorId: clean(r.actor.id),
        remoteAddress: clean(r.actor.remoteAddress),
        userAgent: clean(r.actor.userAgent),
        requestId: clean(r.actor.requestId),
        action: r.action,
        section: clean(r.section),
        key: clean(r.key),
        oldValue: clean(r.oldValue),
        newValue: clean(r.newValue),
        result: r.result,
        errorCode: r.errorCode,
        revision: r.revision,
      });
    }
    insertsSincePrune += records.length;
    if (insertsSincePrune >= 1000) {
      insertsSincePrune = 0;
      prune.run(maxRows);
    }
  });

  return {
    record(records) {
      if (records.length > 0) insertMany(records);
    },
    query({ section, since, before, limit }) {
      const where: string[] = [];
      const params: Record<string, unknown> = { limit };
      if (section !== undefined) {
        where.push('section = @section');
        params.section = section;
      }
      if (since !== undefined) {
        where.push('at >= @since');
        params.since = since;
      }
      if (before !== undefined) {
        where.push('id < @before');
        params.before = before;
      }
      const sql = `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT @limit`;
      const rows = db.prepare(sql).all(params) as AuditRow[];
      return rows.map((row) => ({
        id: row.id,
        time: new Date(row.at).toISOString(),
        actor: {
          type: row.actor_type,
          id: row.actor_id,
          remoteAddress: row.remote_address,
          userAgent: row.user_agent,
          requestId: row.request_id,
        },
        action: row.action,
        section: row.section,
        key: row.key,
        oldValue: row.old_value,
        newValue: row.new_value,
        result: row.result,
        errorCode: row.error_code,
        revision: row.revision,
      }));
    },
  };
}
