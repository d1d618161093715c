/**
 * A full disk: a write of config.ini answers 507 INSUFFICIENT_STORAGE naming the file whose disk
 * is full and leaves the file byte for byte as it was; an audit log that cannot be written
 * (SQLite full) is told in the answer. The disk is a real tmpfs filled up when this runs as root,
 * simulated at the atomic writer otherwise (see test/support/full-disk.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Database } from 'better-sqlite3';
import request from 'supertest';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { writeFailure } from '../../src/fs/write-failure.js';
import { createLogger } from '../../src/log.js';
import { createConfhub, type Confhub } from '../../src/main.js';
import { loadRuntimeConfig } from '../../src/runtime-config.js';
import { fullDisk, type FullDisk } from '../support/full-disk.js';
import { tempDirs } from '../support/temp-dirs.js';

vi.mock('../../src/fs/atomic-write.js', async (importOriginal) => {
  const { withSimulatedFullDisks } = await import('../support/full-disk.js');
  return withSimulatedFullDisks(await importOriginal<typeof import('../../src/fs/atomic-write.js')>());
});

const tempDir = tempDirs('confhub-full-');
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  confhub: Confhub;
  disk: FullDisk;
  apiKey: string;
}

/** confhub (no worker) whose config directory is on a disk of its own. */
async function setUp(): Promise<Setup> {
  const dir = tempDir();
  const disk = fullDisk(join(dir, 'config'));
  cleanups.push(() => disk.close());
  const config = loadRuntimeConfig(
    { CONFHUB_DATA_DIR: join(dir, 'data'), CONFHUB_CONFIG_DIR: disk.dir, CONFHUB_RATE_LIMIT: '0', CONFHUB_AUTH_FAILURE_LIMIT: '0' },
    dir,
  );
  const confhub = await createConfhub({ config, logger: createLogger({ level: 'silent' }), syncWorker: 'none' });
  cleanups.push(() => confhub.close());
  const apiKey = confhub.settings.read().doc.byName.get('api_key')!.byKey.get('key')!.value;
  return { confhub, disk, apiKey };
}

/** Fills the database up to its last byte: SQLite answers SQLITE_FULL to the next row that needs room. */
function fillDatabase(db: Database): void {
  db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
  const insert = db.prepare<[string]>("INSERT INTO audit_log (at, actor_type, actor_id, action, result) VALUES (0, 'system', 'filler', ?, 'applied')");
  for (const size of [4000, 1000, 200, 50, 1]) {
    try {
      for (;;) insert.run('x'.repeat(size));
    } catch (error) {
      if ((error as { code?: string }).code !== 'SQLITE_FULL') throw error;
    }
  }
}

const putPort = ({ confhub, apiKey }: Setup, port: number) =>
  request(confhub.app).put(`/api/v1/settings/cockpit?key=port&value=${port}`).set('x-api-key', apiKey);

describe('a full disk', () => {
  it('when the disk holding config.ini is full, then a write answers 507 INSUFFICIENT_STORAGE naming it, the file stays byte-identical, and the write works once space is freed', async () => {
    const setup = await setUp();
    const { confhub, disk } = setup;
    const before = readFileSync(confhub.config.configPath);
    disk.fill();

    const refused = await putPort(setup, 9191);
    expect(refused.status).toBe(507);
    expect(refused.body).toMatchObject({ code: 'INSUFFICIENT_STORAGE', message: 'Insufficient Storage' });
    expect(refused.body.details).toMatch(/^the disk holding config\.ini is full \(ENOSPC/);
    expect(refused.body.details).not.toContain(disk.dir);
    expect(refused.headers.warning).toBeUndefined();
    expect(readFileSync(confhub.config.configPath).equals(before)).toBe(true);
    expect(readdirSync(disk.dir).sort()).toEqual(['.filler', 'config.ini', 'system.ini'].filter((name) => disk.real || name !== '.filler'));
    const [row] = confhub.audit.query({ limit: 1 });
    expect(row).toMatchObject({ action: 'settings.update', section: 'cockpit', key: 'port', result: 'refused', errorCode: 'INSUFFICIENT_STORAGE' });

    disk.free();
    const accepted = await putPort(setup, 9191);
    expect(accepted.status).toBe(200);
    expect(confhub.settings.read().doc.byName.get('cockpit')!.byKey.get('port')!.value).toBe('9191');
  });

  it('when the audit log cannot be written because SQLite is full, then the write is answered as usual with a Warning saying so, also when config.ini cannot be written either', async () => {
    const setup = await setUp();
    const { confhub, disk } = setup;
    fillDatabase(confhub.db);

    const accepted = await putPort(setup, 9192);
    expect(accepted.status).toBe(200);
    expect(accepted.headers.warning).toBe('199 confhub "the audit log could not be written: disk full"');
    expect(confhub.settings.read().doc.byName.get('cockpit')!.byKey.get('port')!.value).toBe('9192');

    disk.fill();
    const refused = await putPort(setup, 9193);
    expect(refused.status).toBe(507);
    expect(refused.body.code).toBe('INSUFFICIENT_STORAGE');
    expect(refused.headers.warning).toBe('199 confhub "the audit log could not be written: disk full"');
  });

  it('when the quota of the disk is used up (EDQUOT), then that is a full disk too; other write errors keep their reason', () => {
    const errno = (code: string) => Object.assign(new Error(code), { code });
    expect(writeFailure({ label: 'config.ini', error: errno('EDQUOT') })).toMatchObject({
      code: 'INSUFFICIENT_STORAGE',
      status: 507,
      details: 'the disk holding config.ini is full (EDQUOT: disk quota exceeded)',
    });
    expect(writeFailure({ label: 'config.ini', error: errno('EROFS') })).toMatchObject({
      code: 'INTERNAL_ERROR',
      details: 'config.ini could not be written (EROFS)',
    });
  });
});
