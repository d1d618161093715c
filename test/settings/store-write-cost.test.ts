/**
 * What one write costs against the size of config.ini, counted rather than timed: a write
 * plans on the snapshot the previous write left (no secret opened again, no untouched section
 * parsed again), and that snapshot is exactly what a fresh read of the file gives.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/audit/audit-log.js';
import { openDatabase } from '../../src/db/database.js';
import type { IniDocument } from '../../src/ini/document.js';
import { createKeyring, masterKey, type Keyring, type MasterKey } from '../../src/secrets/secret-box.js';
import { CONFIG_SCHEMA } from '../../src/settings/schema.js';
import { createSettingsStore, toSnapshot, type Snapshot } from '../../src/settings/store.js';
import { tempDirs } from '../support/temp-dirs.js';

const tempDir = tempDirs('confhub-write-cost-');
const actor = { type: 'system', id: 'test' } as const;
const SECTIONS = 200;

/** Opening a sealed value looks its master key up in `byId`: counting the look-ups counts the opens. */
function countingKeyring(): { keyring: Keyring; opens: () => number } {
  const key = masterKey(randomBytes(32));
  let opens = 0;
  const byId = new (class extends Map<string, MasterKey> {
    override get(id: string): MasterKey | undefined {
      opens++;
      return super.get(id);
    }
  })([[key.id, key]]);
  return { keyring: { ...createKeyring(key), byId }, opens: () => opens };
}

/** The shipped sections the writes touch, and SECTIONS more of ten keys, one a password each (plain text: the first write seals them). */
function largeConfig(): string {
  const lines = [
    '[gitea]',
    'user_name = admin',
    'user_pwd = Initial-Gitea-Pw-83',
    '',
    '[cockpit]',
    'port = 9090',
    '',
    '[nginx_proxy_manager]',
    'nike_name = admin',
  ];
  for (let s = 0; s < SECTIONS; s++) {
    lines.push('', `[app_${s}]`);
    for (let k = 0; k < 9; k++) lines.push(`setting_${k} = value ${s}.${k}`);
    lines.push(`db_password = App-${s}-Password!`);
  }
  return `${lines.join('\n')}\n`;
}

function storeOn(text: string, keyring?: Keyring) {
  const path = join(tempDir(), 'config.ini');
  writeFileSync(path, text);
  const db = openDatabase({ path: ':memory:' });
  return createSettingsStore({
    path,
    label: 'config.ini',
    schema: CONFIG_SCHEMA,
    audit: createAuditLog({ db }),
    logger: pino({ level: 'silent' }),
    ...(keyring ? { keyring } : {}),
  });
}

function shapeOf(doc: IniDocument) {
  return { bom: doc.bom, lines: [...doc.lines], eols: [...doc.eols], sections: doc.sections.map((s) => ({ ...s, entries: s.entries.map((e) => ({ ...e })) })) };
}

/** A snapshot as plain data, comparable with a fresh read's. */
function snapshotShape(snapshot: Snapshot) {
  return {
    text: snapshot.text,
    revision: snapshot.revision,
    stored: shapeOf(snapshot.stored),
    doc: shapeOf(snapshot.doc),
    unsealed: [...snapshot.unsealed].sort(),
    unreadable: snapshot.unreadable,
    all: JSON.parse(snapshot.view.allJson()),
  };
}

function freshRead(snapshot: Snapshot, keyring: Keyring | undefined): ReturnType<typeof snapshotShape> {
  return snapshotShape(toSnapshot({ text: snapshot.text, label: 'config.ini', schema: CONFIG_SCHEMA, keyring, tolerate: true }));
}

describe('settings store: the cost of a write', () => {
  it('when one key of a file with hundreds of secrets is written, then no secret is opened again and no untouched section is parsed again', async () => {
    const { keyring, opens } = countingKeyring();
    const store = storeOn(largeConfig(), keyring);
    // The first write seals the passwords typed in plain text; the next one starts from its snapshot.
    await store.update({ changes: [{ section: 'nginx_proxy_manager', key: 'nike_name', value: 'first' }], actor });
    const before = (await store.update({ changes: [{ section: 'nginx_proxy_manager', key: 'nike_name', value: 'second' }], actor })).snapshot;
    const opened = opens();

    const after = (await store.update({ changes: [{ section: 'gitea', key: 'user_pwd', value: 'Changed-Gitea-Pw-47' }], actor })).snapshot;

    expect(opens() - opened).toBe(0);
    expect(after.doc.byName.get('app_150')).toBe(before.doc.byName.get('app_150'));
    expect(after.stored.byName.get('app_150')).toBe(before.stored.byName.get('app_150'));
    expect(after.stored.byName.get('gitea')?.byKey.get('user_pwd')?.value).toMatch(/^enc:v1:/);
    expect(after.doc.byName.get('gitea')?.byKey.get('user_pwd')?.value).toBe('Changed-Gitea-Pw-47');
    store.close();
  });

  it.each([
    ['sealed secrets', true],
    ['no master key: secrets in plain text', false],
  ])('when writes follow one another (%s), then the snapshot each leaves is exactly what a fresh read of its file gives', async (_name, sealed) => {
    const keyring = sealed ? countingKeyring().keyring : undefined;
    const store = storeOn(largeConfig(), keyring);
    const writes = [
      // A plain key, a secret, a value that grows to two lines and back, a declared key the file lacks.
      [{ section: 'nginx_proxy_manager', key: 'nike_name', value: 'nick' }],
      [{ section: 'gitea', key: 'user_pwd', value: 'Another-Gitea-Pw-29' }],
      [{ section: 'app_7', key: 'setting_3', value: 'two\nlines' }],
      [
        { section: 'app_7', key: 'setting_3', value: 'one line' },
        { section: 'app_9', key: 'db_password', value: 'App-9-Password-Changed!' },
      ],
      [{ section: 'nginx_proxy_manager', key: 'ssl_key', value: '/data/key.pem' }],
    ];
    for (const changes of writes) {
      const { snapshot } = await store.update({ changes, actor });
      expect(snapshotShape(snapshot)).toEqual(freshRead(snapshot, keyring));
    }
    store.close();
  });
});
