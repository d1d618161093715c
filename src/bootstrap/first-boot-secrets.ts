/**
 * Shipped files carry no secrets: on start, an empty API key (or the publicly known Websoft9
 * default one) and every empty service password are replaced by strong random values, through
 * the settings store so the change is validated, written atomically and audited.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { AppError, isAppError } from '../core/errors.js';
import type { ChangeInput } from '../settings/plan-changes.js';
import type { FileSchema } from '../settings/schema.js';
import type { SettingsStore } from '../settings/store.js';
import { weakPasswordReason } from '../settings/credential-strength.js';
import { isUsableApiKey } from '../settings/field-kinds.js';

export { WEBSOFT9_DEFAULT_API_KEY } from '../settings/field-kinds.js';
const PASSWORD_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
const PASSWORD_LENGTH = 20;

export function generateApiKey(): string {
  return randomBytes(32).toString('hex');
}

export function generatePassword(): string {
  for (;;) {
    let password = '';
    for (let i = 0; i < PASSWORD_LENGTH; i++) password += PASSWORD_ALPHABET[randomInt(PASSWORD_ALPHABET.length)];
    if (!weakPasswordReason({ password })) return password;
  }
}

export interface FillSecretsInput {
  store: SettingsStore;
  schema: FileSchema;
  /** CONFHUB_API_KEY: used instead of a random key. */
  initialApiKey?: string;
}

export interface FillSecretsResult {
  apiKeyGenerated: boolean;
  apiKeyFromEnvironment: boolean;
  /** `section.key` of every password filled in. */
  passwordsGenerated: string[];
}

export async function fillMissingSecrets({ store, schema, initialApiKey }: FillSecretsInput): Promise<FillSecretsResult> {
  const { doc } = store.read();
  const changes: ChangeInput[] = [];
  const currentKey = doc.byName.get('api_key')?.byKey.get('key')?.value ?? '';
  const replaceKey = !isUsableApiKey(currentKey);
  if (replaceKey) changes.push({ section: 'api_key', key: 'key', value: initialApiKey ?? generateApiKey() });
  const passwordsGenerated: string[] = [];
  for (const [sectionName, spec] of schema) {
    const section = doc.byName.get(sectionName);
    if (!section) continue;
    for (const [key, field] of spec.fields) {
      if (!field.password) continue;
      const entry = section.byKey.get(key);
      if (entry && entry.value === '') {
        changes.push({ section: sectionName, key: entry.key, value: generatePassword() });
        passwordsGenerated.push(`${sectionName}.${key}`);
      }
    }
  }
  if (changes.length > 0) {
    try {
      await store.update({ changes, actor: { type: 'system', id: 'first-boot' }, source: 'first_boot' });
    } catch (cause) {
      const details = isAppError(cause) ? cause.details : String(cause);
      throw new AppError('STARTUP_CONFIG_INVALID', {
        message: 'config.ini is invalid',
        details: `the API key and passwords cannot be filled in: ${details}`,
        cause,
      });
    }
  }
  return {
    apiKeyGenerated: replaceKey && initialApiKey === undefined,
    apiKeyFromEnvironment: replaceKey && initialApiKey !== undefined,
    passwordsGenerated,
  };
}
