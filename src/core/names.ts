/**
 * Allow-lists for section and key names coming from requests. Names that could reach object
 * prototypes are refused even though parsed documents use Maps, so no consumer can be tricked.
 */
const SECTION_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}$/;
const KEY_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

export function sectionNameProblem(name: string): string | undefined {
  if (FORBIDDEN.has(name.toLowerCase())) return `Section name "${name}" is not allowed`;
  return SECTION_NAME.test(name) ? undefined : `Section name "${printable(name)}" must be 1-64 letters, digits, "_", ".", ":" or "-"`;
}

export function keyNameProblem(name: string): string | undefined {
  if (FORBIDDEN.has(name.toLowerCase())) return `Key name "${name}" is not allowed`;
  return KEY_NAME.test(name) ? undefined : `Key name "${printable(name)}" must be 1-64 letters, digits, "_", "." or "-"`;
}

/** Makes a rejected name safe to echo in an error body or log line. */
export function printable(text: string, max = 80): string {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  return JSON.stringify(cut).slice(1, -1);
}
