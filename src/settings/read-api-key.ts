/** The API key as clients send it (opened from config.ini), for `confhub apikey show` and tests. */
import { loadKeyring } from '../secrets/master-key.js';
import type { RuntimeConfig } from '../runtime-config.js';
import { CONFIG_SCHEMA } from './schema.js';
import { createReadOnlyIniStore } from './store.js';

export async function readApiKey(config: Pick<RuntimeConfig, 'masterKey' | 'configPath'>): Promise<string | undefined> {
  const { keyring } = await loadKeyring({ ...config.masterKey, createFile: false });
  const store = createReadOnlyIniStore({ path: config.configPath, label: 'config.ini', schema: CONFIG_SCHEMA, keyring });
  return store.read().resolved.doc.byName.get('api_key')?.byKey.get('key')?.value || undefined;
}
