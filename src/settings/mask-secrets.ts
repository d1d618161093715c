/**
 * The secret values of a document, for masking free text that may quote a file holding secrets
 * (a check command's output, a diff of a rendered service file) with core/mask.ts.
 */
import type { IniDocument } from '../ini/document.js';
import { quoteDotenvValue } from '../render/dotenv.js';
import { supervisorValueLines } from '../render/supervisor-env.js';
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

/**
 * A secret as the formats write it, so free text quoting a rendered file is masked whichever
 * file it is: as it is, escaped for a compose .env file, for JSON and YAML strings and for the
 * ini package, as a supervisord include spells it, and each line of a multi-line value
 * (supervisord writes them on lines of their own).
 */
export function spellings(secret: string): string[] {
  const long = (line: string) => line.trim().length >= MIN_MASKED_LENGTH;
  const lines = secret.includes('\n') ? secret.split('\n').filter(long) : [];
  const supervisor = supervisorValueLines(secret);
  return [
    secret,
    quoteDotenvValue(secret).slice(1, -1),
    JSON.stringify(secret).slice(1, -1),
    // The ini package escapes ; and # with a backslash.
    secret.replace(/[;#]/g, '\\$&'),
    supervisor.join('\n'),
    ...supervisor.filter(long),
    ...lines,
  ];
}

/**
 * What to mask in text that may quote files rendered from these documents: the secrets of each
 * (and `more` values, in keys the schema does not call secret) in every spelling, longest first.
 */
export function maskedSpellingsOf(input: { docs: readonly IniDocument[]; schema: FileSchema; more?: readonly string[] }): string[] {
  const given = (input.more ?? []).filter((secret) => secret.length >= MIN_MASKED_LENGTH);
  const secrets = [...input.docs.flatMap((doc) => secretsOf(doc, input.schema)), ...given];
  return [...new Set(secrets.flatMap(spellings))].sort((a, b) => b.length - a.length);
}
