/**
 * The settings store with a resolve step: the snapshot a write leaves holds the values a fresh
 * read would resolve (it reuses the write's check), and the store says a revision landed at the
 * rename, before its write is answered.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/audit/audit-log.js';
import { openDatabase } from '../../src/db/database.js';
import { createKeyring, masterKey } from '../../src/secrets/secret-box.js';
import { revisionOf } from '../../src/settings/revision.js';
import type { ResolveSettings } from '../../src/settings/resolve.js';
import { CONFIG_SCHEMA } from '../../src/settings/schema.js';
import { createSettingsStore, toSnapshot } from '../../src/settings/store.js';
import { tempDirs } from '../support/temp-dirs.js';

const tempDir = tempDirs('confhub-store-resolve-');
const actor = { type: 'system', id: 'test' } as const;
const RESOLVE: ResolveSettings = { interpolation: 'extended', environment: 'staging' };

describe('the settings store with references and environments', () => {
  it('when writes change referred keys, overlays and a multi-line secret, then each snapshot resolves as a fresh read does (the write reuses its check), and each revision is told landed before its write is answered', async () => {
    const path = join(tempDir(), 'config.ini');
    writeFileSync(
      path,
      '[site]\nhost = example.com\nprivate_key = none\n\n[gitea]\nbase_url = https://git.${site:host}/api/v1\n\n[cockpit]\nport = 9090\n\n[cockpit@staging]\nport = 9191\n',
    );
    const keyring = createKeyring(masterKey(Buffer.alloc(32, 7)));
    const landed: string[] = [];
    const store = createSettingsStore({
      path,
      label: 'config.ini',
      schema: CONFIG_SCHEMA,
      keyring,
      resolve: RESOLVE,
      audit: createAuditLog({ db: openDatabase({ path: ':memory:' }) }),
      logger: pino({ level: 'silent' }),
      landed: (revision) => landed.push(revision),
    });
    const writes = [
      [{ section: 'site', key: 'host', value: 'example.org' }],
      [{ section: 'cockpit@staging', key: 'port', value: '9292' }],
      [{ section: 'site', key: 'private_key', value: 'first line\nsecond line\nthird line' }],
      [{ section: 'site', key: 'host', value: 'example.net' }],
    ];
    for (const changes of writes) {
      const result = await store.update({ changes, actor });
      const text = readFileSync(path, 'utf8');
      expect(landed.at(-1)).toBe(revisionOf(text));
      const fresh = toSnapshot({ text, label: 'config.ini', schema: CONFIG_SCHEMA, keyring, resolve: RESOLVE }).resolved;
      const plain = (r: typeof fresh) => ({
        sections: r.doc.sections.map((s) => [s.name, s.entries.map((e) => [e.key, e.value, e.firstLine])]),
        origins: [...r.origins],
      });
      expect(plain(result.snapshot.resolved)).toEqual(plain(fresh));
    }
    expect(store.read().resolved.doc.byName.get('gitea')!.byKey.get('base_url')!.value).toBe('https://git.example.net/api/v1');
    expect(store.read().resolved.doc.byName.get('cockpit')!.byKey.get('port')!.value).toBe('9292');
    expect(landed).toHaveLength(writes.length);
    store.close();
  });
});
