/**
 * An nginx include for the console's server block in Nginx Proxy Manager: the listen directives
 * and, when a certificate is configured, TLS on them. Tokens follow ngx_conf_read_token: a bare
 * word ends at whitespace, `;` or `{`; `"..."` may hold anything but an unescaped `"`; `\` escapes
 * `"`, `'` and `\`. `$` starts a variable even inside quotes (ssl_certificate takes variables),
 * and nginx has no escape for it, so a value holding `$` is refused.
 */
import type { RenderInput, Renderer } from './types.js';
import { GENERATED_NOTE, LONE_SURROGATE_PROBLEM, hasLoneSurrogate, isPort, readBackFailed, requireKeys, throwProblems, unparsable } from './render-input.js';

type Directive = readonly [name: string, ...args: string[]];

interface Model {
  readonly directives: readonly Directive[];
  /** The config key behind each directive, for messages. */
  readonly sources: readonly string[];
}

export type NginxQuoting = { readonly ok: true; readonly text: string } | { readonly ok: false; readonly problem: string };

/** Bare when nothing in the token is special to nginx, else double-quoted with `"` and `\` escaped. */
export function quoteNginxToken(value: string): NginxQuoting {
  if (value.includes('$')) return { ok: false, problem: 'holds "$", which nginx reads as a variable' };
  if (/[\n\r]/.test(value)) return { ok: false, problem: 'holds a line break' };
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what it is for.
  if (/[\0-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(value)) return { ok: false, problem: 'holds a control character' };
  if (hasLoneSurrogate(value)) return { ok: false, problem: LONE_SURROGATE_PROBLEM };
  if (value !== '' && !/[\s;{}"'#\\]/.test(value)) return { ok: true, text: value };
  return { ok: true, text: `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"` };
}

function buildModel(input: RenderInput): Model {
  const section = 'nginx_proxy_manager';
  const { value } = requireKeys(input, { [section]: ['listen_port', 'ssl_cert', 'ssl_key'] });
  const port = value(section, 'listen_port');
  const cert = value(section, 'ssl_cert');
  const key = value(section, 'ssl_key');
  const problems: string[] = [];
  if (!isPort(port)) problems.push(`${section}.listen_port is not a port from 1 to 65535`);
  if ((cert === '') !== (key === '')) problems.push(`${section}.ssl_cert and ${section}.ssl_key must both be set or both be empty`);
  for (const [name, text] of [
    ['ssl_cert', cert],
    ['ssl_key', key],
  ] as const) {
    const quoted = quoteNginxToken(text);
    if (!quoted.ok) problems.push(`${section}.${name} ${quoted.problem}`);
  }
  throwProblems(input.target, problems);
  const listen = `${section}.listen_port`;
  if (cert === '') {
    return {
      directives: [
        ['listen', port],
        ['listen', `[::]:${port}`],
      ],
      sources: [listen, listen],
    };
  }
  return {
    directives: [
      ['listen', port, 'ssl'],
      ['listen', `[::]:${port}`, 'ssl'],
      ['ssl_certificate', cert],
      ['ssl_certificate_key', key],
    ],
    sources: [listen, listen, `${section}.ssl_cert`, `${section}.ssl_key`],
  };
}

function render(input: RenderInput): string {
  const lines = buildModel(input).directives.map((d) =>
    d
      .map((token) => {
        const quoted = quoteNginxToken(token);
        return quoted.ok ? quoted.text : token;
      })
      .join(' '),
  );
  return `# ${GENERATED_NOTE}\n${lines.map((l) => `${l};\n`).join('')}`;
}

/**
 * The directives of an nginx configuration fragment, tokenised as ngx_conf_read_token does
 * (without blocks, which this fragment never has). Throws Error on what nginx would refuse.
 */
export function readNginxDirectives(text: string): string[][] {
  const directives: string[][] = [];
  let words: string[] = [];
  let i = 0;
  let line = 1;
  const space = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\r' || c === '\n';
  const unquote = (raw: string): string =>
    raw.replace(/\\(.)/gs, (all, c: string) => {
      if (c === '"' || c === "'" || c === '\\') return c;
      if (c === 't') return '\t';
      if (c === 'r') return '\r';
      if (c === 'n') return '\n';
      return all;
    });
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') line++;
    if (space(c)) {
      i++;
      continue;
    }
    if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
      continue;
    }
    if (c === ';') {
      if (words.length === 0) throw new Error(`line ${line}: unexpected ";"`);
      directives.push(words);
      words = [];
      i++;
      continue;
    }
    if (c === '{' || c === '}') throw new Error(`line ${line}: unexpected "${c}"`);
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += text[j] === '\\' ? 2 : 1;
      if (j >= text.length) throw new Error(`line ${line}: unterminated quoted string`);
      const after = text[j + 1];
      if (after !== ';' && !space(after)) throw new Error(`line ${line}: unexpected character after a quoted string`);
      words.push(unquote(text.slice(i + 1, j)));
      line += text.slice(i, j).split('\n').length - 1;
      i = j + 1;
      continue;
    }
    let j = i;
    while (j < text.length && !space(text[j]) && text[j] !== ';' && text[j] !== '{') j += text[j] === '\\' ? 2 : 1;
    words.push(unquote(text.slice(i, Math.min(j, text.length))));
    i = j;
  }
  if (words.length > 0) throw new Error(`line ${line}: unexpected end of file, expecting ";"`);
  return directives;
}

function verify(output: string, input: RenderInput): void {
  const model = buildModel(input);
  let actual: string[][];
  try {
    actual = readNginxDirectives(output);
  } catch (error) {
    throw unparsable(input.target, 'nginx', (error as Error).message);
  }
  const wrong: string[] = [];
  model.directives.forEach((directive, index) => {
    const got = actual[index];
    if (!got || got.length !== directive.length || got.some((word, w) => word !== directive[w])) wrong.push(model.sources[index]!);
  });
  if (actual.length > model.directives.length) wrong.push(`${actual.length - model.directives.length} directive(s) that were not rendered`);
  if (wrong.length > 0) throw readBackFailed(input.target, [...new Set(wrong)]);
}

export const nginxProxyManagerRenderer: Renderer = { format: 'nginx_proxy_manager', render, verify };
