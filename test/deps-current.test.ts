/** `bash test/run.sh` right after the README's `npm ci` does not install again. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDirs } from './support/temp-dirs.js';

const tempDir = tempDirs('confhub-deps-');
const script = new URL('../scripts/deps-current.sh', import.meta.url).pathname;
const current = (dir: string): number | null => spawnSync('bash', [script, dir]).status;

describe('deps-current', () => {
  it('when npm installed after the lock last changed, then it is current and remembered; a lock changed since, or no install, is not', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'package-lock.json'), '{"lockfileVersion":3}\n');
    expect(current(dir)).toBe(1);
    mkdirSync(join(dir, 'node_modules'));
    const past = new Date(Date.now() - 60_000);
    utimesSync(join(dir, 'package-lock.json'), past, past);
    writeFileSync(join(dir, 'node_modules', '.package-lock.json'), '{}\n');
    expect(current(dir)).toBe(0);
    expect(existsSync(join(dir, 'node_modules', '.confhub-lock-sha256'))).toBe(true);
    writeFileSync(join(dir, 'package-lock.json'), '{"lockfileVersion":3,"changed":true}\n');
    expect(current(dir)).toBe(1);
  });
});
