/**
 * Per-target read-only tokens: what a service container holds instead of the API key. A token
 * reads its target's bundle and checks in for it, nothing else. `cht_<id>_<secret>`: the id finds
 * the row, the secret is kept as its sha256 only and compared in constant time, so neither the
 * database nor timing gives a token away. Shown once, when it is made.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Database } from 'better-sqlite3';
import { AppError, type FieldIssue } from '../core/errors.js';

export const MAX_TOKENS_PER_TARGET = 50;
const MAX_DESCRIPTION_LENGTH = 200;
const TOKEN = /^cht_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
/** A use is written back at most this often per token: a busy fleet must not turn reads into writes. */
const LAST_USED_GRANULARITY_MS = 60_000;

export interface TargetToken {
  readonly id: string;
  readonly target: string;
  readonly description: string;
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
}

export type TokenVerdict = { readonly ok: true; readonly id: string } | { readonly ok: false };

interface TokenRow {
  id: string;
  target: string;
  digest: Buffer;
  description: string;
  created_at: number;
  last_used_at: number | null;
}

const digestOf = (secret: string): Buffer => createHash('sha256').update(secret, 'utf8').digest();
/** Compared against when no row matched, so an unknown id costs what a known one does. */
const NO_DIGEST = digestOf('\u0000no such token');

function view(row: TokenRow): TargetToken {
  return { id: row.id, target: row.target, description: row.description, createdAt: row.created_at, lastUsedAt: row.last_used_at };
}

export function tokenNotFound(id: string): AppError {
  return new AppError('TOKEN_NOT_FOUND', { details: `no token ${JSON.stringify(id.slice(0, 32))} for this target` });
}

export function createTargetTokens({ db }: { db: Database }) {
  const insert = db.prepare<{ id: string; target: string; digest: Buffer; description: string; at: number }>(
    'INSERT INTO target_tokens (id, target, digest, description, created_at) VALUES (@id, @target, @digest, @description, @at)',
  );
  const byId = db.prepare<[string], TokenRow>('SELECT * FROM target_tokens WHERE id = ?');
  const ofTarget = db.prepare<[string], TokenRow>('SELECT * FROM target_tokens WHERE target = ? ORDER BY created_at, id');
  const countOf = db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM target_tokens WHERE target = ?');
  const remove = db.prepare<[string, string]>('DELETE FROM target_tokens WHERE id = ? AND target = ?');
  const used = db.prepare<[number, string]>('UPDATE target_tokens SET last_used_at = ? WHERE id = ?');

  return {
    create(target: string, { description, now }: { description: unknown; now: number }): { token: string; record: TargetToken } {
      if (description !== undefined && (typeof description !== 'string' || description.length > MAX_DESCRIPTION_LENGTH || /\p{Cc}/u.test(description))) {
        const issue: FieldIssue = {
          field: 'description',
          code: 'INVALID_VALUE',
          message: `description must be text of at most ${MAX_DESCRIPTION_LENGTH} characters without control characters`,
        };
        throw new AppError('VALIDATION_FAILED', { details: issue.message, data: { errors: [issue] } });
      }
      if (countOf.get(target)!.n >= MAX_TOKENS_PER_TARGET) {
        throw new AppError('TOKEN_LIMIT_REACHED', { details: `target ${target} has ${MAX_TOKENS_PER_TARGET} tokens, the most it may have; revoke one first` });
      }
      const id = randomBytes(8).toString('hex');
      const secret = randomBytes(32).toString('base64url');
      insert.run({ id, target, digest: digestOf(secret), description: (description as string | undefined) ?? '', at: now });
      return { token: `cht_${id}_${secret}`, record: view(byId.get(id)!) };
    },

    list(target: string): TargetToken[] {
      return ofTarget.all(target).map(view);
    },

    /**
     * Removes the tokens of targets system.ini no longer declares, so none comes back to life when
     * a target of the same name is declared again (for another service, say). Answers how many.
     */
    forgetOtherTargets(declared: readonly string[]): number {
      const names = JSON.stringify(declared);
      return db.prepare<[string]>('DELETE FROM target_tokens WHERE target NOT IN (SELECT value FROM json_each(?))').run(names).changes;
    },

    revoke(target: string, id: string): void {
      if (remove.run(id, target).changes === 0) throw tokenNotFound(id);
    },

    /** Whether `presented` is a token of `target`; a token of another target is refused alike. */
    verify(target: string, presented: string, now: number): TokenVerdict {
      const match = TOKEN.exec(presented);
      const row = match ? byId.get(match[1]!) : undefined;
      const equal = timingSafeEqual(digestOf(match?.[2] ?? presented), row?.digest ?? NO_DIGEST);
      if (!row || !equal || row.target !== target) return { ok: false };
      if (row.last_used_at === null || now - row.last_used_at >= LAST_USED_GRANULARITY_MS) used.run(now, row.id);
      return { ok: true, id: row.id };
    },
  };
}

export type TargetTokens = ReturnType<typeof createTargetTokens>;
