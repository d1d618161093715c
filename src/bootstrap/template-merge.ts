/**
 * Upgrades never lose a user value. The shipped config.ini is a template: on every start, keys and
 * sections it holds that the user's config.ini lacks are added with the template's values, through
 * the settings store (validated, audited as `settings.update` by `system:upgrade`, committed as an
 * `upgrade` revision). A user value is never changed, and a key the new template no longer has is
 * kept and reported.
 *
 * Which template keys the installation has already seen is remembered (`shipped-template.json` in
 * the data directory), so a key the user deleted on purpose is not brought back by the next start;
 * only keys new in this image are. An installation without that record (the first start of this
 * version on an older data directory) gets every template key it lacks.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { AppError, isAppError } from '../core/errors.js';
import { writeFileAtomic } from '../fs/atomic-write.js';
import { parseIni } from '../ini/document.js';
import type { ChangeInput } from '../settings/plan-changes.js';
import type { FileSchema } from '../settings/schema.js';
import type { SettingsStore } from '../settings/store.js';
import { generateApiKey, generatePassword } from './first-boot-secrets.js';
import { fieldId } from '../settings/validate.js';

export interface MergeTemplateInput {
  readonly store: SettingsStore;
  /** The shipped config.ini of this image. */
  readonly templateText: string;
  /** Where the template keys already merged are remembered. */
  readonly recordPath: string;
  readonly schema: FileSchema;
  readonly logger: Logger;
}

export interface MergeTemplateResult {
  /** `section.key` added from the template. */
  readonly added: readonly string[];
  /** `section.key` an earlier template had and this one does not: kept in config.ini. */
  readonly obsolete: readonly string[];
  /** `section.key` of the added keys that got a random secret (the template's value was empty). */
  readonly generated: readonly string[];
}

interface TemplateRecord {
  readonly keys: readonly string[];
}

function readRecord(path: string): ReadonlySet<string> | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const record = JSON.parse(readFileSync(path, 'utf8')) as TemplateRecord;
    if (!Array.isArray(record.keys) || !record.keys.every((key) => typeof key === 'string')) return undefined;
    return new Set(record.keys);
  } catch {
    // An unreadable record is treated as none: at worst a key deleted on purpose comes back once.
    return undefined;
  }
}

export async function mergeShippedTemplate({ store, templateText, recordPath, schema, logger }: MergeTemplateInput): Promise<MergeTemplateResult> {
  const template = parseIni(templateText);
  const { doc } = store.read();
  const seen = readRecord(recordPath);
  const templateKeys: string[] = [];
  const changes: ChangeInput[] = [];
  const generated: string[] = [];
  for (const section of template.sections) {
    for (const entry of section.entries) {
      const id = fieldId(section.name, entry.key);
      templateKeys.push(id);
      if (doc.byName.get(section.name)?.byKey.has(entry.keyLower)) continue;
      if (seen?.has(id)) continue;
      // A new service's empty password gets a strong random one at once, as on a first start.
      const field = schema.get(section.name)?.fields.get(entry.keyLower);
      const value =
        entry.value === '' && field?.password ? generatePassword() : entry.value === '' && field?.kind === 'api_key' ? generateApiKey() : entry.value;
      if (value !== entry.value) generated.push(id);
      changes.push({ section: section.name, key: entry.key, value });
    }
  }
  const current = new Set(templateKeys);
  const obsolete = seen ? [...seen].filter((id) => !current.has(id)) : [];
  if (changes.length > 0) {
    try {
      await store.update({ changes, actor: { type: 'system', id: 'upgrade' }, source: 'upgrade', allowNew: true });
    } catch (cause) {
      const details = isAppError(cause) ? cause.details : String(cause);
      throw new AppError('STARTUP_CONFIG_INVALID', {
        message: 'config.ini cannot take the new template keys',
        details: `the keys new in this version cannot be added to config.ini: ${details}`,
        cause,
      });
    }
  }
  const added = changes.map((change) => fieldId(change.section, change.key));
  if (added.length > 0) logger.info({ keys: added }, 'added the keys new in this version to config.ini (user values kept)');
  if (obsolete.length > 0) logger.warn({ keys: obsolete }, 'config.ini keeps keys this version no longer ships; remove them by hand if unused');
  await writeFileAtomic(recordPath, `${JSON.stringify({ keys: templateKeys } satisfies TemplateRecord)}\n`, { mode: 0o600 });
  return { added, obsolete, generated };
}
