/**
 * What a sync would change, without changing anything: every target rendered from config.ini as
 * it is now and compared with its file on disk, as a unified diff with the values of secrets
 * masked (rendered files hold them in plain text). `confhub plan` prints it.
 */
import { createTwoFilesPatch } from 'diff';
import { toPlainError, type PlainError } from '../core/errors.js';
import { readTemplateContained } from '../fs/contained-path.js';
import type { IniDocument } from '../ini/document.js';
import { renderTarget } from '../render/index.js';
import { maskText } from '../core/mask.js';
import { maskedSpellingsOf } from '../settings/mask-secrets.js';
import type { FileSchema } from '../settings/schema.js';
import { renderInput } from './reconcile.js';
import type { PathRules } from '../targets/path-rules.js';
import type { TargetSpec } from '../targets/target-spec.js';
import { NO_ENV_DECLARATIONS, type EnvDeclarations } from '../targets/env-spec.js';
import { createTargetWriter, differs } from './target-writer.js';

export interface TargetPlan {
  readonly target: string;
  readonly output: string;
  /** create: no file yet; update: other bytes; mode: same bytes, other mode; none: in sync. */
  readonly change: 'create' | 'update' | 'mode' | 'none' | 'error';
  readonly mode: { readonly from: number | null; readonly to: number };
  /** Unified diff of the file (secrets masked); '' when the bytes are the same. */
  readonly diff: string;
  readonly error: PlainError | null;
}

export async function planTargets(input: {
  targets: readonly TargetSpec[];
  /** Outputs are read, and templates too, only where the sync would write and read them. */
  paths: PathRules;
  doc: IniDocument;
  schema: FileSchema;
  /** Revisions the files on disk may have been rendered from (the newest commit): their secrets are masked too. */
  earlier?: readonly IniDocument[];
  /** The consumers of environment variables, for targets with `env`. */
  env?: EnvDeclarations;
  /** More values to mask (a template's secret variables, in keys config.ini does not call secret). */
  secrets?: readonly string[];
}): Promise<TargetPlan[]> {
  const secrets = maskedSpellingsOf({ docs: [input.doc, ...(input.earlier ?? [])], schema: input.schema, more: input.secrets ?? [] });
  const plans: TargetPlan[] = [];
  const writer = createTargetWriter({ rules: input.paths });
  for (const spec of input.targets) {
    try {
      const template = spec.template ? await readTemplateContained(spec.template, input.paths) : undefined;
      const content = Buffer.from(renderTarget(spec.format, renderInput({ doc: input.doc, spec, template, env: input.env ?? NO_ENV_DECLARATIONS })), 'utf8');
      const previous = await writer.readPrevious(spec.output);
      const before = previous.exists ? previous.content.toString('utf8') : '';
      const after = content.toString('utf8');
      const change = !previous.exists ? 'create' : !differs(previous, content, spec.mode) ? 'none' : previous.content.equals(content) ? 'mode' : 'update';
      const diff =
        before === after
          ? ''
          : maskText(createTwoFilesPatch(spec.output, spec.output, before, after, previous.exists ? 'on disk' : 'missing', 'from config.ini'), secrets);
      plans.push({ target: spec.name, output: spec.output, change, mode: { from: previous.exists ? previous.mode : null, to: spec.mode }, diff, error: null });
    } catch (error) {
      const plain = toPlainError(error);
      plans.push({
        target: spec.name,
        output: spec.output,
        change: 'error',
        mode: { from: null, to: spec.mode },
        diff: '',
        error: { ...plain, details: maskText(plain.details, secrets) },
      });
    }
  }
  return plans;
}
