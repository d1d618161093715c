/**
 * `GET /settings?explain=true`: each resolved value with where it came from, as Spring Cloud
 * Config lists its property sources — the section of config.ini (an environment's overlay or the
 * base), the line, the value as written when references made it, and the keys it refers to.
 */
import { isEnvSection } from './env-sections.js';
import type { ResolveResult } from './resolve.js';
import type { FileSchema } from './schema.js';
import { typedValue } from './typed-view.js';
import { fieldId } from './validate.js';

export interface ExplainedValue {
  readonly value: unknown;
  /** `config.ini [gitea@staging]`. */
  readonly source: string;
  readonly line: number;
  readonly raw?: string;
  readonly references?: readonly string[];
}

/** `{section: {key: ExplainedValue}}` of every settings section, or of one (undefined when it does not exist). */
export function explainJson({ resolved, schema, section }: { resolved: ResolveResult; schema: FileSchema; section?: string }): string | undefined {
  const out: Record<string, Record<string, ExplainedValue>> = Object.create(null);
  for (const current of resolved.doc.sections) {
    if (isEnvSection(current.name) || (section !== undefined && current.name !== section)) continue;
    const values: Record<string, ExplainedValue> = Object.create(null);
    for (const entry of current.entries) {
      const origin = resolved.origins.get(fieldId(current.name, entry.keyLower));
      values[entry.key] = {
        value: typedValue(schema.get(current.name), entry.key, entry.value),
        source: `config.ini [${origin?.section ?? current.name}]`,
        line: origin?.line ?? entry.firstLine + 1,
        ...(origin?.raw !== undefined ? { raw: origin.raw } : {}),
        ...(origin && origin.references.length > 0 ? { references: origin.references } : {}),
      };
    }
    out[current.name] = values;
  }
  if (section !== undefined) return out[section] ? JSON.stringify(out[section]) : undefined;
  return JSON.stringify(out);
}
