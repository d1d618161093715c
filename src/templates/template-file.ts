/**
 * Configuration templates: partial config.ini files with declared variables, which an
 * administrator previews and applies as one write. A template is an INI file in the dialect of
 * config.ini (ini/document.ts), so the people who edit config.ini by hand can read and write one:
 *
 *   [template]
 *   title = Public domain with HTTPS
 *   description = Serve the console and the apps on a public domain over HTTPS.
 *
 *   [variable:domain]
 *   type = hostname
 *   required = true
 *   description = The domain the apps are published under, e.g. example.com
 *
 *   [domain]
 *   wildcard_domain = *.{{ domain }}
 *
 * Every section other than `[template]` and `[variable:NAME]` is a config.ini section whose keys
 * the template sets. `{{ NAME }}` in a value is the variable's value (the placeholder grammar of
 * render/placeholders.ts; `{{{{` is a literal `{{`); `${section:key}` references are left as
 * they are, for the resolve step. Anything a template could get wrong without anyone noticing is
 * refused when it is read: an unknown key, a placeholder naming no variable, a variable no value
 * uses, a section that sets nothing.
 *
 * Pure: the text comes in, a frozen Template or a TEMPLATE_INVALID error comes out; reading the
 * files is template-catalog.ts's.
 */
import { AppError, type FieldIssue } from '../core/errors.js';
import { keyNameProblem, printable, sectionNameProblem } from '../core/names.js';
import { type IniDocument, type IniEntry, type IniSection, parseIni } from '../ini/document.js';
import { parsePlaceholders } from '../render/placeholders.js';
import { FIELD_KINDS, type FieldKind } from '../settings/field-kinds.js';
import type { ChangeInput } from '../settings/plan-changes.js';
import { fieldId } from '../settings/validate.js';

const TEMPLATE_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;
const VARIABLE_NAME = /^[a-z][a-z0-9_]{0,63}$/;
const HEADER_SECTION = 'template';
const VARIABLE_PREFIX = 'variable:';
const HEADER_KEYS: readonly string[] = ['title', 'description'];
const VARIABLE_KEYS: readonly string[] = ['type', 'required', 'default', 'secret', 'description'];
/** A file of thousands of mistakes makes an error body of the first ones, not of all. */
const MAX_LISTED_PROBLEMS = 20;
/** Kinds whose values are credentials: the settings schema masks them, so a variable of one is always secret. */
const SECRET_KINDS: ReadonlySet<FieldKind> = new Set(['secret', 'api_key']);

/** Where a template comes from: shipped with confhub, or the administrator's own. */
export type TemplateOrigin = 'shipped' | 'custom';

export interface TemplateVariable {
  readonly name: string;
  readonly kind: FieldKind;
  /** A value must be given: a required variable has no default. */
  readonly required: boolean;
  /** Its value is never quoted in a message; a listing must mask its default. */
  readonly secret: boolean;
  /** The file's text (a kind's check passed it when not empty); absent when the file has no `default`. */
  readonly default?: string;
  readonly description: string;
}

export interface TemplateEntry {
  readonly key: string;
  /** The value as the file writes it: `{{ NAME }}` placeholders not yet filled. */
  readonly value: string;
  /** 1-based line of the key in the template file. */
  readonly line: number;
}

export interface TemplateSection {
  readonly name: string;
  readonly entries: readonly TemplateEntry[];
}

export interface Template {
  readonly name: string;
  readonly origin: TemplateOrigin;
  readonly title: string;
  readonly description: string;
  /** In the order the file declares them. */
  readonly variables: readonly TemplateVariable[];
  /** The config.ini sections and keys it sets, in the file's order. */
  readonly sections: readonly TemplateSection[];
}

/** Why `name` cannot name a template (a file `<name>.ini`), or undefined. */
export function templateNameProblem(name: string): string | undefined {
  return TEMPLATE_NAME.test(name)
    ? undefined
    : `template name "${printable(name)}" must be 1-64 lowercase letters, digits or "-", starting with a letter or digit`;
}

/** One problem of a template file; `line` is 1-based. */
interface Problem {
  readonly line?: number;
  readonly message: string;
}

function templateInvalid({ name, problems, cause }: { name: string; problems: readonly Problem[]; cause?: unknown }): AppError<'TEMPLATE_INVALID'> {
  const file = `${printable(name)}.ini`;
  const listed = problems.slice(0, MAX_LISTED_PROBLEMS).map((p) => (p.line === undefined ? `${file}: ${p.message}` : `${file} line ${p.line}: ${p.message}`));
  if (problems.length > MAX_LISTED_PROBLEMS) listed.push(`${file}: ${problems.length - MAX_LISTED_PROBLEMS} more problems`);
  const details = listed.join('; ');
  const line = problems.find((p) => p.line !== undefined)?.line;
  return new AppError('TEMPLATE_INVALID', {
    details,
    data: { template: printable(name), ...(line === undefined ? {} : { line }) },
    cause,
  });
}

function isFieldKind(type: string): type is FieldKind {
  return Object.hasOwn(FIELD_KINDS, type);
}

function lineOf(entry: IniEntry): number {
  return entry.firstLine + 1;
}

/** `true`/`false` as a template writes them, or a problem. */
function readFlag(entry: IniEntry, problems: Problem[]): boolean | undefined {
  if (entry.value === 'true') return true;
  if (entry.value === 'false') return false;
  problems.push({ line: lineOf(entry), message: `${entry.key} must be true or false` });
  return undefined;
}

function unknownKeys(section: IniSection, known: readonly string[], problems: Problem[]): void {
  for (const entry of section.entries) {
    if (!known.includes(entry.keyLower)) {
      problems.push({ line: lineOf(entry), message: `[${printable(section.name)}] has no key "${printable(entry.key)}" (known: ${known.join(', ')})` });
    }
  }
}

/** A value that must be there, on one line and not empty (a description may span lines). */
function requiredText({ section, key, multiline }: { section: IniSection; key: string; multiline: boolean }, problems: Problem[]): string {
  const entry = section.byKey.get(key);
  if (!entry || entry.value === '') {
    problems.push({ line: entry ? lineOf(entry) : section.headerLine + 1, message: `[${printable(section.name)}] needs a ${key}` });
    return '';
  }
  if (!multiline && entry.value.includes('\n')) problems.push({ line: lineOf(entry), message: `${key} must be a single line` });
  return entry.value;
}

function readHeader(section: IniSection | undefined, problems: Problem[]): { title: string; description: string } {
  if (!section) {
    problems.push({ message: `there is no [${HEADER_SECTION}] section with the title and description` });
    return { title: '', description: '' };
  }
  unknownKeys(section, HEADER_KEYS, problems);
  return {
    title: requiredText({ section, key: 'title', multiline: false }, problems),
    description: requiredText({ section, key: 'description', multiline: true }, problems),
  };
}

function readVariable(section: IniSection, problems: Problem[]): TemplateVariable | undefined {
  const name = section.name.slice(VARIABLE_PREFIX.length);
  const header = section.headerLine + 1;
  if (!VARIABLE_NAME.test(name)) {
    problems.push({ line: header, message: `variable name "${printable(name)}" must be 1-64 lowercase letters, digits or "_", starting with a letter` });
    return undefined;
  }
  const before = problems.length;
  unknownKeys(section, VARIABLE_KEYS, problems);
  const single = (key: string): IniEntry | undefined => {
    const entry = section.byKey.get(key);
    if (entry?.value.includes('\n')) {
      problems.push({ line: lineOf(entry), message: `${key} must be a single line` });
      return undefined;
    }
    return entry;
  };

  const typeEntry = single('type');
  let kind: FieldKind = 'text';
  if (typeEntry) {
    if (isFieldKind(typeEntry.value)) kind = typeEntry.value;
    else problems.push({ line: lineOf(typeEntry), message: `type "${printable(typeEntry.value)}" is not one of ${Object.keys(FIELD_KINDS).join(', ')}` });
  }
  const requiredEntry = single('required');
  const required = requiredEntry ? (readFlag(requiredEntry, problems) ?? false) : false;
  const secretEntry = single('secret');
  const secretKind = SECRET_KINDS.has(kind);
  let secret = secretKind;
  if (secretEntry) {
    const flag = readFlag(secretEntry, problems);
    if (flag === false && secretKind) problems.push({ line: lineOf(secretEntry), message: `a variable of type ${kind} is always secret` });
    else if (flag !== undefined) secret = flag;
  }
  const description = requiredText({ section, key: 'description', multiline: true }, problems);

  const defaultEntry = single('default');
  if (defaultEntry && required) {
    problems.push({ line: lineOf(defaultEntry), message: `variable ${name} is required and has a default: a required variable has none` });
  } else if (defaultEntry && defaultEntry.value !== '') {
    const problem = FIELD_KINDS[kind].check(defaultEntry.value);
    // A kind's problem may quote the value (a list quotes the bad item): a secret's never is.
    if (problem) problems.push({ line: lineOf(defaultEntry), message: `the default of ${name} ${secret ? `is not a valid ${kind}` : problem}` });
  }
  if (problems.length > before) return undefined;
  return Object.freeze({
    name,
    kind,
    required,
    secret,
    ...(defaultEntry ? { default: defaultEntry.value } : {}),
    description,
  });
}

function settingsSectionProblem(name: string): string | undefined {
  // The env API owns these (its names, sealing and mapped variables); `@` sections are environment overlays.
  if (name.toLowerCase().startsWith('env:')) return `[${printable(name)}]: environment variables are set through the env API, not by a template`;
  if (name.includes('@')) return `[${printable(name)}]: a template sets the base settings, not an environment overlay`;
  return sectionNameProblem(name);
}

/** The section's entries, each placeholder checked against the declared variables, whose uses are counted. */
function readSettingsSection(
  { section, declared, used }: { section: IniSection; declared: ReadonlySet<string>; used: Set<string> },
  problems: Problem[],
): TemplateSection {
  const header = section.headerLine + 1;
  const sectionProblem = settingsSectionProblem(section.name);
  if (sectionProblem) problems.push({ line: header, message: sectionProblem });
  if (section.entries.length === 0) problems.push({ line: header, message: `[${printable(section.name)}] sets no key` });
  const entries: TemplateEntry[] = [];
  for (const entry of section.entries) {
    const line = lineOf(entry);
    const keyProblem = keyNameProblem(entry.key);
    if (keyProblem) problems.push({ line, message: keyProblem });
    const parsed = parsePlaceholders(entry.value);
    // A value's n-th line is the file's line n-1 after the key's: blank lines inside a value are kept.
    for (const valueLine of parsed.malformedLines) {
      problems.push({ line: line + valueLine - 1, message: `"{{" without a closing "}}" around a variable name (write "{{{{" for a literal "{{")` });
    }
    for (const part of parsed.parts) {
      if (!('name' in part)) continue;
      if (declared.has(part.name)) used.add(part.name);
      else problems.push({ line, message: `{{ ${part.name} }} names no declared variable ([variable:${part.name}])` });
    }
    entries.push(Object.freeze({ key: entry.key, value: entry.value, line }));
  }
  return Object.freeze({ name: section.name, entries: Object.freeze(entries) });
}

export interface ParseTemplateInput {
  /** The file name without `.ini`. */
  readonly name: string;
  readonly text: string;
  readonly origin: TemplateOrigin;
}

/** Reads one template file; throws TEMPLATE_INVALID naming the file and the line of every problem. */
export function parseTemplate({ name, text, origin }: ParseTemplateInput): Template {
  const nameProblem = templateNameProblem(name);
  if (nameProblem) throw templateInvalid({ name, problems: [{ message: nameProblem }] });
  let doc: IniDocument;
  try {
    doc = parseIni(text);
  } catch (error) {
    if (error instanceof AppError && error.code === 'INI_SYNTAX') {
      throw templateInvalid({ name, problems: [{ line: error.data.line, message: error.details.replace(/^line \d+: /, '') }], cause: error });
    }
    throw error;
  }

  const problems: Problem[] = [];
  const header = readHeader(doc.byName.get(HEADER_SECTION), problems);
  const variableSections = doc.sections.filter((s) => s.name.startsWith(VARIABLE_PREFIX));
  const variables = variableSections.map((section) => readVariable(section, problems)).filter((v): v is TemplateVariable => v !== undefined);
  // Placeholders are checked against every declared name, valid or not, so one mistake is reported once.
  const declared = new Set(variableSections.map((s) => s.name.slice(VARIABLE_PREFIX.length)));
  const used = new Set<string>();
  const sections = doc.sections
    .filter((s) => s.name !== HEADER_SECTION && !s.name.startsWith(VARIABLE_PREFIX))
    .map((section) => readSettingsSection({ section, declared, used }, problems));
  if (sections.length === 0) problems.push({ message: 'the template sets no config.ini section' });
  for (const section of variableSections) {
    const variable = section.name.slice(VARIABLE_PREFIX.length);
    if (!used.has(variable) && VARIABLE_NAME.test(variable)) {
      problems.push({ line: section.headerLine + 1, message: `variable ${variable} is used by no value: write {{ ${variable} }} where it goes, or remove it` });
    }
  }
  if (problems.length > 0) {
    problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw templateInvalid({ name, problems });
  }
  return Object.freeze({
    name,
    origin,
    title: header.title,
    description: header.description,
    variables: Object.freeze(variables),
    sections: Object.freeze(sections),
  });
}

export interface InstantiateInput {
  readonly template: Template;
  /** Variable values from a JSON body: what each variable's kind takes (a port as a number or its digits, a list as an array or a comma-separated string…). */
  readonly variables: Readonly<Record<string, unknown>>;
  /**
   * config.ini reads `$` as the start of a reference (`[confhub] interpolation = extended`): a
   * variable's value is literal, so its `$` is written `$$`. References the template's own text
   * holds stay references.
   */
  readonly escapeDollars?: boolean;
}

export interface InstantiateResult {
  /** Every key the template sets with its value, as far as the variables allow (a preview shows it). */
  readonly changes: ChangeInput[];
  /** Required variables that were not given. */
  readonly unresolved: string[];
  /** Variables given that are not the template's or whose values are not valid; `field` is `variable.NAME`. */
  readonly issues: FieldIssue[];
  /** `section.key` (key lowercased) of the changes whose value holds a secret variable's value: a preview masks them. */
  readonly secretFields: string[];
}

/** A variable's text, or why there is none. */
type VariableValue = { text: string } | { issue: FieldIssue; text: string };

function variableValue(variable: TemplateVariable, input: unknown): VariableValue {
  const field = `variable.${variable.name}`;
  const kind = FIELD_KINDS[variable.kind];
  const converted = kind.fromJson(input);
  if (!converted.ok) return { issue: { field, code: converted.code ?? 'INVALID_TYPE', message: `${field} ${converted.problem}` }, text: '' };
  const text = converted.text;
  if (text === '') {
    return variable.required ? { issue: { field, code: 'REQUIRED', message: `${field} must not be empty` }, text } : { text };
  }
  if (text.includes('\n') || text.includes('\r')) return { issue: { field, code: 'MULTILINE_NOT_ALLOWED', message: `${field} must be a single line` }, text };
  const problem = kind.check(text);
  if (problem) {
    const message = variable.secret ? `${field} is not a valid ${variable.kind} (the value is secret and not shown)` : `${field} ${problem}`;
    return { issue: { field, code: kind.issueCode, message }, text };
  }
  return { text };
}

/**
 * The changes a template makes with these variable values. Pure and total: whatever is wrong is
 * in `unresolved` and `issues` (callers apply only when both are empty), and `changes` is still
 * computed as far as possible, a missing or unconvertible variable filling its placeholders with
 * nothing. Messages name variables, never a secret's value.
 */
export function instantiateTemplate({ template, variables, escapeDollars = false }: InstantiateInput): InstantiateResult {
  const issues: FieldIssue[] = [];
  const unresolved: string[] = [];
  const byName = new Map(template.variables.map((v) => [v.name, v]));
  for (const given of Object.keys(variables)) {
    if (byName.has(given)) continue;
    const field = `variable.${printable(given)}`;
    issues.push({ field, code: 'UNKNOWN_VARIABLE', message: `${field} is not a variable of template ${template.name}` });
  }

  const texts = new Map<string, string>();
  for (const variable of template.variables) {
    const input = Object.hasOwn(variables, variable.name) ? variables[variable.name] : undefined;
    if (input === undefined) {
      if (variable.required) unresolved.push(variable.name);
      texts.set(variable.name, variable.default ?? '');
      continue;
    }
    const value = variableValue(variable, input);
    if ('issue' in value) issues.push(value.issue);
    texts.set(variable.name, value.text);
  }

  const changes: ChangeInput[] = [];
  const secretFields: string[] = [];
  for (const section of template.sections) {
    for (const entry of section.entries) {
      let value = '';
      let holdsSecret = false;
      for (const part of parsePlaceholders(entry.value).parts) {
        if ('text' in part) {
          value += part.text;
          continue;
        }
        const text = texts.get(part.name) ?? '';
        value += escapeDollars ? text.replaceAll('$', '$$$$') : text;
        if (byName.get(part.name)?.secret) holdsSecret = true;
      }
      changes.push({ section: section.name, key: entry.key, value });
      if (holdsSecret) secretFields.push(fieldId(section.name, entry.key));
    }
  }
  return { changes, unresolved, issues, secretFields };
}
