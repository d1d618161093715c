#!/usr/bin/env node
/**
 * Lets `npm start` skip the build when nothing that goes into dist/ changed since the last one
 * (tsc is most of a start). `begin` marks the start of a build with a digest of its inputs (the
 * paths and contents of src/, tsconfig.json, package.json, package-lock.json) and removes the
 * record of the previous one, so an interrupted build is never taken for a finished one; `done`
 * records that it finished; `check` exits 0 when dist/ was built from the inputs as they are now,
 * 1 otherwise. Contents, not times: sources copied with their old times, or a clock that runs
 * ahead, do not hide a change.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = process.cwd();
const dist = join(root, 'dist');
const started = join(dist, '.build-started');
const stamp = join(dist, '.build-stamp');

function files(path) {
  if (!existsSync(path)) return [];
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((name) => files(join(path, name)));
}

function digest() {
  const hash = createHash('sha256');
  for (const file of ['src', 'tsconfig.json', 'package.json', 'package-lock.json'].flatMap((name) => files(join(root, name)))) {
    hash.update(`${relative(root, file)}\0`);
    hash.update(readFileSync(file));
    hash.update('\0');
  }
  return `${hash.digest('hex')}\n`;
}

const mode = process.argv[2];
if (mode === 'begin') {
  mkdirSync(dist, { recursive: true });
  rmSync(stamp, { force: true });
  writeFileSync(started, digest());
} else if (mode === 'done') {
  renameSync(started, stamp);
} else if (mode === 'check') {
  if (!existsSync(stamp) || !existsSync(join(dist, 'cli.js'))) process.exit(1);
  process.exit(readFileSync(stamp, 'utf8') === digest() ? 0 : 1);
} else {
  process.stderr.write('usage: node scripts/build-stamp.mjs begin|done|check\n');
  process.exit(2);
}
