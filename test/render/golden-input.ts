/** Reads a golden `.in.json` (plain JSON, values as [key, value] pairs) into a RenderInput. */
import { readFileSync } from 'node:fs';
import type { RenderInput } from '../../src/render/types.js';

export interface GoldenInputJson {
  target: string;
  sections: { name: string; values: [string, string][] }[];
  template?: string;
}

export function toRenderInput(json: GoldenInputJson): RenderInput {
  return {
    target: json.target,
    sections: json.sections.map((s) => ({ name: s.name, values: new Map(s.values) })),
    ...(json.template === undefined ? {} : { template: json.template }),
  };
}

export function readGoldenInput(file: string): RenderInput {
  return toRenderInput(JSON.parse(readFileSync(file, 'utf8')) as GoldenInputJson);
}
