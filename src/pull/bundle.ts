/**
 * A target's bundle: its rendered files as one ustar archive, for a service that pulls them at
 * start (init/confhub-init.sh). The archive holds `MANIFEST` (one line per file: sha256, mode as
 * four octal digits, path relative to the target's output directory), `REVISION` (one line) and
 * the files under `files/`, so no file of the target can be taken for either. Pure: the files
 * come rendered.
 */
import { createHash } from 'node:crypto';
import { ustar, type TarEntry } from './ustar.js';

export interface BundleFile {
  /** Relative to the bundle's directory, `/`-separated. */
  readonly path: string;
  readonly mode: number;
  readonly content: Buffer;
}

export function sha256Hex(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

export function manifestOf(files: readonly BundleFile[]): string {
  // Permission bits only: the init script refuses setuid, setgid and sticky modes.
  return files.map((file) => `${sha256Hex(file.content)} ${(file.mode & 0o777).toString(8).padStart(4, '0')} ${file.path}\n`).join('');
}

/** The parent directories of `files` under `files/`, each once and before what it holds. */
function directoriesOf(files: readonly BundleFile[]): string[] {
  const seen = new Set<string>(['files/']);
  for (const file of files) {
    const parts = file.path.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) seen.add(`files/${parts.slice(0, i).join('/')}/`);
  }
  return [...seen].sort();
}

export function bundleArchive({ files, revision, mtime }: { files: readonly BundleFile[]; revision: string; mtime: number }): Buffer {
  const entries: TarEntry[] = [
    { path: 'MANIFEST', mode: 0o644, content: Buffer.from(manifestOf(files), 'utf8') },
    { path: 'REVISION', mode: 0o644, content: Buffer.from(`${revision}\n`, 'utf8') },
    ...directoriesOf(files).map((path) => ({ path, mode: 0o755 })),
    ...files.map((file) => ({ path: `files/${file.path}`, mode: file.mode & 0o777, content: file.content })),
  ];
  return ustar(entries, { mtime });
}
