/**
 * Master key rotation: a new random key seals every sensitive value of config.ini again; the
 * old key is kept among the retired keys so older history revisions still open (and can be
 * rolled back to). Runs while confhub is stopped, since the running process holds the keys.
 *
 * Crash safety: the new key is written to `<key file>.next` before config.ini is sealed with it,
 * and `.next` is read as a retired key at start-up, so no moment exists in which config.ini holds
 * values no key file can open.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import type { AuditLog } from '../audit/audit-log.js';
import { AppError } from '../core/errors.js';
import { writeFileAtomic } from '../fs/atomic-write.js';
import type { Logger } from 'pino';
import { createSettingsStore } from '../settings/store.js';
import { CONFIG_SCHEMA } from '../settings/schema.js';
import { decodeKey, loadKeyring, nextKeyPath, replaceKeyFile, type MasterKeySource } from './master-key.js';
import { createKeyring, masterKey, MASTER_KEY_BYTES } from './secret-box.js';

export interface RotateMasterKeyInput {
  readonly source: MasterKeySource;
  readonly configPath: string;
  readonly audit: AuditLog;
  readonly logger: Logger;
}

export interface RotateMasterKeyResult {
  readonly from: string;
  readonly to: string;
  readonly resealed: number;
}

export async function rotateMasterKey({ source, configPath, audit, logger }: RotateMasterKeyInput): Promise<RotateMasterKeyResult> {
  if (source.envKey !== undefined) {
    throw new AppError('INVALID_REQUEST', {
      details: 'the master key comes from CONFHUB_MASTER_KEY; rotating it needs a key file (CONFHUB_MASTER_KEY_FILE or the default)',
    });
  }
  const { keyring } = await loadKeyring({ ...source, createFile: false });
  const retired = [...keyring.byId.values()].filter((key) => key !== keyring.current);
  const pending = nextKeyPath(source.file);
  // A rotation interrupted after its key became the key file only had the pending copy left to remove.
  if (existsSync(pending) && masterKey(decodeKey(readFileSync(pending), `file ${pending}`)).id === keyring.current.id) rmSync(pending, { force: true });
  // An interrupted rotation finishes with the key config.ini may already be sealed with.
  const next = masterKey(existsSync(pending) ? decodeKey(readFileSync(pending), `file ${pending}`) : randomBytes(MASTER_KEY_BYTES));
  if (!existsSync(pending)) await writeFileAtomic(pending, next.key, { mode: 0o600 });
  const rotated = createKeyring(next, [keyring.current, ...retired]);
  const store = createSettingsStore({ path: configPath, label: 'config.ini', schema: CONFIG_SCHEMA, keyring: rotated, audit, logger });
  const before = store.read();
  const result = await store.restore({ text: before.text, actor: { type: 'system', id: 'cli' }, source: 'rekey' });
  const resealed = before.stored.sections.reduce((n, s) => n + s.entries.filter((e) => e.value.startsWith('enc:v1:')).length, 0) + before.unsealed.length;
  await replaceKeyFile({ file: source.file, next, previous: keyring.current, retired });
  rmSync(pending, { force: true });
  logger.info({ from: keyring.current.id, to: next.id, revision: result.snapshot.revision }, 'master key rotated');
  return { from: keyring.current.id, to: next.id, resealed };
}
