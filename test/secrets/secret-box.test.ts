import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDirs } from '../support/temp-dirs.js';
import { parseIni } from '../../src/ini/document.js';
import { decodeKey, loadKeyring, nextKeyPath, replaceKeyFile, retiredKeysPath } from '../../src/secrets/master-key.js';
import { applyStoredChanges, openDocument, resealDocument } from '../../src/secrets/sealed-document.js';
import { createKeyring, masterKey, openValue, sealValue, type Keyring } from '../../src/secrets/secret-box.js';
import { CONFIG_SCHEMA } from '../../src/settings/schema.js';
import { AppError } from '../../src/core/errors.js';

/** Runs `fn`, which must throw an AppError of `code` whose details match `details`. */
function expectAppError(fn: () => unknown, code: string, details?: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(AppError);
  expect((thrown as AppError).code).toBe(code);
  if (details) expect((thrown as AppError).details).toMatch(details);
}

const keyring = (): Keyring => createKeyring(masterKey(randomBytes(32)));
const tempDir = tempDirs('confhub-secrets-');

/** The sealed value with its decoded body changed by `edit`, re-encoded. */
function alter(sealed: string, edit: (blob: Buffer) => Buffer): string {
  const [prefix, version, id, body] = sealed.split(':') as [string, string, string, string];
  return [prefix, version, id, edit(Buffer.from(body, 'base64url')).toString('base64url')].join(':');
}

describe('sealed values', () => {
  it('when a value is sealed, then it has the enc:v1 form, differs every time and opens to the plaintext', () => {
    const ring = keyring();
    const a = sealValue(ring, 'gitea.user_pwd', 'pässwörd;#x');
    const b = sealValue(ring, 'gitea.user_pwd', 'pässwörd;#x');
    expect(a).toMatch(new RegExp(`^enc:v1:${ring.current.id}:[A-Za-z0-9_-]+$`));
    expect(a).not.toBe(b);
    expect(a).not.toContain('pässwörd');
    expect(openValue(ring, 'gitea.user_pwd', a)).toBe('pässwörd;#x');
    // iv (12) + ciphertext + tag (16): the tag length is pinned.
    expect(Buffer.from(a.split(':')[3]!, 'base64url').length).toBe(12 + Buffer.byteLength('pässwörd;#x') + 16);
  });

  it('when one byte of the ciphertext, the iv or the tag is flipped, then it is refused naming the key', () => {
    const ring = keyring();
    const sealed = sealValue(ring, 'portainer.user_pwd', 'Secret-Value-1');
    for (const index of [0, 12, -1]) {
      const tampered = alter(sealed, (blob) => {
        const copy = Buffer.from(blob);
        const i = index < 0 ? copy.length + index : index;
        copy[i] = copy[i]! ^ 0x01;
        return copy;
      });
      expectAppError(() => openValue(ring, 'portainer.user_pwd', tampered), 'SECRET_UNREADABLE', /portainer\.user_pwd cannot be decrypted/);
    }
  });

  it('when the auth tag is truncated, then it is refused (a short tag is never accepted)', () => {
    const ring = keyring();
    const sealed = sealValue(ring, 'gitea.user_pwd', 'Secret-Value-2');
    for (const cut of [1, 4, 12, 16]) {
      expectAppError(
        () =>
          openValue(
            ring,
            'gitea.user_pwd',
            alter(sealed, (blob) => blob.subarray(0, blob.length - cut)),
          ),
        'SECRET_UNREADABLE',
      );
    }
    expectAppError(
      () =>
        openValue(
          ring,
          'gitea.user_pwd',
          alter(sealed, (blob) => blob.subarray(0, 27)),
        ),
      'SECRET_UNREADABLE',
      /truncated/,
    );
  });

  it('when the master key is another one, then it is refused naming both key ids', () => {
    const sealed = sealValue(keyring(), 'gitea.user_pwd', 'Secret-Value-3');
    const other = keyring();
    expectAppError(
      () => openValue(other, 'gitea.user_pwd', sealed),
      'SECRET_UNREADABLE',
      new RegExp(`master key [0-9a-f]{8}, but the master key is ${other.current.id}`),
    );
  });

  it('when a different key with the same id opens it (a forged key id), then the tag check refuses it', () => {
    const ring = keyring();
    const sealed = sealValue(ring, 'gitea.user_pwd', 'Secret-Value-4');
    const forged: Keyring = {
      current: { id: ring.current.id, key: randomBytes(32) },
      byId: new Map([[ring.current.id, { id: ring.current.id, key: randomBytes(32) }]]),
    };
    expectAppError(() => openValue(forged, 'gitea.user_pwd', sealed), 'SECRET_UNREADABLE', /altered, or it belongs to another key/);
  });

  it('when a sealed value is copied onto another key, then it does not open there (the key is authenticated)', () => {
    const ring = keyring();
    const sealed = sealValue(ring, 'gitea.user_pwd', 'Secret-Value-5');
    expectAppError(() => openValue(ring, 'portainer.user_pwd', sealed), 'SECRET_UNREADABLE', /portainer\.user_pwd/);
  });

  it.each(['enc:v1:', 'enc:v1:abcd:xx', 'enc:v1:0123456z:AAAA', 'enc:v1:01234567:AA=A', 'enc:v2:01234567:AAAA'])(
    'when the value is malformed (%s), then it is refused',
    (value) => {
      expectAppError(() => openValue(keyring(), 'gitea.user_pwd', value), 'SECRET_UNREADABLE');
    },
  );

  it('when a retired key sealed the value, then the keyring still opens it', () => {
    const old = masterKey(randomBytes(32));
    const sealed = sealValue(createKeyring(old), 'gitea.user_pwd', 'Secret-Value-6');
    expect(openValue(createKeyring(masterKey(randomBytes(32)), [old]), 'gitea.user_pwd', sealed)).toBe('Secret-Value-6');
  });
});

describe('master key', () => {
  it('when no key file exists at the default place, then 32 random bytes are written with mode 0600; the next load reads the same key', async () => {
    const file = join(tempDir(), 'master.key');
    const first = await loadKeyring({ file, createFile: true });
    expect(first.created).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file).length).toBe(32);
    const again = await loadKeyring({ file, createFile: true });
    expect(again.created).toBe(false);
    expect(again.keyring.current.id).toBe(first.keyring.current.id);
  });

  it('when the key file has the wrong length, then loading fails naming the file', async () => {
    const file = join(tempDir(), 'master.key');
    writeFileSync(file, randomBytes(31));
    await expect(loadKeyring({ file, createFile: true })).rejects.toMatchObject({ code: 'STARTUP_CONFIG_INVALID', message: expect.stringContaining(file) });
  });

  it('when a configured key file is missing or unreadable, then loading fails and nothing is created', async () => {
    const dir = tempDir();
    await expect(loadKeyring({ file: join(dir, 'secret'), createFile: false })).rejects.toMatchObject({
      code: 'STARTUP_CONFIG_INVALID',
      message: expect.stringContaining('does not exist'),
    });
    await expect(loadKeyring({ file: dir, createFile: false })).rejects.toMatchObject({
      code: 'STARTUP_CONFIG_INVALID',
      message: expect.stringContaining('cannot be read'),
    });
  });

  it('when the key is given as hex, base64 or base64url text, then each decodes to the same 32 bytes', () => {
    const key = randomBytes(32);
    for (const text of [key.toString('hex'), `${key.toString('base64')}\n`, key.toString('base64url')]) expect(decodeKey(Buffer.from(text), 'x')).toEqual(key);
    expect(() => decodeKey(Buffer.from('too-short'), 'in CONFHUB_MASTER_KEY')).toThrow(/CONFHUB_MASTER_KEY must hold 32 bytes/);
  });

  it('when CONFHUB_MASTER_KEY is set, then it is the key and no file is created', async () => {
    const dir = tempDir();
    const key = randomBytes(32);
    const loaded = await loadKeyring({ envKey: key.toString('base64'), file: join(dir, 'master.key'), createFile: true });
    expect(loaded.keyring.current.key).toEqual(key);
    expect(() => statSync(join(dir, 'master.key'))).toThrow();
  });

  it('when the key file can be read by others, then a warning says so', async () => {
    const file = join(tempDir(), 'master.key');
    writeFileSync(file, randomBytes(32));
    chmodSync(file, 0o644);
    expect((await loadKeyring({ file, createFile: false })).warnings.join()).toMatch(/chmod 600/);
  });

  it('when a key is replaced, then the old one is retired and still opens; a pending .next key opens too', async () => {
    const file = join(tempDir(), 'master.key');
    const { keyring: first } = await loadKeyring({ file, createFile: true });
    const next = masterKey(randomBytes(32));
    await replaceKeyFile({ file, next, previous: first.current, retired: [] });
    expect(statSync(retiredKeysPath(file)).mode & 0o777).toBe(0o600);
    const { keyring: second } = await loadKeyring({ file, createFile: false });
    expect(second.current.id).toBe(next.id);
    expect([...second.byId.keys()].sort()).toEqual([first.current.id, next.id].sort());
    const pending = masterKey(randomBytes(32));
    writeFileSync(nextKeyPath(file), pending.key);
    expect((await loadKeyring({ file, createFile: false })).keyring.byId.has(pending.id)).toBe(true);
  });
});

describe('sealed documents', () => {
  const TEXT = '; comment\r\n[gitea]\r\nuser_name=admin\r\nuser_pwd=plain-Text-1\r\n\r\n[api_key]\r\nkey = \r\n';

  it('when a document holds a sensitive value in plain text, then it is reported as unsealed and used as is', () => {
    const opened = openDocument({ stored: parseIni(TEXT), schema: CONFIG_SCHEMA, keyring: keyring() });
    expect(opened.unsealed).toEqual(['gitea.user_pwd']);
    expect(opened.doc.byName.get('gitea')!.byKey.get('user_pwd')!.value).toBe('plain-Text-1');
  });

  it('when plaintext changes are applied, then sensitive values are sealed, other lines keep every byte, and the result opens to the plaintext', () => {
    const ring = keyring();
    const text = applyStoredChanges({
      stored: parseIni(TEXT),
      changes: [
        { section: 'gitea', key: 'user_pwd', value: 'plain-Text-1' },
        { section: 'gitea', key: 'user_name', value: 'root' },
      ],
      schema: CONFIG_SCHEMA,
      keyring: ring,
    });
    expect(text).not.toContain('plain-Text-1');
    expect(text).toMatch(/^; comment\r\n\[gitea\]\r\nuser_name=root\r\nuser_pwd=enc:v1:[0-9a-f]{8}:[A-Za-z0-9_-]+\r\n\r\n\[api_key\]\r\nkey = \r\n$/);
    const opened = openDocument({ stored: parseIni(text), schema: CONFIG_SCHEMA, keyring: ring });
    expect(opened.unsealed).toEqual([]);
    expect(opened.doc.byName.get('gitea')!.byKey.get('user_pwd')!.value).toBe('plain-Text-1');
  });

  it('when two sealed values do not open, then one error names both keys', () => {
    const ring = keyring();
    const text = applyStoredChanges({
      stored: parseIni(TEXT),
      changes: [
        { section: 'gitea', key: 'user_pwd', value: 'x-Secret-1' },
        { section: 'api_key', key: 'key', value: 'k'.repeat(40) },
      ],
      schema: CONFIG_SCHEMA,
      keyring: ring,
    });
    expectAppError(
      () => openDocument({ stored: parseIni(text), schema: CONFIG_SCHEMA, keyring: keyring() }),
      'SECRET_UNREADABLE',
      /gitea\.user_pwd.*api_key\.key/,
    );
  });

  it('when a document is resealed under the current key, then it is returned byte for byte; under a retired key, its values are sealed again', () => {
    const old = masterKey(randomBytes(32));
    const text = applyStoredChanges({
      stored: parseIni(TEXT),
      changes: [{ section: 'gitea', key: 'user_pwd', value: 'x-Secret-2' }],
      schema: CONFIG_SCHEMA,
      keyring: createKeyring(old),
    });
    const same = createKeyring(old);
    const stored = parseIni(text);
    expect(resealDocument({ text, stored, opened: openDocument({ stored, schema: CONFIG_SCHEMA, keyring: same }), schema: CONFIG_SCHEMA, keyring: same })).toBe(
      text,
    );
    const rotated = createKeyring(masterKey(randomBytes(32)), [old]);
    const again = resealDocument({
      text,
      stored,
      opened: openDocument({ stored, schema: CONFIG_SCHEMA, keyring: rotated }),
      schema: CONFIG_SCHEMA,
      keyring: rotated,
    });
    expect(again).toContain(`enc:v1:${rotated.current.id}:`);
    expect(
      openDocument({ stored: parseIni(again), schema: CONFIG_SCHEMA, keyring: createKeyring(rotated.current) })
        .doc.byName.get('gitea')!
        .byKey.get('user_pwd')!.value,
    ).toBe('x-Secret-2');
  });
});
