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
  return maskCutSecret(out, secrets);
}

/** Where output is cut short (reload-actions.ts firstLines), it ends with this. */
const CUT = '…';
/** The shortest beginning of a secret masked at a cut: shorter ones say too little to hide. */
const MIN_CUT_PREFIX = 3;

/**
 * Output cut short in the middle of a secret ends with the secret's beginning, which no whole
 * match finds: that beginning is masked too.
 */
function maskCutSecret(text: string, secrets: readonly string[]): string {
  if (!text.endsWith(CUT)) return text;
  const body = text.slice(0, -CUT.length);
  let longest = 0;
  for (const secret of secrets) {
    for (let length = Math.min(secret.length - 1, body.length); length >= MIN_CUT_PREFIX && length > longest; length--) {
      if (body.endsWith(secret.slice(0, length))) {
        longest = length;
        break;
      }
    }
  }
  return longest === 0 ? text : `${body.slice(0, -longest)}${MASK}${CUT}`;
}
