/**
 * A POSIX ustar archive, written in memory: what busybox tar, GNU tar and bsdtar all read. Only
 * regular files and directories, owned by root, with the modes given; no extensions (PAX, GNU
 * long names), so a path must fit ustar's 100-byte name and 155-byte prefix.
 */
import { AppError } from '../core/errors.js';

export interface TarEntry {
  /** Relative, `/`-separated; a directory's ends in `/`. */
  readonly path: string;
  readonly mode: number;
  /** Absent for a directory. */
  readonly content?: Buffer;
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  // width - 1 digits and a NUL, as tar writes them.
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

/** ustar's name and prefix fields: a path over 100 bytes is split at a `/`. */
function splitPath(path: string): { name: string; prefix: string } {
  const bytes = Buffer.byteLength(path);
  if (bytes <= 100) return { name: path, prefix: '' };
  for (let at = path.indexOf('/'); at !== -1; at = path.indexOf('/', at + 1)) {
    const prefix = path.slice(0, at);
    const name = path.slice(at + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name !== '') return { name, prefix };
  }
  throw new AppError('RENDER_FAILED', { details: `the path ${path} is too long for a tar archive (at most 100 bytes after a directory of at most 155)` });
}

function header(entry: TarEntry, mtime: number): Buffer {
  const block = Buffer.alloc(BLOCK);
  const { name, prefix } = splitPath(entry.path);
  const directory = entry.content === undefined;
  block.write(name, 0, 100, 'utf8');
  block.write(octal(entry.mode & 0o7777, 8), 100, 'ascii');
  block.write(octal(0, 8), 108, 'ascii');
  block.write(octal(0, 8), 116, 'ascii');
  block.write(octal(directory ? 0 : entry.content!.length, 12), 124, 'ascii');
  block.write(octal(mtime, 12), 136, 'ascii');
  // The checksum is computed with its own field as spaces.
  block.write('        ', 148, 'ascii');
  block.write(directory ? '5' : '0', 156, 'ascii');
  block.write('ustar\u000000', 257, 'ascii');
  block.write('root', 265, 'ascii');
  block.write('root', 297, 'ascii');
  block.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return block;
}

/** The archive of `entries` in their order; `mtime` in seconds since the epoch. */
export function ustar(entries: readonly TarEntry[], { mtime }: { mtime: number }): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    parts.push(header(entry, Math.max(0, Math.floor(mtime))));
    if (entry.content === undefined || entry.content.length === 0) continue;
    parts.push(entry.content);
    const pad = (BLOCK - (entry.content.length % BLOCK)) % BLOCK;
    if (pad > 0) parts.push(Buffer.alloc(pad));
  }
  // Two zero blocks end the archive.
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}
