/**
 * The one mask shown in place of a secret, everywhere: API bodies, audit rows, diffs, history,
 * events, logs and error details.
 */
export const MASK = '******';

/**
 * Replaces every occurrence of each secret in free text (a check command's output, a diff of a
 * rendered file, git's stderr). Callers pass secrets longest first, so a secret that contains
 * another is masked whole.
 */
export function maskText(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret !== '') out = out.split(secret).join(MASK);
  return out;
}
