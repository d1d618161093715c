import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/audit/audit-log.js';
import { openDatabase } from '../../src/db/database.js';
import { parseIni } from '../../src/ini/document.js';
import { loadKeyring, nextKeyPath, retiredKeysPath } from '../../src/secrets/master-key.js';
import { rotateMasterKey } from '../../src/secrets/rekey.js';
import { applyStoredChanges, openDocument } from '../../src/secrets/sealed-document.js';
import { createKeyring, masterKey, type Keyring } from '../../src/secrets/secret-box.js';
import { CONFIG_SCHEMA } from '../../src/settings/schema.js';
import { tempDirs } from '../support/temp-dirs.js';

const tempDir = tempDirs('confhub-rekey-');
const PLAIN = '# notes\n[gitea]\nuser_name = root\nuser_pwd = Rekey-Pass-1\n\n[api_key]\nkey = abcdefghijklmnopqrstuvwxyz0123456789ABCD\n';

function setUp(sealWith?: Keyring): { file: string; configPath: string; keyring: Keyring } {
  const dir = tempDir();
  const file = join(dir, 'master.key');
  const key = masterKey(randomBytes(32));
  writeFileSync(file, key.key, { mode: 0o600 });
  const keyring = createKeyring(key);
  const configPath = join(dir, 'config.ini');
  const values = [
    { section: 'gitea', key: 'user_pwd', value: 'Rekey-Pass-1' },
    { section: 'api_key', key: 'key', value: 'abcdefghijklmnopqrstuvwxyz0123456789ABCD' },
  ];
  writeFileSync(configPath, applyStoredChanges({ stored: parseIni(PLAIN), changes: values, schema: CONFIG_SCHEMA, keyring: sealWith ?? keyring }), {
    mode: 0o600,
  });
  return { file, configPath, keyring };
}

async function rotate(file: string, configPath: string) {
  const db = openDatabase({ path: ':memory:' });
  try {
    return await rotateMasterKey({ source: { file, createFile: false }, configPath, audit: createAuditLog({ db }), logger: pino({ level: 'silent' }) });
  } finally {
    db.close();
  }
}

async function opened(file: string, configPath: string) {
  const { keyring } = await loadKeyring({ file, createFile: false });
  const text = readFileSync(configPath, 'utf8');
  return { keyring, text, doc: openDocument({ stored: parseIni(text), schema: CONFIG_SCHEMA, keyring }).doc };
}

describe('master key rotation', () => {
  it('when the key is rotated, then every value is sealed with the new key, opens to the same plaintext, and the old key is retired', async () => {
    const { file, configPath, keyring } = setUp();
    const result = await rotate(file, configPath);
    expect(result).toMatchObject({ from: keyring.current.id, resealed: 2 });
    const after = await opened(file, configPath);
    expect(after.keyring.current.id).toBe(result.to);
    expect(after.text).not.toContain(`enc:v1:${keyring.current.id}:`);
    expect(after.text.match(new RegExp(`enc:v1:${result.to}:`, 'g'))).toHaveLength(2);
    expect(after.text.startsWith('# notes\n[gitea]\nuser_name = root\n')).toBe(true);
    expect(after.doc.byName.get('gitea')!.byKey.get('user_pwd')!.value).toBe('Rekey-Pass-1');
    expect(readFileSync(retiredKeysPath(file), 'utf8')).toContain(keyring.current.key.toString('base64'));
    expect(existsSync(nextKeyPath(file))).toBe(false);
  });

  it('when a rotation stopped after sealing config.ini with the pending key, then the next start opens it and rotating again finishes with that key', async () => {
    const pending = masterKey(randomBytes(32));
    const { file, configPath } = setUp(createKeyring(pending));
    writeFileSync(nextKeyPath(file), pending.key, { mode: 0o600 });
    expect((await opened(file, configPath)).doc.byName.get('gitea')!.byKey.get('user_pwd')!.value).toBe('Rekey-Pass-1');
    const result = await rotate(file, configPath);
    expect(result.to).toBe(pending.id);
    expect((await opened(file, configPath)).keyring.current.id).toBe(pending.id);
  });

  it('when a rotation stopped after its key became the key file, then rotating again makes a new key rather than "rotating" to the same one', async () => {
    const { file, configPath, keyring } = setUp();
    writeFileSync(nextKeyPath(file), keyring.current.key, { mode: 0o600 });
    const result = await rotate(file, configPath);
    expect(result.to).not.toBe(keyring.current.id);
    expect((await opened(file, configPath)).doc.byName.get('api_key')!.byKey.get('key')!.value).toBe('abcdefghijklmnopqrstuvwxyz0123456789ABCD');
  });
});
