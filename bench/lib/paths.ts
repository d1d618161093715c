import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: every child process runs here, and results are written below it. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The built server: the benches measure what `npm run build` produced, not the TypeScript. */
export const CLI = join(ROOT, 'dist', 'cli.js');
