/**
 * The bundle of a target as the worker wrote it: each of its files rendered by the worker's own
 * pure step (renderTarget over renderInput) from the revision that target last applied, not from
 * config.ini as it is now. A write still being applied, or one that failed and was rolled back,
 * leaves a service pulling the files the pushed services have. The revision's text comes from the
 * store when it is the current one, else from the history commit its sync run names.
 */
import { stat } from 'node:fs/promises';
import { dirname, relative, sep } from 'node:path';
import { createHash } from 'node:crypto';
import { AppError } from '../core/errors.js';
import { readTemplateContained } from '../fs/contained-path.js';
import type { IniDocument } from '../ini/document.js';
import { renderTarget } from '../render/index.js';
import { renderInput } from '../sync/reconcile.js';
import type { TargetStatus } from '../sync/target-status.js';
import type { EnvDeclarations } from '../targets/env-spec.js';
import type { PathRules } from '../targets/path-rules.js';
import { bundleTargets, type TargetSpec } from '../targets/target-spec.js';
import { bundleArchive, type BundleFile } from './bundle.js';

export interface BundleSourceDeps {
  targets: readonly TargetSpec[];
  paths: PathRules;
  env: EnvDeclarations;
  /** Per-target state: the revision each target last applied. */
  status(): readonly TargetStatus[];
  /** config.ini at `revision`, secrets opened and values resolved as the worker resolves them. */
  documentAt(revision: string): Promise<IniDocument>;
}

export interface Bundle {
  /** The revision the files are of; when a bundle's targets applied different ones, a digest of them all. */
  readonly revision: string;
  readonly files: readonly (BundleFile & { readonly target: string; readonly output: string })[];
  readonly archive: Buffer;
}

/** A target's file in its bundle: its output relative to the bundle's own target's directory. */
export function bundlePath(owner: TargetSpec, spec: TargetSpec): string {
  return relative(dirname(owner.output), spec.output).split(sep).join('/');
}

export function targetNotFound(name: string): AppError {
  return new AppError('TARGET_NOT_FOUND', { details: `no target ${JSON.stringify(name.slice(0, 64))} is declared in system.ini` });
}

function revisionOfBundle(applied: readonly { target: string; revision: string }[]): string {
  const first = applied[0]!.revision;
  if (applied.every((a) => a.revision === first)) return first;
  const digest = createHash('sha256');
  for (const a of applied) digest.update(`${a.target}=${a.revision}\n`);
  return `mixed-${digest.digest('hex').slice(0, 32)}`;
}

export function createBundleSource(deps: BundleSourceDeps) {
  /** The last bundle made per target, and what it was made from. */
  const made = new Map<string, { key: string; bundle: Bundle }>();

  /** The revision each of `specs` last applied; undefined (or TARGET_NOT_APPLIED when required) while one has none. */
  function appliedOf(specs: readonly TargetSpec[], { required = false } = {}): { target: string; revision: string }[] | undefined {
    const states = new Map(deps.status().map((s) => [s.target, s]));
    const applied = [];
    for (const spec of specs) {
      const state = states.get(spec.name);
      if (!state?.appliedRevision) {
        if (!required) return undefined;
        throw new AppError('TARGET_NOT_APPLIED', {
          details: `target ${spec.name} has applied no revision yet (state ${state?.state ?? 'unknown'}); ask again once confhub is ready`,
        });
      }
      applied.push({ target: spec.name, revision: state.appliedRevision });
    }
    return applied;
  }

  async function templateStamp(spec: TargetSpec): Promise<string> {
    if (spec.template === undefined) return '';
    // A template changed on disk renders differently at the same revision.
    const info = await stat(spec.template).catch(() => undefined);
    return info ? `${info.ino}:${info.size}:${info.mtimeMs}` : 'missing';
  }

  return {
    /** The targets `name`'s bundle holds (itself first); TARGET_NOT_FOUND when none is declared. */
    targetsOf(name: string): TargetSpec[] {
      const specs = bundleTargets(deps.targets, name);
      if (specs.length === 0) throw targetNotFound(name);
      return specs;
    },

    /** The revision `name`'s bundle is of now; null until each of its targets applied one. */
    revisionNow(name: string): string | null {
      const applied = appliedOf(bundleTargets(deps.targets, name));
      return applied && applied.length > 0 ? revisionOfBundle(applied) : null;
    },

    async bundle(name: string): Promise<Bundle> {
      const specs = this.targetsOf(name);
      const owner = specs[0]!;
      const applied = appliedOf(specs, { required: true })!;
      const stamps = await Promise.all(specs.map(templateStamp));
      const key = JSON.stringify([applied, stamps]);
      const cached = made.get(name);
      if (cached?.key === key) return cached.bundle;
      const documents = new Map<string, Promise<IniDocument>>();
      const files = [];
      for (const [i, spec] of specs.entries()) {
        const revision = applied[i]!.revision;
        if (!documents.has(revision)) documents.set(revision, deps.documentAt(revision));
        const doc = await documents.get(revision)!;
        const template = spec.template ? await readTemplateContained(spec.template, deps.paths) : undefined;
        const content = Buffer.from(renderTarget(spec.format, renderInput({ doc, spec, template, env: deps.env })), 'utf8');
        files.push({ target: spec.name, output: spec.output, path: bundlePath(owner, spec), mode: spec.mode, content });
      }
      const revision = revisionOfBundle(applied);
      const bundle: Bundle = { revision, files, archive: bundleArchive({ files, revision, mtime: 0 }) };
      made.set(name, { key, bundle });
      return bundle;
    },
  };
}

export type BundleSource = ReturnType<typeof createBundleSource>;
