/** The API key as clients send it (opened from config.ini, resolved as a start resolves it), for `confhub apikey show` and tests. */
import { existsSync } from 'node:fs';
import { loadKeyring } from '../secrets/master-key.js';
import type { RuntimeConfig } from '../runtime-config.js';
import { resolveSettingsOf } from './resolve-settings.js';
import { CONFIG_SCHEMA, SYSTEM_SCHEMA } from './schema.js';
import { createReadOnlyIniStore } from './store.js';
import type { ResolveResult } from './resolve.js';

type KeyConfig = Pick<RuntimeConfig, 'masterKey' | 'configPath'> & Partial<Pick<RuntimeConfig, 'systemPath' | 'environment'>>;

/** config.ini resolved with system.ini's [confhub] and CONFHUB_ENVIRONMENT (without system.ini: as written). */
async function resolvedConfig(config: KeyConfig): Promise<ResolveResult> {
  const { keyring } = await loadKeyring({ ...config.masterKey, createFile: false });
  const system =
    config.systemPath && existsSync(config.systemPath)
      ? createReadOnlyIniStore({ path: config.systemPath, label: 'system.ini', schema: SYSTEM_SCHEMA }).read().doc
      : undefined;
  const resolve = system ? resolveSettingsOf({ system, environment: config.environment }) : undefined;
  return createReadOnlyIniStore({ path: config.configPath, label: 'config.ini', schema: CONFIG_SCHEMA, keyring, ...(resolve ? { resolve } : {}) }).read()
    .resolved;
}

export async function readApiKey(config: KeyConfig): Promise<string | undefined> {
  return (await resolvedConfig(config)).doc.byName.get('api_key')?.byKey.get('key')?.value || undefined;
}

/** Where the key clients send is written: `api_key` unless an environment's overlay or a reference gives it. */
export async function apiKeySource(config: KeyConfig): Promise<{ section: string; raw: boolean }> {
  const origin = (await resolvedConfig(config)).origins.get('api_key.key');
  return { section: origin?.section ?? 'api_key', raw: origin?.raw !== undefined };
}
