/** Reads a golden `.in.json` (plain JSON, values as [key, value] pairs) into a RenderInput. */
import { readFileSync } from 'node:fs';
import type { RenderInput } from '../../src/render/types.js';

export interface GoldenInputJson {
  target: string;
  sections: { name: string; values: [string, string][] }[];
  template?: string;
  /** A target with `env`: the variables its consumer receives. */
  environment?: [string, string][];
  /** format supervisor_env: the program. */
  program?: string;
}

export function toRenderInput(json: GoldenInputJson): RenderInput {
  return {
    target: json.target,
    sections: json.sections.map((s) => ({ name: s.name, values: new Map(s.values) })),
    ...(json.template === undefined ? {} : { template: json.template }),
    ...(json.environment === undefined ? {} : { environment: json.environment.map(([name, value]) => ({ name, value })) }),
    ...(json.program === undefined ? {} : { program: json.program }),
  };
}

export function readGoldenInput(file: string): RenderInput {
  return toRenderInput(JSON.parse(readFileSync(file, 'utf8')) as GoldenInputJson);
}
