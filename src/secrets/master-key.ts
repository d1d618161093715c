/**
 * Where the master key comes from: CONFHUB_MASTER_KEY (base64 or hex), a file named by
 * CONFHUB_MASTER_KEY_FILE (a Docker secret), or `master.key` in the data directory, created with
 * 32 random bytes (mode 0600) on first start. Keys retired by a rotation stay in
 * `<key file>.retired`, one per line, so older history revisions can still be opened.
 * A key of the wrong length, or a file that cannot be read, stops the start with a message.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { AppError } from '../core/errors.js';
import { writeFileAtomic } from '../fs/atomic-write.js';
import { createKeyring, masterKey, MASTER_KEY_BYTES, type Keyring, type MasterKey } from './secret-box.js';

export interface MasterKeySource {
  /** CONFHUB_MASTER_KEY: the key itself. */
  readonly envKey?: string;
  /** The key file: CONFHUB_MASTER_KEY_FILE, or the default in the data directory. */
  readonly file: string;
  /** The file is the default one, which is created when missing. */
  readonly createFile: boolean;
  /** How to fix a missing file that is not created here: said after "does not exist". */
  readonly whenMissing?: string;
}

export interface LoadedKeyring {
  readonly keyring: Keyring;
  /** Where the current key came from, for messages (never the key). */
  readonly origin: string;
  readonly created: boolean;
  readonly warnings: readonly string[];
}

function invalid(origin: string, problem: string, cause?: unknown): AppError {
  return new AppError('STARTUP_CONFIG_INVALID', { message: `the master key ${origin} ${problem}`, details: `the master key ${origin} ${problem}`, cause });
}

/** 32 raw bytes, or the same as 64 hex digits or base64/base64url text (one line). */
export function decodeKey(bytes: Buffer, origin: string): Buffer {
  if (bytes.length === MASTER_KEY_BYTES) return Buffer.from(bytes);
  const text = bytes.toString('latin1').trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/_-]{42,44}={0,2}$/.test(text)) {
    const decoded = Buffer.from(text.replace(/=+$/, ''), text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
    if (decoded.length === MASTER_KEY_BYTES) return decoded;
  }
  throw invalid(origin, `must hold ${MASTER_KEY_BYTES} bytes (raw, 64 hex digits or base64); it holds ${bytes.length} bytes that are none of these`);
}

function readKeyFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (cause) {
    throw invalid(`file ${path}`, `cannot be read (${(cause as NodeJS.ErrnoException).code ?? 'error'})`, cause);
  }
}

export function retiredKeysPath(file: string): string {
  return `${file}.retired`;
}

/** The key of a rotation in progress (see rekey.ts). */
export function nextKeyPath(file: string): string {
  return `${file}.next`;
}

function readRetired(file: string): MasterKey[] {
  const keys: MasterKey[] = [];
  const path = retiredKeysPath(file);
  if (existsSync(path)) {
    const lines = readKeyFile(path)
      .toString('latin1')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '');
    keys.push(...lines.map((line, i) => masterKey(decodeKey(Buffer.from(line, 'latin1'), `file ${path} line ${i + 1}`))));
  }
  const next = nextKeyPath(file);
  if (existsSync(next)) keys.push(masterKey(decodeKey(readKeyFile(next), `file ${next}`)));
  return keys;
}

export async function loadKeyring(source: MasterKeySource): Promise<LoadedKeyring> {
  const warnings: string[] = [];
  if (source.envKey !== undefined) {
    const key = masterKey(decodeKey(Buffer.from(source.envKey, 'latin1'), 'in CONFHUB_MASTER_KEY'));
    return { keyring: createKeyring(key), origin: 'CONFHUB_MASTER_KEY', created: false, warnings };
  }
  let created = false;
  if (!existsSync(source.file)) {
    if (!source.createFile) throw invalid(`file ${source.file}`, `does not exist${source.whenMissing ? `; ${source.whenMissing}` : ''}`);
    await writeFileAtomic(source.file, randomBytes(MASTER_KEY_BYTES), { mode: 0o600 });
    created = true;
  }
  const stat = statSync(source.file);
  if ((stat.mode & 0o077) !== 0 && stat.uid === process.getuid?.()) {
    warnings.push(`the master key file ${source.file} can be read by other users (mode ${(stat.mode & 0o777).toString(8)}); chmod 600 it`);
  }
  const key = masterKey(decodeKey(readKeyFile(source.file), `file ${source.file}`));
  return { keyring: createKeyring(key, readRetired(source.file)), origin: `file ${source.file}`, created, warnings };
}

/** Rotation: the new key becomes the key file; the old one is appended to the retired keys. */
export interface ReplaceKeyFileInput {
  readonly file: string;
  readonly next: MasterKey;
  readonly previous: MasterKey;
  readonly retired: readonly MasterKey[];
}

export async function replaceKeyFile({ file, next, previous, retired }: ReplaceKeyFileInput): Promise<void> {
  const keep = [previous, ...retired.filter((key) => key.id !== previous.id && key.id !== next.id)];
  await writeFileAtomic(retiredKeysPath(file), `${keep.map((key) => key.key.toString('base64')).join('\n')}\n`, { mode: 0o600 });
  await writeFileAtomic(file, next.key, { mode: 0o600 });
}
