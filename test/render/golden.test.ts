/**
 * Golden files of every renderer: test/render/golden/<format>/<case>.in.json is the RenderInput
 * (`{target, sections: [{name, values: [[key, value], …]}], template?}`); `<case>.out` holds the
 * exact bytes the render must produce, or `<case>.err` the exact `details` of the RENDER_FAILED it
 * must throw. UPDATE_GOLDEN=1 rewrites them from the current renderers — review every change.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isAppError } from '../../src/core/errors.js';
import { RENDERERS, renderTarget } from '../../src/render/index.js';
import { FORMATS, type FormatName } from '../../src/targets/target-spec.js';
import { readGoldenInput } from './golden-input.js';

const GOLDEN_DIR = fileURLToPath(new URL('./golden', import.meta.url));
const UPDATE = process.env.UPDATE_GOLDEN === '1';

function casesOf(format: FormatName): string[] {
  const dir = join(GOLDEN_DIR, format);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith('.in.json'))
    .map((name) => name.slice(0, -'.in.json'.length))
    .sort();
}

function attempt(format: FormatName, file: string): { output: string } | { details: string } {
  try {
    return { output: renderTarget(format, readGoldenInput(file)) };
  } catch (error) {
    if (isAppError(error) && error.code === 'RENDER_FAILED') return { details: error.details };
    throw error;
  }
}

describe('golden files', () => {
  for (const format of FORMATS) {
    describe(format, () => {
      const cases = casesOf(format);

      it(`when the ${format} renderer is tested, then it has a typical and a nasty case`, () => {
        expect(cases.some((c) => c.startsWith('typical'))).toBe(true);
        expect(cases.some((c) => c.startsWith('nasty'))).toBe(true);
      });

      for (const name of cases) {
        const base = join(GOLDEN_DIR, format, name);
        const outFile = `${base}.out`;
        const errFile = `${base}.err`;

        it(`when ${format}/${name} is rendered, then the result is exactly the .out bytes (verify accepts them) or the .err details`, () => {
          const result = attempt(format, `${base}.in.json`);
          if (UPDATE) {
            if ('output' in result) writeFileSync(outFile, result.output);
            else writeFileSync(errFile, `${result.details}\n`);
          }
          const hasOut = existsSync(outFile);
          const hasErr = existsSync(errFile);
          expect(hasOut !== hasErr, `${name} needs exactly one of .out and .err`).toBe(true);
          if (hasErr) {
            expect(result).toEqual({ details: readFileSync(errFile, 'utf8').replace(/\n$/, '') });
            return;
          }
          const expected = readFileSync(outFile, 'utf8');
          expect(result).toEqual({ output: expected });
          // The golden bytes themselves pass verify, not only what render produced.
          expect(() => RENDERERS.get(format)!.verify(expected, readGoldenInput(`${base}.in.json`))).not.toThrow();
        });
      }
    });
  }
});
