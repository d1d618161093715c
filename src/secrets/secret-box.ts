/**
 * Sealed values: how a sensitive key is stored in config.ini.
 *
 *   enc:v1:<key id>:<base64url(iv ‖ ciphertext ‖ tag)>
 *
 * AES-256-GCM with a random 12-byte IV and a 16-byte tag; the additional authenticated data is
 * `section.key` (key lowercased), so a sealed value copied onto another key does not open. The
 * key id names the master key that sealed the value, so a value sealed with another key is told
 * apart from a tampered one.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { AppError } from '../core/errors.js';

export const SEALED_PREFIX = 'enc:v1:';
const IV_BYTES = 12;
const TAG_BYTES = 16;
export const MASTER_KEY_BYTES = 32;
const SEALED = /^enc:v1:([0-9a-f]{8}):([A-Za-z0-9_-]+)$/;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export interface MasterKey {
  /** 8 hex characters derived from the key; never the key itself. */
  readonly id: string;
  readonly key: Buffer;
}

export interface Keyring {
  /** Seals every new value. */
  readonly current: MasterKey;
  /** Every key that can open a value: the current one and retired ones. */
  readonly byId: ReadonlyMap<string, MasterKey>;
}

export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update('confhub master key id\0').update(key).digest('hex').slice(0, 8);
}

export function masterKey(key: Buffer): MasterKey {
  if (key.length !== MASTER_KEY_BYTES) throw new Error(`a master key has ${MASTER_KEY_BYTES} bytes, not ${key.length}`);
  return Object.freeze({ id: keyIdOf(key), key: Buffer.from(key) });
}

export function createKeyring(current: MasterKey, retired: readonly MasterKey[] = []): Keyring {
  const byId = new Map<string, MasterKey>();
  for (const key of retired) byId.set(key.id, key);
  byId.set(current.id, current);
  return Object.freeze({ current, byId });
}

export function isSealed(value: string): boolean {
  return value.startsWith(SEALED_PREFIX);
}

/** The key id a sealed value names, or undefined when it is not a well-formed sealed value. */
export function sealedKeyId(value: string): string | undefined {
  return SEALED.exec(value)?.[1];
}

export function sealValue(keyring: Keyring, field: string, plaintext: string): string {
  const { id, key } = keyring.current;
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(field, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return `${SEALED_PREFIX}${id}:${Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url')}`;
}

function unreadable(field: string, why: string): AppError {
  return new AppError('SECRET_UNREADABLE', { details: `${field} cannot be decrypted: ${why}`, data: { field } });
}

/** Opens a sealed value of `field` (`section.key`); throws SECRET_UNREADABLE naming the field. */
export function openValue(keyring: Keyring, field: string, sealed: string): string {
  const match = SEALED.exec(sealed);
  if (!match) throw unreadable(field, 'it is not a well-formed enc:v1 value');
  const [, id, encoded] = match as unknown as [string, string, string];
  const key = keyring.byId.get(id);
  if (!key) throw unreadable(field, `it was sealed with master key ${id}, but the master key is ${keyring.current.id}`);
  const blob = Buffer.from(encoded, 'base64url');
  // base64url decoding skips what it cannot read: a value that does not re-encode identically was altered.
  if (blob.toString('base64url') !== encoded || blob.length < IV_BYTES + TAG_BYTES) throw unreadable(field, 'the value is truncated or altered');
  const iv = blob.subarray(0, IV_BYTES);
  const tag = blob.subarray(blob.length - TAG_BYTES);
  const body = blob.subarray(IV_BYTES, blob.length - TAG_BYTES);
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(field, 'utf8'));
    decipher.setAuthTag(tag);
    plain = Buffer.concat([decipher.update(body), decipher.final()]);
  } catch (cause) {
    throw new AppError('SECRET_UNREADABLE', {
      details: `${field} cannot be decrypted: the value was altered, or it belongs to another key`,
      data: { field },
      cause,
    });
  }
  try {
    return utf8.decode(plain);
  } catch (cause) {
    throw new AppError('SECRET_UNREADABLE', { details: `${field} cannot be decrypted: not UTF-8 text`, data: { field }, cause });
  }
}
