/**
 * Pure planning of one update against a parsed document: names allow-listed, sections and keys
 * resolved, JSON inputs turned into file text, the text checked for a lossless round trip, the
 * result re-parsed and validated as a whole. Returns the new document or throws an AppError that
 * names every failing field.
 */
import { AppError, type FieldIssue } from '../core/errors.js';
import { editIni, type IniChange, type IniDocument, unrepresentableReason } from '../ini/document.js';
import { isSealed, SEALED_PREFIX } from '../secrets/secret-box.js';
import { envNameProblem, isEnvSection, MAX_ENV_VALUE_LENGTH } from './env-sections.js';
import { FIELD_KINDS } from './field-kinds.js';
import { keyNameProblem, printable, sectionNameProblem } from '../core/names.js';
import type { FileSchema } from './schema.js';
import { fieldId } from './validate.js';
import { baseSectionOf, environmentNameProblem, parseOverlay } from './overlays.js';
import { checkDocument } from './check-document.js';
import { NO_RESOLVE, type ResolveResult, type ResolveSettings } from './resolve.js';

export const MAX_VALUE_LENGTH = 4096;
/** An environment variable's value as stored (`json:` escapes may make it up to six times its length). */
const MAX_STORED_ENV_VALUE_LENGTH = 6 * MAX_ENV_VALUE_LENGTH + 8;

/** Keys of env sections are variable names (up to 256 characters); other keys follow the API's allow-list. */
function nameProblem(input: ChangeInput): string | undefined {
  if (!isEnvSection(input.section)) return keyNameProblem(input.key);
  const problem = envNameProblem(input.key);
  return problem ? `Variable "${printable(input.key)}": ${problem}` : undefined;
}

/** A section name from a request: an overlay `section@env` is its section's name and an environment's. */
function sectionProblem(name: string): string | undefined {
  const overlay = parseOverlay(name);
  if (!overlay) return sectionNameProblem(name);
  if (isEnvSection(overlay.base)) return `Section:${printable(name)}: environment variables take no overlays`;
  return sectionNameProblem(overlay.base) ?? environmentProblem(overlay.environment);
}

function environmentProblem(environment: string): string | undefined {
  const problem = environmentNameProblem(environment);
  return problem ? `Environment "${printable(environment)}": ${problem}` : undefined;
}

export interface ChangeInput {
  readonly section: string;
  readonly key: string;
  /** JSON value from the request: a string; a port also a number, a boolean key a boolean, a list an array of strings. */
  readonly value: unknown;
  /** The key is removed (value ignored); it must exist. */
  readonly remove?: boolean;
}

export interface PlannedChange {
  readonly section: string;
  /** The key as the file spells it (existing) or as requested (new). */
  readonly key: string;
  readonly oldValue: string | undefined;
  readonly newValue: string;
  /** The key was removed, by a whole-file restore or a removal (newValue is then ''). */
  readonly removed?: boolean;
}

export interface PlanResult {
  /** The document (values opened) with the changes applied. */
  readonly doc: IniDocument;
  readonly changes: readonly PlannedChange[];
  /** `doc` resolved as the check found it (the snapshot after the write reuses it). */
  readonly resolved: ResolveResult;
}

function listDetails(prefix: string, items: string[]): string {
  return items.map((item) => `${prefix}${item}`).join('; ');
}

export interface PlanOptions {
  /** `section.key` of values not to validate (sealed values that do not open). */
  readonly skip?: ReadonlySet<string>;
  /** Sections and keys neither in the file nor declared may be added (an upgrade's template brings them). */
  readonly allowNew?: boolean;
  /** How the file is resolved before it is validated; default: as written. */
  readonly resolve?: ResolveSettings;
}

export interface PlanChangesInput extends PlanOptions {
  /** The document as it is now (values opened). */
  readonly doc: IniDocument;
  readonly inputs: readonly ChangeInput[];
  readonly schema: FileSchema;
}

export function planChanges({ doc, inputs, schema, ...options }: PlanChangesInput): PlanResult {
  if (inputs.length === 0) throw new AppError('INVALID_REQUEST', { details: 'No settings to change were given' });

  const badNames = inputs.flatMap((input) => [sectionProblem(input.section), nameProblem(input)].filter((p): p is string => p !== undefined));
  if (badNames.length > 0) throw new AppError('INVALID_NAME', { details: [...new Set(badNames)].join('; ') });

  // An environment's overlay may be new: its section (or the schema's) names what it may hold.
  const missingSections = [...new Set(inputs.map((i) => i.section))].filter((name) => {
    const base = baseSectionOf(name);
    return !doc.byName.has(name) && !doc.byName.has(base) && !schema.has(base);
  });
  if (missingSections.length > 0 && !options.allowNew) {
    throw new AppError('SECTION_NOT_FOUND', {
      details: listDetails(
        'Section:',
        missingSections.map((s) => `${s} does not exist`),
      ),
    });
  }

  const seen = new Set<string>();
  const missingKeys: string[] = [];
  for (const input of inputs) {
    const id = fieldId(input.section, input.key);
    if (seen.has(id)) {
      throw new AppError('INVALID_REQUEST', { details: `Key:${input.key} is given more than once for section ${input.section}` });
    }
    seen.add(id);
    const keyLower = input.key.toLowerCase();
    const inFile = doc.byName.get(input.section)?.byKey.has(keyLower);
    const base = baseSectionOf(input.section);
    const known = schema.get(base)?.fields.has(keyLower) || (base !== input.section && doc.byName.get(base)?.byKey.has(keyLower));
    if (!inFile && (!known || input.remove)) missingKeys.push(input.key);
  }
  if (missingKeys.length > 0 && !options.allowNew) {
    throw new AppError('KEY_NOT_FOUND', {
      details: listDetails(
        'Key:',
        missingKeys.map((k) => `${k} does not exist`),
      ),
    });
  }

  const issues: FieldIssue[] = [];
  const iniChanges: IniChange[] = [];
  const planned: PlannedChange[] = [];
  for (const input of inputs) {
    const id = fieldId(input.section, input.key);
    if (input.remove) {
      const existing = doc.byName.get(input.section)!.byKey.get(input.key.toLowerCase())!;
      iniChanges.push({ section: input.section, key: existing.key, value: '', remove: true });
      planned.push({ section: input.section, key: existing.key, oldValue: existing.value, newValue: '', removed: true });
      continue;
    }
    const spec = schema.get(baseSectionOf(input.section))?.fields.get(input.key.toLowerCase());
    // A reference is text whatever the key's kind: its resolved value is checked by the kind.
    const reference = options.resolve?.interpolation === 'extended' && typeof input.value === 'string' && input.value.includes('$');
    const converted = reference ? { ok: true as const, text: input.value as string } : FIELD_KINDS[spec?.kind ?? 'text'].fromJson(input.value);
    if (!converted.ok) {
      issues.push({ field: id, code: converted.code ?? 'INVALID_TYPE', message: `${id} ${converted.problem}` });
      continue;
    }
    const maxLength = isEnvSection(input.section) ? MAX_STORED_ENV_VALUE_LENGTH : MAX_VALUE_LENGTH;
    if (converted.text.length > maxLength) {
      issues.push({ field: id, code: 'VALUE_TOO_LONG', message: `${id} must be at most ${maxLength} characters` });
      continue;
    }
    if (isSealed(converted.text)) {
      issues.push({ field: id, code: 'VALUE_NOT_REPRESENTABLE', message: `${id}: values starting with ${SEALED_PREFIX} are reserved for encrypted values` });
      continue;
    }
    const reason = unrepresentableReason(converted.text);
    if (reason) {
      issues.push({ field: id, code: 'VALUE_NOT_REPRESENTABLE', message: `${id}: ${reason}` });
      continue;
    }
    const existing = doc.byName.get(input.section)?.byKey.get(input.key.toLowerCase());
    const key = existing?.key ?? input.key;
    iniChanges.push({ section: input.section, key, value: converted.text });
    planned.push({ section: input.section, key, oldValue: existing?.value, newValue: converted.text });
  }
  if (issues.length > 0) throw validationFailed(issues);

  // Parsed as the file would be (editIni reads a rewritten entry back on its own, see there).
  const next = editIni(doc, iniChanges);
  // Defence in depth: what was written must read back as exactly what was asked, nothing more.
  for (const change of iniChanges) {
    if (change.remove) {
      if (next.byName.get(change.section)?.byKey.has(change.key.toLowerCase())) {
        issues.push({
          field: fieldId(change.section, change.key),
          code: 'VALUE_NOT_REPRESENTABLE',
          message: `${fieldId(change.section, change.key)} would not be removed`,
        });
      }
      continue;
    }
    const readBack = next.byName.get(change.section)?.byKey.get(change.key.toLowerCase())?.value;
    if (readBack !== change.value) {
      issues.push({
        field: fieldId(change.section, change.key),
        code: 'VALUE_NOT_REPRESENTABLE',
        message: `${fieldId(change.section, change.key)} would not read back unchanged`,
      });
    }
  }
  const expectedKeys =
    doc.sections.reduce((n, s) => n + s.entries.length, 0) + planned.filter((p) => p.oldValue === undefined).length - planned.filter((p) => p.removed).length;
  const actualKeys = next.sections.reduce((n, s) => n + s.entries.length, 0);
  if (actualKeys !== expectedKeys) {
    issues.push({
      field: fieldId(inputs[0]!.section, inputs[0]!.key),
      code: 'VALUE_NOT_REPRESENTABLE',
      message: 'the change would alter other keys of the file',
    });
  }
  if (issues.length > 0) throw validationFailed(issues);

  const changedIds = new Set(planned.map((p) => fieldId(p.section, p.key)));
  const skip = new Set([...(options.skip ?? [])].filter((id) => !changedIds.has(id)));
  const checked = checkDocument({ doc: next, schema, changed: changedIds, skip, resolve: options.resolve ?? NO_RESOLVE });
  if (checked.issues.length > 0) throw validationFailed(checked.issues);
  return { doc: next, changes: planned, resolved: checked.resolved };
}

export function validationFailed(issues: readonly FieldIssue[]): AppError {
  const details = issues.map((issue) => printable(issue.message, 300)).join('; ');
  return new AppError('VALIDATION_FAILED', { details, data: { errors: issues } });
}
