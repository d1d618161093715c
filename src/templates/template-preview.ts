/**
 * A template applied on paper: its variables filled in, the result planned as the write that
 * applying it would be (validated as a whole, every environment), resolved, and compared with
 * config.ini and with the files the targets hold now. Nothing is written: a preview reads
 * config.ini and the targets' files, and the apply is the same plan handed to the store.
 */
import { createTwoFilesPatch } from 'diff';
import { AppError, isAppError, type FieldIssue } from '../core/errors.js';
import { MASK, maskText } from '../core/mask.js';
import { editIni, serializeIni, type IniChange, type IniDocument } from '../ini/document.js';
import { explainJson, type ExplainedValue } from '../settings/explain-view.js';
import { overlayName } from '../settings/overlays.js';
import { planChanges, type ChangeInput } from '../settings/plan-changes.js';
import { resolveDocument, type ResolveSettings } from '../settings/resolve.js';
import { isSensitive, type FileSchema } from '../settings/schema.js';
import { fieldId } from '../settings/validate.js';
import { planTargets } from '../sync/plan.js';
import type { EnvDeclarations } from '../targets/env-spec.js';
import type { PathRules } from '../targets/path-rules.js';
import type { ReloadAction, TargetSpec } from '../targets/target-spec.js';
import { instantiateTemplate, type Template } from './template-file.js';
import type { LoadTemplatesResult } from './template-catalog.js';
import { basename } from 'node:path';

export interface TemplatePreviewInput {
  readonly template: Template;
  readonly variables: Readonly<Record<string, unknown>>;
  /** Apply to this environment's overlays instead of the sections. */
  readonly environment?: string | undefined;
  /** config.ini as written, sealed values opened. */
  readonly doc: IniDocument;
  readonly schema: FileSchema;
  readonly resolve: ResolveSettings;
}

export interface PreviewedKey {
  /** `section.key` as config.ini holds it (an overlay's section when an environment is named). */
  readonly key: string;
  readonly before: string | null;
  readonly after: string;
  readonly change: 'added' | 'changed' | 'unchanged';
}

export interface TemplatePlan {
  /** The write applying it is: the changes for the store. */
  readonly changes: readonly ChangeInput[];
  readonly unresolved: readonly string[];
  /** Bad variables, then what validation of the whole file refuses. */
  readonly errors: readonly FieldIssue[];
  readonly keys: readonly PreviewedKey[];
  /** config.ini after the apply (sealed values opened), when it would be accepted. */
  readonly after?: IniDocument;
  /** `section.key` (as config.ini holds it) of the keys a secret variable's value goes to: shown masked. */
  readonly secretKeys: ReadonlySet<string>;
  /** The values those keys get, to mask wherever they appear (diffs of rendered files, messages). */
  readonly secretValues: readonly string[];
}

/** The template's changes, checked as the store would check the write (nothing is written). */
export function planTemplate({ template, variables, environment, doc, schema, resolve }: TemplatePreviewInput): TemplatePlan {
  const instance = instantiateTemplate({ template, variables, escapeDollars: resolve.interpolation === 'extended' });
  const secretOfTemplate = new Set(instance.secretFields);
  const secretKeys = new Set<string>();
  const secretValues: string[] = [];
  const changes = instance.changes.map((change) => {
    const section = environment === undefined ? change.section : overlayName(change.section, environment);
    // A secret variable is masked wherever it lands; config.ini seals it only in a secret key.
    if (secretOfTemplate.has(fieldId(change.section, change.key))) {
      secretKeys.add(fieldId(section, change.key));
      const value = String(change.value);
      // As written, and as resolved (a variable's `$` is written `$$`).
      if (value !== '') secretValues.push(value, value.replaceAll('$$', '$'));
    }
    return { ...change, section };
  });
  const keys = changes.map((change): PreviewedKey => {
    const before = doc.byName.get(change.section)?.byKey.get(change.key.toLowerCase())?.value;
    const after = String(change.value);
    const secret = isSensitive(schema, change.section, change.key) || secretKeys.has(fieldId(change.section, change.key));
    const shown = (value: string): string => (value !== '' && secret ? MASK : value);
    return {
      key: fieldId(change.section, change.key),
      before: before === undefined ? null : shown(before),
      after: shown(after),
      change: before === undefined ? 'added' : before === after ? 'unchanged' : 'changed',
    };
  });
  const secrets = { secretKeys, secretValues };
  const errors: FieldIssue[] = [...instance.issues];
  if (errors.length > 0 || instance.unresolved.length > 0) return { changes, unresolved: instance.unresolved, errors, keys, ...secrets };
  try {
    const planned = planChanges({ doc, inputs: changes, schema, resolve });
    return { changes, unresolved: [], errors, keys, after: planned.doc, ...secrets };
  } catch (error) {
    if (!isAppError(error)) throw error;
    const issues = (error.data.errors as FieldIssue[] | undefined) ?? [{ field: '', code: error.code, message: error.details }];
    // A kind's message may quote the value it refuses.
    errors.push(...issues.map((issue) => ({ ...issue, message: maskText(issue.message, secretValues) })));
    return { changes, unresolved: [], errors, keys, ...secrets };
  }
}

export interface TemplatePreviewContext {
  readonly targets: readonly TargetSpec[];
  readonly paths: PathRules;
  readonly env: EnvDeclarations;
}

export interface TargetPreview {
  readonly target: string;
  /** create, update or mode: what writing it would do. */
  readonly change: string;
  /** What reloading it restarts, signals or asks: `container NAME`, `program NAME`, an HTTP call; null: nothing. */
  readonly service: string | null;
  /** The file's unified diff, secrets masked. */
  readonly diff: string;
}

export interface TemplatePreview {
  readonly template: string;
  readonly environment: string | null;
  readonly valid: boolean;
  readonly unresolved: readonly string[];
  readonly errors: readonly FieldIssue[];
  readonly changes: readonly PreviewedKey[];
  /** Unified diff of config.ini, secrets masked. */
  readonly diff: string;
  /** The sections the template sets, resolved (in its environment), each value with its provenance; secrets masked. */
  readonly settings: Record<string, Record<string, ExplainedValue>>;
  /** Targets in the running environment whose files would change. */
  readonly targets: readonly TargetPreview[];
}

export async function previewTemplate(input: TemplatePreviewInput, context: TemplatePreviewContext): Promise<TemplatePreview> {
  const plan = planTemplate(input);
  const base = {
    template: input.template.name,
    environment: input.environment ?? null,
    unresolved: plan.unresolved,
    errors: plan.errors,
    changes: plan.keys,
  };
  if (!plan.after) return { ...base, valid: false, diff: '', settings: {}, targets: [] };
  const { schema } = input;
  const masked = (doc: IniDocument): string => maskedText({ doc, schema, secretKeys: plan.secretKeys });
  const diff = createTwoFilesPatch('config.ini', 'config.ini', masked(input.doc), masked(plan.after), 'now', `with ${input.template.name}`);
  const seen = resolveDocument({ doc: plan.after, schema, settings: { ...input.resolve, environment: input.environment ?? input.resolve.environment } });
  const settings: Record<string, Record<string, ExplainedValue>> = Object.create(null);
  for (const section of new Set(input.template.sections.map((s) => s.name))) {
    const json = explainJson({ resolved: seen, schema, section });
    if (json === undefined) continue;
    const values = JSON.parse(json) as Record<string, ExplainedValue>;
    for (const [key, value] of Object.entries(values)) {
      const secret = isSensitive(schema, section, key) || plan.secretKeys.has(fieldId(overlayOrSection(section, input.environment), key));
      if (secret) values[key] = { ...value, value: MASK, ...(value.raw !== undefined ? { raw: MASK } : {}) };
      // A key that refers to a secret variable's key holds its value too.
      else if (typeof value.value === 'string' && plan.secretValues.length > 0) values[key] = { ...value, value: maskText(value.value, plan.secretValues) };
    }
    settings[section] = values;
  }
  // The running environment's targets, rendered from the file after the apply, against their files now.
  const running = resolveDocument({ doc: plan.after, schema, settings: input.resolve }).doc;
  // The files on disk hold today's values: their secrets are masked too.
  const today = resolveDocument({ doc: input.doc, schema, settings: input.resolve }).doc;
  const plans = await planTargets({
    targets: context.targets,
    paths: context.paths,
    doc: running,
    schema,
    env: context.env,
    earlier: [today],
    secrets: plan.secretValues,
  });
  const targets = plans
    .filter((p) => p.change !== 'none')
    .map((p) => {
      const spec = context.targets.find((t) => t.name === p.target)!;
      return { target: p.target, change: p.change, service: serviceOf(spec.reload), diff: p.error ? `${p.error.code}: ${p.error.details}` : p.diff };
    });
  return { ...base, valid: plan.errors.length === 0, diff, settings, targets };
}

function overlayOrSection(section: string, environment: string | undefined): string {
  return environment === undefined ? section : overlayName(section, environment);
}

/** config.ini as text with every secret's value masked (settings, secret env variables, and the keys given). */
function maskedText({ doc, schema, secretKeys }: { doc: IniDocument; schema: FileSchema; secretKeys: ReadonlySet<string> }): string {
  const masks: IniChange[] = [];
  for (const section of doc.sections) {
    for (const entry of section.entries) {
      const secret = isSensitive(schema, section.name, entry.key) || secretKeys.has(fieldId(section.name, entry.key));
      if (entry.value !== '' && secret) masks.push({ section: section.name, key: entry.key, value: MASK });
    }
  }
  return serializeIni(masks.length === 0 ? doc : editIni(doc, masks));
}

function serviceOf(reload: ReloadAction): string | null {
  switch (reload.kind) {
    case 'none':
      return null;
    case 'docker_restart':
    case 'docker_signal':
    case 'docker_exec':
    case 'docker_recreate':
      return reload.container.by === 'name'
        ? `container ${reload.container.name}`
        : `container label=${reload.container.label}${reload.container.value !== undefined ? `=${reload.container.value}` : ''}`;
    case 'supervisor_restart':
    case 'supervisor_update':
    case 'supervisor_signal':
      return `program ${reload.program}`;
    case 'http':
      return 'an HTTP call';
  }
}

/** A template's variables and sections as the API lists them: secret defaults masked. */
export function templateJson(template: Template, { sections, schema }: { sections: boolean; schema: FileSchema }): Record<string, unknown> {
  return {
    name: template.name,
    origin: template.origin,
    title: template.title,
    description: template.description,
    variables: template.variables.map((v) => ({
      name: v.name,
      type: v.kind,
      required: v.required,
      secret: v.secret,
      default: v.default === undefined ? null : v.secret && v.default !== '' ? MASK : v.default,
      description: v.description,
    })),
    ...(sections
      ? {
          sections: Object.fromEntries(
            template.sections.map((s) => [
              s.name,
              Object.fromEntries(
                s.entries.map((e) => [e.key, e.value !== '' && isSensitive(schema, s.name, e.key) && !e.value.includes('{{') ? MASK : e.value]),
              ),
            ]),
          ),
        }
      : {}),
  };
}

/** The template named; TEMPLATE_INVALID when its file does not read, else TEMPLATE_NOT_FOUND. */
export function findTemplate({ templates, problems }: LoadTemplatesResult, name: string): Template {
  const template = templates.find((t) => t.name === name);
  if (template) return template;
  const broken = problems.find((problem) => basename(problem.file) === `${name}.ini`);
  if (broken) throw new AppError('TEMPLATE_INVALID', { details: broken.details, data: { template: name } });
  throw new AppError('TEMPLATE_NOT_FOUND', { details: `Template:${name.slice(0, 64)} does not exist` });
}
