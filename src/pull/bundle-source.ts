/**
 * The bundle of a target: its files exactly as the sync worker wrote them. The worker tells main,
 * before it reloads a service and again when it puts files back, what each target's file on disk
 * is (its revision when known, and its sha256). A file is rendered by the worker's own pure step
 * (renderTarget over renderInput) from that revision's config.ini (from the store when it is the
 * current one, else from the history); when that does not give the bytes the worker reported (a
 * template changed on disk since, files put back from before this start), the file on disk is read
 * and served if it has them. Either way a service gets what the worker wrote, or 503 and asks again:
 * never a file the pushed services do not have.
 */
import { createHash } from 'node:crypto';
import { dirname, relative, sep } from 'node:path';
import { AppError } from '../core/errors.js';
import { readTemplateContained } from '../fs/contained-path.js';
import type { IniDocument } from '../ini/document.js';
import { renderTarget } from '../render/index.js';
import { renderInput } from '../sync/reconcile.js';
import { createTargetWriter } from '../sync/target-writer.js';
import type { EnvDeclarations } from '../targets/env-spec.js';
import type { FileOnDisk } from '../targets/outcome.js';
import type { PathRules } from '../targets/path-rules.js';
import { bundleTargets, type TargetSpec } from '../targets/target-spec.js';
import { bundleArchive, sha256Hex, type BundleFile } from './bundle.js';

export interface BundleSourceDeps {
  targets: readonly TargetSpec[];
  paths: PathRules;
  env: EnvDeclarations;
  /** Each target's file on disk, as the worker last told it. */
  filesOnDisk(): ReadonlyMap<string, FileOnDisk>;
  /** config.ini at `revision`, secrets opened and values resolved as the worker resolves them. */
  documentAt(revision: string): Promise<IniDocument>;
}

export interface Bundle {
  /** The revision the files are of; a digest when its targets are at different ones or one is not known. */
  readonly revision: string;
  /** The revision and a digest of the files' bytes: a template changed on disk changes the files, not the revision. */
  readonly etag: string;
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

function notApplied(details: string): AppError {
  return new AppError('TARGET_NOT_APPLIED', { details });
}

/**
 * The bundle's revision: the revision of its files when they all have the same known one; else
 * `mixed-` and a digest of each target's revision or file, so it changes whenever a file does.
 */
export function revisionOfBundle(files: readonly FileOnDisk[]): string {
  const first = files[0]?.revision;
  if (first && files.every((f) => f.revision === first)) return first;
  const digest = createHash('sha256');
  for (const f of files) digest.update(`${f.target}=${f.revision ?? `sha256:${f.sha256}`}\n`);
  return `mixed-${digest.digest('hex').slice(0, 32)}`;
}

/** The bundle's ETag (quoted): its revision, `+`, and 12 hex digits of a digest of its files' sha256. */
export function etagOfBundle(files: readonly FileOnDisk[]): string {
  const digest = createHash('sha256');
  for (const f of files) digest.update(`${f.sha256}\n`);
  return `"${revisionOfBundle(files)}+${digest.digest('hex').slice(0, 12)}"`;
}

export function createBundleSource(deps: BundleSourceDeps) {
  const writer = createTargetWriter({ rules: deps.paths });
  /** The last bundle made per target, and the files it was made of. */
  const made = new Map<string, { key: string; bundle: Bundle }>();

  /**
   * What the worker said of each of `specs`' files; undefined while one has none, or one of no
   * known revision (left from before confhub, put back from an unknown one: maybe the service's
   * own defaults, which is what a service that pulls must not start on).
   */
  function onDiskOf(specs: readonly TargetSpec[], files: ReadonlyMap<string, FileOnDisk>): (FileOnDisk & { revision: string })[] | undefined {
    const known: (FileOnDisk & { revision: string })[] = [];
    for (const spec of specs) {
      const file = files.get(spec.name);
      if (!file || file.sha256 === null || file.revision === null) return undefined;
      known.push({ ...file, revision: file.revision });
    }
    return known;
  }

  /** The bytes of one target's file as the worker wrote them: rendered, else read, when they match. */
  async function contentOf(spec: TargetSpec, file: FileOnDisk & { revision: string }): Promise<{ content: Buffer; mode: number }> {
    try {
      const doc = await deps.documentAt(file.revision);
      const template = spec.template ? await readTemplateContained(spec.template, deps.paths) : undefined;
      const content = Buffer.from(renderTarget(spec.format, renderInput({ doc, spec, template, env: deps.env })), 'utf8');
      if (sha256Hex(content) === file.sha256) return { content, mode: spec.mode };
    } catch {
      // The revision cannot be rendered here now (not in the history yet, a template gone): the file on disk may still be it.
    }
    const onDisk = await writer.readPrevious(spec.output).catch(() => undefined);
    if (onDisk?.exists && sha256Hex(onDisk.content) === file.sha256) return { content: onDisk.content, mode: onDisk.mode };
    throw notApplied(`the file of target ${spec.name} is being replaced; ask again shortly`);
  }

  return {
    /** The targets `name`'s bundle holds (itself first); TARGET_NOT_FOUND when none is declared. */
    targetsOf(name: string): TargetSpec[] {
      const specs = bundleTargets(deps.targets, name);
      if (specs.length === 0) throw targetNotFound(name);
      return specs;
    },

    /** The revision of every target's bundle now (null until each of its files is known): one look at the worker's reports. */
    revisionsNow(): Map<string, string | null> {
      const files = deps.filesOnDisk();
      return new Map(
        deps.targets.map((spec) => {
          const known = onDiskOf(bundleTargets(deps.targets, spec.name), files);
          return [spec.name, known ? revisionOfBundle(known) : null];
        }),
      );
    },

    /** The ETag `name`'s bundle has now, without making it; null until each of its files is known. */
    etagNow(name: string): string | null {
      const known = onDiskOf(bundleTargets(deps.targets, name), deps.filesOnDisk());
      return known ? etagOfBundle(known) : null;
    },

    async bundle(name: string): Promise<Bundle> {
      const specs = this.targetsOf(name);
      const owner = specs[0]!;
      const known = onDiskOf(specs, deps.filesOnDisk());
      if (!known)
        throw notApplied(
          `a file of target ${name}'s bundle is not one confhub wrote yet (confhub is starting, or its first write failed or was put back); ask again once confhub is ready`,
        );
      const key = JSON.stringify(known);
      const cached = made.get(name);
      if (cached?.key === key) return cached.bundle;
      const files = [];
      for (const [i, spec] of specs.entries()) {
        const { content, mode } = await contentOf(spec, known[i]!);
        files.push({ target: spec.name, output: spec.output, path: bundlePath(owner, spec), mode, content });
      }
      const revision = revisionOfBundle(known);
      const bundle: Bundle = { revision, etag: etagOfBundle(known), files, archive: bundleArchive({ files, revision, mtime: 0 }) };
      made.set(name, { key, bundle });
      return bundle;
    },
  };
}

export type BundleSource = ReturnType<typeof createBundleSource>;
