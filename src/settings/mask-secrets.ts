/**
 * The secret values of a document, for masking free text that may quote a file holding secrets
 * (a check command's output, a diff of a rendered service file) with core/mask.ts.
 */
import type { IniDocument } from '../ini/document.js';
import { isSensitive, type FileSchema } from './schema.js';

/** Values shorter than this are not masked in free text: they would mask unrelated words. */
const MIN_MASKED_LENGTH = 4;

/** The values of sensitive keys in a document, longest first (so a value containing another is masked whole). */
export function secretsOf(doc: IniDocument, schema: FileSchema): string[] {
  const values = new Set<string>();
  for (const section of doc.sections) {
    for (const entry of section.entries) {
      if (entry.value.length >= MIN_MASKED_LENGTH && isSensitive(schema, section.name, entry.key)) values.add(entry.value);
    }
  }
  return [...values].sort((a, b) => b.length - a.length);
}
