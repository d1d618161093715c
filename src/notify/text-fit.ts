/**
 * Measuring and cutting text for chat services. Each service counts its limit in its own unit
 * (UTF-16 characters, UTF-8 bytes, bytes of the JSON body), so every measure here is additive over
 * code points: the measure of a concatenation is the sum of the measures of its parts, which lets
 * the formatters fit pieces one by one. Cuts fall between code points, never inside a surrogate pair.
 */

export type Measure = (text: string) => number;

/** JS string length: never less than the code point count, so it is the safe reading of "characters". */
export const utf16Units: Measure = (text) => text.length;

export const utf8Bytes: Measure = (text) => Buffer.byteLength(text, 'utf8');

/** Bytes the text takes inside a JSON string literal (quotes, backslashes and controls are escaped). */
export const jsonStringBytes: Measure = (text) => Buffer.byteLength(JSON.stringify(text), 'utf8') - 2;

export const ELLIPSIS = '…';
export const ZERO_WIDTH_SPACE = '\u200b';

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const LINE_BREAKS = /[\t\n\r\u2028\u2029]/g;
// Other controls, and the bidi controls that can make a key read as something else.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what it is for.
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * A value as one line of plain text: no line breaks (a key cannot start a fake line or a fake
 * event), no controls, no lone surrogates. Line breaks become spaces; other invisibles become U+FFFD
 * so their presence stays visible.
 */
export function plainLine(value: string): string {
  return value.replace(LONE_SURROGATE, '\ufffd').replace(LINE_BREAKS, ' ').replace(INVISIBLE, '\ufffd');
}

/** At most `max` code points, the last replaced by `…` when cut. */
export function cutCodePoints(text: string, max: number): string {
  // Never more code points than UTF-16 units: a short string needs no walk.
  if (text.length <= max) return text;
  const points: string[] = [];
  for (const char of text) {
    points.push(char);
    if (points.length > max) break;
  }
  if (points.length <= max) return text;
  return max <= 0 ? '' : points.slice(0, max - 1).join('') + ELLIPSIS;
}

export interface FitInput {
  /** Plain text (already `plainLine`d). */
  readonly text: string;
  readonly budget: number;
  /** Plain → service text; must map each code point on its own (escapes are per character). */
  readonly escapeText: (plain: string) => string;
  readonly measure: Measure;
}

/**
 * The escaped text, cut on a code point with `…` so that its measure stays within the budget;
 * '' when not even the ellipsis fits.
 */
export function fitEscaped(input: FitInput): string {
  const { text, budget, escapeText, measure } = input;
  const whole = escapeText(text);
  if (measure(whole) <= budget) return whole;
  const tail = escapeText(ELLIPSIS);
  let room = budget - measure(tail);
  if (room < 0) return '';
  let out = '';
  for (const char of text) {
    const piece = escapeText(char);
    const size = measure(piece);
    if (size > room) break;
    out += piece;
    room -= size;
  }
  return out + tail;
}
