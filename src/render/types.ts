/**
 * The renderer contract: a pure function from config.ini sections to one file's content.
 * No fs, clock or environment inside. A renderer throws AppError RENDER_FAILED naming every
 * missing or unusable key (a missing key is an error, never `undefined` in a file), and its
 * output is re-parsed with the target format's parser (verify) before it is staged.
 */
import type { FormatName } from '../targets/target-spec.js';

/** One config.ini section: keys as spelled in the file, in file order. */
export interface RenderSection {
  readonly name: string;
  readonly values: ReadonlyMap<string, string>;
}

export interface RenderInput {
  /** The target's declared sections, in the declared order. */
  readonly sections: readonly RenderSection[];
  /** Template text for format `template`. */
  readonly template?: string;
  /** Target name, for messages. */
  readonly target: string;
  /** A target that delivers an environment (`env = <scope>`): the variables that consumer receives, in order. */
  readonly environment?: readonly { readonly name: string; readonly value: string }[];
  /** The supervisord program a `supervisor_env` include file is for (its target's `supervisor:update:PROG`). */
  readonly program?: string;
}

export interface Renderer {
  readonly format: FormatName;
  render(input: RenderInput): string;
  /** Parses the rendered text with the format's own rules; throws RENDER_FAILED if it does not parse back to the input. */
  verify(output: string, input: RenderInput): void;
}
