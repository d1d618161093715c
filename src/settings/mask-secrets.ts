/**
 * The secret values of a document, for masking free text that may quote a file holding secrets
 * (a check command's output, a diff of a rendered service file) with core/mask.ts.
 */
import type { IniDocument } from '../ini/document.js';
import { decodeEnvValue, isEnvSection } from './env-sections.js';
import { isSensitive, type FileSchema } from './schema.js';

function decodedOrStored(stored: string): string {
  try {
    return decodeEnvValue(stored);
  } catch {
    return stored;
  }
}

/** Values shorter than this are not masked in free text: they would mask unrelated words. */
const MIN_MASKED_LENGTH = 4;

/** The values of sensitive keys in a document, longest first (so a value containing another is masked whole). */
export function secretsOf(doc: IniDocument, schema: FileSchema): string[] {
  const values = new Set<string>();
  for (const section of doc.sections) {
    for (const entry of section.entries) {
      if (!isSensitive(schema, section.name, entry.key)) continue;
      // An env value stored as json: reaches files and output as the text it stands for.
      const value = isEnvSection(section.name) ? decodedOrStored(entry.value) : entry.value;
      if (value.length >= MIN_MASKED_LENGTH) values.add(value);
    }
  }
  return [...values].sort((a, b) => b.length - a.length);
}
