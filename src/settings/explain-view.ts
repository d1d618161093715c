/**
 * `GET /settings?explain=true`: each resolved value with where it came from, as Spring Cloud
 * Config lists its property sources — the section of config.ini (an environment's overlay or the
 * base), the line, the value as written when references made it, and the keys it refers to; and
 * what the value is (its kind, whether it is a secret, the schema's description), so a form can
 * offer the right field without the whole OpenAPI document.
 */
import { isEnvSection } from './env-sections.js';
import type { ResolveResult } from './resolve.js';
import type { FieldKind } from './field-kinds.js';
import { type FileSchema, isSensitive } from './schema.js';
import { typedValue } from './typed-view.js';
import { fieldId } from './validate.js';

export interface ExplainedValue {
  readonly value: unknown;
  /** `config.ini [gitea@staging]`. */
  readonly source: string;
  readonly line: number;
  readonly raw?: string;
  readonly references?: readonly string[];
  /** The schema's kind (`text` for a key it does not declare): what a form edits it as. */
  readonly kind: FieldKind;
  /** A password, token or key: masked in history, audit and logs, and by a form until revealed. */
  readonly secret: boolean;
  readonly description?: string;
}

/** `{section: {key: ExplainedValue}}` of every settings section, or of one (undefined when it does not exist). */
export function explainJson({ resolved, schema, section }: { resolved: ResolveResult; schema: FileSchema; section?: string }): string | undefined {
  const out: Record<string, Record<string, ExplainedValue>> = Object.create(null);
  for (const current of resolved.doc.sections) {
    if (isEnvSection(current.name) || (section !== undefined && current.name !== section)) continue;
    const values: Record<string, ExplainedValue> = Object.create(null);
    const spec = schema.get(current.name);
    for (const entry of current.entries) {
      const origin = resolved.origins.get(fieldId(current.name, entry.keyLower));
      const field = spec?.fields.get(entry.keyLower);
      values[entry.key] = {
        value: typedValue(spec, entry.key, entry.value),
        source: `config.ini [${origin?.section ?? current.name}]`,
        line: origin?.line ?? entry.firstLine + 1,
        ...(origin?.raw !== undefined ? { raw: origin.raw } : {}),
        ...(origin && origin.references.length > 0 ? { references: origin.references } : {}),
        kind: field?.kind ?? 'text',
        secret: isSensitive(schema, current.name, entry.key),
        ...(field ? { description: field.description } : {}),
      };
    }
    out[current.name] = values;
  }
  if (section !== undefined) return out[section] ? JSON.stringify(out[section]) : undefined;
  return JSON.stringify(out);
}
