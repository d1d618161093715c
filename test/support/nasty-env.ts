/** Environment values that each meet one rule of a consumer's reader (supervisord's: src/render/supervisor-env.ts). */
export const NASTY: Readonly<Record<string, string>> = {
  SPACES: '  two  leading and trailing  ',
  DQUOTE_INSIDE: 'say "hi" now',
  SQUOTE_INSIDE: "it's",
  COMMAS: 'a,b,,c',
  EQUALS: 'k=v==',
  PERCENT: '100% %s %(here)s %%(ENV_HOME)s %(program_name)s %',
  BACKSLASHES: 'C:\\path\\ \\n \\"x\\',
  UNICODE: 'ü 中文 😀 \u00a0nbsp \u2028ls \u3000',
  COMMENTS: 'a ;b #c\t;d\u3000#e;f#g',
  MULTILINE: 'first\n\n  indented\n#hash line\n;semi line\ntrailing  \n\tlast',
  EMPTY: '',
  CONTROL: 'bell\u0007 vt\u000b ff\u000c fs\u001c nel\u0085 tab\t',
  SHLEX: 'x # not a comment, y = z',
};
