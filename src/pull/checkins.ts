/**
 * Which revision each instance of a service installed, as its init script reports after it
 * installed a bundle: the newest report per instance, so /sync/status shows a fleet that has not
 * caught up. Instances of one target beyond the newest MAX_INSTANCES are forgotten (containers
 * recreated under new names leave theirs behind).
 */
import type { Database } from 'better-sqlite3';
import { AppError } from '../core/errors.js';

export const MAX_INSTANCES = 256;
const INSTANCE = /^[A-Za-z0-9._:-]{1,128}$/;
/** As the init script takes a bundle's REVISION. */
const REVISION = /^[A-Za-z0-9._+-]{1,128}$/;

export interface Checkin {
  readonly target: string;
  readonly instance: string;
  readonly revision: string;
  readonly address: string | null;
  readonly at: number;
}

interface CheckinRow {
  target: string;
  instance: string;
  revision: string;
  address: string | null;
  at: number;
}

export interface CheckinInput {
  readonly revision?: unknown;
  readonly instance?: unknown;
}

function invalid(field: string, message: string): AppError {
  return new AppError('VALIDATION_FAILED', { details: message, data: { errors: [{ field, code: 'INVALID_VALUE', message }] } });
}

export function createCheckins({ db }: { db: Database }) {
  const upsert = db.prepare<CheckinRow>(
    `INSERT INTO target_checkins (target, instance, revision, address, at) VALUES (@target, @instance, @revision, @address, @at)
     ON CONFLICT (target, instance) DO UPDATE SET revision = excluded.revision, address = excluded.address, at = excluded.at`,
  );
  const prune = db.prepare<[string, string, number]>(
    'DELETE FROM target_checkins WHERE target = ? AND instance NOT IN (SELECT instance FROM target_checkins WHERE target = ? ORDER BY at DESC, instance LIMIT ?)',
  );
  const all = db.prepare<[], CheckinRow>('SELECT * FROM target_checkins ORDER BY target, at DESC, instance');
  const record = db.transaction((row: CheckinRow) => {
    upsert.run(row);
    prune.run(row.target, row.target, MAX_INSTANCES);
  });

  return {
    record(
      target: string,
      input: CheckinInput,
      { address, now, fallbackInstance }: { address: string | null; now: number; fallbackInstance: string },
    ): Checkin {
      const extra = Object.keys(input).filter((name) => name !== 'revision' && name !== 'instance');
      if (extra.length > 0) throw invalid(extra[0]!.slice(0, 64), 'unknown field; expected revision and instance');
      if (typeof input.revision !== 'string' || !REVISION.test(input.revision)) {
        throw invalid('revision', 'revision must be the revision the instance installed (1 to 128 of A-Z a-z 0-9 . _ + -)');
      }
      const instance = input.instance === undefined ? fallbackInstance : input.instance;
      if (typeof instance !== 'string' || !INSTANCE.test(instance)) {
        throw invalid('instance', 'instance must be 1 to 128 of A-Z a-z 0-9 . _ : - (a host name, say)');
      }
      const row: CheckinRow = { target, instance, revision: input.revision, address, at: now };
      record(row);
      return row;
    },

    /** Forgets the check-ins of targets system.ini no longer declares. */
    forgetOtherTargets(declared: readonly string[]): number {
      return db.prepare<[string]>('DELETE FROM target_checkins WHERE target NOT IN (SELECT value FROM json_each(?))').run(JSON.stringify(declared)).changes;
    },

    /** Every instance's newest check-in, by target. */
    byTarget(): Map<string, Checkin[]> {
      const map = new Map<string, Checkin[]>();
      for (const row of all.all()) {
        const list = map.get(row.target) ?? [];
        list.push(row);
        map.set(row.target, list);
      }
      return map;
    },
  };
}

export type Checkins = ReturnType<typeof createCheckins>;
