/**
 * cockpit.conf, a GLib key file: which origins may open the web console (the proxy's public
 * domain and the local port), and that a TLS-terminating proxy in front is trusted.
 * GLib reads `key = value`, skips whitespace after `=`, and unescapes `\s \n \t \r \\`.
 */
import type { RenderInput, Renderer } from './types.js';
import {
  GENERATED_NOTE,
  LONE_SURROGATE_PROBLEM,
  differences,
  hasLoneSurrogate,
  isPort,
  optionalValue,
  readBackFailed,
  requireKeys,
  throwProblems,
  unparsable,
  wildcardHost,
} from './render-input.js';

const GROUP = 'WebService';

export type KeyFileEscaping = { readonly ok: true; readonly text: string } | { readonly ok: false; readonly problem: string };

/** GLib's g_key_file_parse_string_as_value, minus line breaks (refused) and with trailing spaces kept visible. */
export function escapeKeyFileValue(value: string): KeyFileEscaping {
  if (/[\n\r]/.test(value)) return { ok: false, problem: 'holds a line break, which a key file value cannot' };
  if (value.includes('\0')) return { ok: false, problem: 'holds a NUL character' };
  if (hasLoneSurrogate(value)) return { ok: false, problem: LONE_SURROGATE_PROBLEM };
  let text = value.replace(/\\/g, '\\\\').replace(/\t/g, '\\t');
  // GLib skips whitespace after "="; a leading space is written \s. A trailing one as well, so no editor strips it.
  text = text.replace(/^ /, '\\s').replace(/ $/, '\\s');
  return { ok: true, text };
}

function buildModel(input: RenderInput): Map<string, string> {
  const { views, value } = requireKeys(input, { cockpit: ['port'] });
  const port = value('cockpit', 'port');
  const domain = wildcardHost(optionalValue(views, 'domain', 'wildcard_domain'));
  const problems: string[] = [];
  if (!isPort(port)) problems.push('cockpit.port is not a port from 1 to 65535');
  if (domain === undefined) problems.push('domain.wildcard_domain is not a domain name');
  throwProblems(input.target, problems);
  const origins = [...(domain ? [`https://${domain}`, `wss://${domain}`] : []), `http://127.0.0.1:${port}`, `ws://127.0.0.1:${port}`];
  return new Map([
    ['Origins', origins.join(' ')],
    ['ProtocolHeader', 'X-Forwarded-Proto'],
    ['AllowUnencrypted', 'true'],
  ]);
}

function render(input: RenderInput): string {
  const lines = [`# ${GENERATED_NOTE}`, `[${GROUP}]`];
  for (const [key, value] of buildModel(input)) {
    const escaped = escapeKeyFileValue(value);
    // Values are built from a validated port and domain; a failure here is a bug, not input.
    if (!escaped.ok) throw unparsable(input.target, 'key file', `${GROUP}.${key} ${escaped.problem}`);
    lines.push(`${key} = ${escaped.text}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * A GLib key file reader (gkeyfile.c): `#` comments, `[group]`, `key = value` with the key
 * trimmed and leading value whitespace skipped, escapes `\s \n \t \r \\` (others are errors).
 */
export function readKeyFile(text: string): Map<string, Map<string, string>> {
  const groups = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((rawLine, index) => {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    const trimmed = line.replace(/^[ \t\f\v]+/, '');
    if (trimmed === '' || trimmed.startsWith('#')) return;
    if (trimmed.startsWith('[')) {
      if (!trimmed.endsWith(']')) throw new Error(`line ${index + 1}: malformed group header`);
      const name = trimmed.slice(1, -1);
      if (groups.has(name)) throw new Error(`line ${index + 1}: duplicate group`);
      current = new Map();
      groups.set(name, current);
      return;
    }
    if (!current) throw new Error(`line ${index + 1}: a key before the first group`);
    const eq = trimmed.indexOf('=');
    if (eq <= 0) throw new Error(`line ${index + 1}: expected key = value`);
    const key = trimmed.slice(0, eq).replace(/[ \t\f\v]+$/, '');
    const raw = trimmed.slice(eq + 1).replace(/^[ \t\f\v]+/, '');
    const value = raw.replace(/\\(.?)/g, (_, c: string) => {
      const map: Record<string, string> = { s: ' ', n: '\n', t: '\t', r: '\r', '\\': '\\' };
      const out = map[c];
      if (out === undefined) throw new Error(`line ${index + 1}: invalid escape in a value`);
      return out;
    });
    if (current.has(key)) throw new Error(`line ${index + 1}: duplicate key`);
    current.set(key, value);
  });
  return groups;
}

function verify(output: string, input: RenderInput): void {
  const expected = new Map([[GROUP, buildModel(input)]]);
  let actual: Map<string, Map<string, string>>;
  try {
    actual = readKeyFile(output);
  } catch (error) {
    throw unparsable(input.target, 'key file', (error as Error).message);
  }
  const wrong = differences(expected, actual);
  if (wrong.length > 0) throw readBackFailed(input.target, wrong);
}

export const cockpitRenderer: Renderer = { format: 'cockpit', render, verify };
