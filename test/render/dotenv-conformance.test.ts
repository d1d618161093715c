// biome-ignore-all lint/suspicious/noTemplateCurlyInString: compose's `${X}` syntax is the subject of these strings.
/**
 * Conformance of `.env` files with docker compose v2. First compose-go's own test vectors run
 * against readComposeDotenv, so the port is shown to read as compose does; then every value the
 * writer may meet (and arbitrary ones) must read back exactly; then the older quoting of format
 * `env` (quoteEnvValue) is held to the same reader, style by style.
 *
 * Vectors come from compose-go (the Compose Specification's Go library, v2): dotenv/godotenv_test.go,
 * dotenv/parser_test.go, dotenv/godotenv_var_expansion_test.go, dotenv/fixtures/*.env and
 * template/template_test.go. Go raw strings are written with String.raw.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/core/errors.js';
import {
  ComposeDotenvError,
  type DotenvLookup,
  type DotenvVariable,
  dotenvLine,
  dotenvProblems,
  quoteDotenvValue,
  readComposeDotenv,
  renderDotenv,
} from '../../src/render/dotenv.js';
import { hasLoneSurrogate } from '../../src/render/render-input.js';

const read = (text: string, lookup?: DotenvLookup): Map<string, string> => readComposeDotenv(text, lookup ? { lookup } : {});
const fromRecord =
  (record: Readonly<Record<string, string>>): DotenvLookup =>
  (name) =>
    Object.hasOwn(record, name) ? record[name] : undefined;

/** The message compose would fail with (fails the test when the text reads without error). */
function readError(text: string, lookup?: DotenvLookup): string {
  try {
    read(text, lookup);
  } catch (error) {
    expect(error).toBeInstanceOf(ComposeDotenvError);
    return (error as Error).message;
  }
  throw new Error(`expected ${JSON.stringify(text)} to be refused`);
}

describe('compose-go dotenv/godotenv_test.go', () => {
  // TestParsing: parseAndCompare(rawEnvLine, key, value)
  const parsing: readonly (readonly [string, string, string])[] = [
    ['FOO=bar', 'FOO', 'bar'],
    ['FOO =bar', 'FOO', 'bar'],
    ['FOO= bar', 'FOO', 'bar'],
    ['FOO="bar"', 'FOO', 'bar'],
    ["FOO='bar'", 'FOO', 'bar'],
    [String.raw`FOO="escaped\"bar"`, 'FOO', 'escaped"bar'],
    [String.raw`FOO="\"quoted\""`, 'FOO', '"quoted"'],
    ['FOO="\'d\'"', 'FOO', "'d'"],
    ['OPTION_A: 1', 'OPTION_A', '1'],
    ['OPTION_A: Foo=bar', 'OPTION_A', 'Foo=bar'],
    ['OPTION_A=1:B', 'OPTION_A', '1:B'],
    ['export OPTION_A=2', 'OPTION_A', '2'],
    [String.raw`export OPTION_B='\n'`, 'OPTION_B', '\\n'],
    ['export exportFoo=2', 'exportFoo', '2'],
    ['exportFOO=2', 'exportFOO', '2'],
    ['export_FOO =2', 'export_FOO', '2'],
    ['export.FOO= 2', 'export.FOO', '2'],
    ['export\tOPTION_A=2', 'OPTION_A', '2'],
    ['  export OPTION_A=2', 'OPTION_A', '2'],
    ['\texport OPTION_A=2', 'OPTION_A', '2'],
    ['export OPTION_A="export A"', 'OPTION_A', 'export A'],
    [String.raw`FOO="bar\nbaz"`, 'FOO', 'bar\nbaz'],
    [String.raw`FOO=a\tb`, 'FOO', String.raw`a\tb`],
    [String.raw`FOO="a\tb"`, 'FOO', 'a\tb'],
    [String.raw`KEY="Z\aZ\bZ\fZ\nZ\rZ\tZ\vZ\\Z\0123Z"`, 'KEY', 'Z\x07Z\bZ\fZ\nZ\rZ\tZ\vZ\\ZSZ'],
    ['FOO.BAR=foobar', 'FOO.BAR', 'foobar'],
    ['FOO=foobar=', 'FOO', 'foobar='],
    ['FOO=bar ', 'FOO', 'bar'],
    ['FOO=bar # this is foo', 'FOO', 'bar'],
    ['FOO=bar #this is foo', 'FOO', 'bar'],
    ['FOO=bar #', 'FOO', 'bar'],
    ['FOO=123#not-an-inline-comment', 'FOO', '123#not-an-inline-comment'],
    ['FOO="bar#baz"', 'FOO', 'bar#baz'],
    ['FOO="bar#baz"#', 'FOO', 'bar#baz'],
    ['FOO="bar#baz" # comment', 'FOO', 'bar#baz'],
    ["FOO='bar#baz' # comment", 'FOO', 'bar#baz'],
    ['FOO="bar#baz#bang" # comment', 'FOO', 'bar#baz#bang'],
    ['FOO="ba#r"', 'FOO', 'ba#r'],
    ["FOO='ba#r'", 'FOO', 'ba#r'],
    [String.raw`FOO="bar\n\ b\az"`, 'FOO', 'bar\n\\ b\x07z'],
    [String.raw`FOO="bar\\\n\ b\az"`, 'FOO', 'bar\\\n\\ b\x07z'],
    [String.raw`FOO="bar\\r\ b\az"`, 'FOO', 'bar\\r\\ b\x07z'],
    [String.raw`FOO="bar\nbaz\\"`, 'FOO', 'bar\nbaz\\'],
    ['="value"', '', 'value'],
    [' KEY =value', 'KEY', 'value'],
    ['   KEY=value', 'KEY', 'value'],
    ['\tKEY=value', 'KEY', 'value'],
    [String.raw`KEY="\0123"`, 'KEY', 'S'],
    [String.raw`KEY="\x07"`, 'KEY', String.raw`\x07`],
    [String.raw`KEY="\u12e4"`, 'KEY', String.raw`\u12e4`],
    [String.raw`KEY="\U00101234"`, 'KEY', String.raw`\U00101234`],
  ];
  it.each(parsing)('TestParsing %j', (raw, key, value) => {
    expect(read(raw).get(key)).toBe(value);
  });

  it('TestParsing: a badly formatted line is an error', () => {
    readError('lol$wut');
  });

  it('TestParse', () => {
    expect(Object.fromEntries(read('ONE=1\nTWO=\'2\'\nTHREE = "3"'))).toEqual({ ONE: '1', TWO: '2', THREE: '3' });
  });

  const expanding: readonly (readonly [string, string, Record<string, string>])[] = [
    ['expands variables found in values', 'FOO=test\nBAR=$FOO', { FOO: 'test', BAR: 'test' }],
    ['parses variables wrapped in brackets', 'FOO=test\nBAR=${FOO}bar', { FOO: 'test', BAR: 'testbar' }],
    ['expands undefined variables to an empty string', 'BAR=$FOO', { BAR: '' }],
    ['expands variables in double quoted strings', 'FOO=test\nBAR="quote $FOO"', { FOO: 'test', BAR: 'quote test' }],
    ['does not expand variables in single quoted strings', "BAR='quote $FOO'", { BAR: 'quote $FOO' }],
    ['does not expand escaped variables 1', String.raw`FOO="foo\$BAR"`, { FOO: 'foo$BAR' }],
    ['does not expand escaped variables 2', String.raw`FOO="foo\${BAR}"`, { FOO: 'foo${BAR}' }],
    ['does not expand escaped variables 3', 'FOO=test\nBAR="foo\\${FOO} ${FOO}"', { FOO: 'test', BAR: 'foo${FOO} test' }],
  ];
  it.each(expanding)('TestExpanding: %s', (_name, input, expected) => {
    expect(Object.fromEntries(read(input))).toEqual(expected);
  });

  it('TestVariableStringValueSeparator', () => {
    const input = 'TEST_URLS="stratum+tcp://stratum.antpool.com:3333\nstratum+tcp://stratum.antpool.com:443"';
    expect(Object.fromEntries(read(input))).toEqual({ TEST_URLS: 'stratum+tcp://stratum.antpool.com:3333\nstratum+tcp://stratum.antpool.com:443' });
  });

  it.each(['KEY="', 'KEY="value', String.raw`KEY="value\"`, 'KEY="value\'', "KEY='", "KEY='value", String.raw`KEY='value\'`, 'KEY=\'value"'])(
    'TestUnterminatedQuotes %j',
    (input) => {
      expect(readError(input)).toContain('unterminated quoted value');
    },
  );

  it.each(['\n', '\r\n', '\t\t ', '# Comment', '\t # comment'])('TestLinesToIgnore %j', (input) => {
    expect(read(input).size).toBe(0);
  });

  it('TestErrorParsing (fixtures/invalid1.env)', () => {
    const invalid1 = '# some comments\nfoo="\n  a\n  multine\n  value\n"\nINVALID LINE\nzot=qix';
    expect(readError(invalid1)).toBe('line 7: key cannot contain a space');
  });

  // Read() drops names that start with a digit (ReadWithLookup); compose's project loader does not.
  const asRead = (vars: Map<string, string>): Record<string, string> => Object.fromEntries([...vars].filter(([key]) => !/^\s*\d/.test(key)));
  const plainEnv = 'OPTION_A=1\nOPTION_B=2\nOPTION_C= 3\nOPTION_D =4\nOPTION_E = 5\n456 = ABC\nOPTION_F = \nOPTION_G=\nOPTION_H = my string # Inline comment\n';

  it('TestReadPlainEnv (fixtures/plain.env)', () => {
    const expected = { OPTION_A: '1', OPTION_B: '2', OPTION_C: '3', OPTION_D: '4', OPTION_E: '5', OPTION_F: '', OPTION_G: '', OPTION_H: 'my string' };
    expect(asRead(read(plainEnv))).toEqual(expected);
    expect(read(plainEnv).get('456')).toBe('ABC');
  });

  it('TestUTF8BOM (fixtures/utf8-bom.env)', () => {
    expect(asRead(read(`\uFEFF${plainEnv.replace('OPTION_F = ', 'OPTION_F =')}`))).toMatchObject({ OPTION_A: '1', OPTION_B: '2', OPTION_E: '5' });
  });

  it('TestLoadExportedEnv (fixtures/exported.env)', () => {
    expect(Object.fromEntries(read("export OPTION_A=2\nexport OPTION_B='\\n'\n"))).toEqual({ OPTION_A: '2', OPTION_B: '\\n' });
  });

  it('TestLoadEqualsEnv (fixtures/equals.env)', () => {
    const equals = "export OPTION_A='postgres://localhost:5432/database?sslmode=disable'\n\n";
    expect(read(equals).get('OPTION_A')).toBe('postgres://localhost:5432/database?sslmode=disable');
  });

  it('TestLoadQuotedEnv (fixtures/quoted.env)', () => {
    const quoted = String.raw`OPTION_A='1'
OPTION_B='2'
OPTION_C=''
OPTION_D='\n'
OPTION_E="1"
OPTION_F="2"
OPTION_G=""
OPTION_H="\n"
OPTION_I = "echo 'asd'" # Inline comment
OPTION_J = 'first line
second line
third line
and so on'
OPTION_K='Let\'s go!'
OPTION_Z = "last value"
`;
    expect(Object.fromEntries(read(quoted))).toEqual({
      OPTION_A: '1',
      OPTION_B: '2',
      OPTION_C: '',
      OPTION_D: '\\n',
      OPTION_E: '1',
      OPTION_F: '2',
      OPTION_G: '',
      OPTION_H: '\n',
      OPTION_I: "echo 'asd'",
      OPTION_J: 'first line\nsecond line\nthird line\nand so on',
      OPTION_K: "Let's go!",
      OPTION_Z: 'last value',
    });
  });

  it('TestLoadUnquotedEnv (fixtures/unquoted.env)', () => {
    const unquoted = [
      'OPTION_A = "some quoted phrase"',
      'OPTION_B=first one with an unquoted phrase',
      'OPTION_C = then another one with an unquoted phrase',
      'OPTION_D = then another one with an unquoted phrase special è char',
      'OPTION_E = "then another one quoted phrase"',
      '',
    ].join('\n');
    expect(Object.fromEntries(read(unquoted))).toEqual({
      OPTION_A: 'some quoted phrase',
      OPTION_B: 'first one with an unquoted phrase',
      OPTION_C: 'then another one with an unquoted phrase',
      OPTION_D: 'then another one with an unquoted phrase special è char',
      OPTION_E: 'then another one quoted phrase',
    });
  });

  it('TestDash (fixtures/special.env)', () => {
    const special = 'VAR.WITH.DOTS=dots\nVAR_WITH_UNDERSCORES=underscores\nVAR-WITH-DASHES=dashes\n';
    expect(Object.fromEntries(read(special))).toEqual({ 'VAR-WITH-DASHES': 'dashes', 'VAR.WITH.DOTS': 'dots', VAR_WITH_UNDERSCORES: 'underscores' });
  });

  const substitutions = 'OPTION_A=1\nOPTION_B=${OPTION_A}\nOPTION_C=$OPTION_B\nOPTION_D=${OPTION_A}_${OPTION_B}\nOPTION_E=${OPTION_NOT_DEFINED}\n';
  const substitutionsDefault = substitutions.replace('OPTION_A=1', 'OPTION_A=${OPTION_A:-1}');

  it('TestSubstitutions (fixtures/substitutions.env)', () => {
    expect(Object.fromEntries(read(substitutions))).toEqual({ OPTION_A: '1', OPTION_B: '1', OPTION_C: '1', OPTION_D: '1_1', OPTION_E: '' });
  });

  it('TestSubstitutionsWithEnvFilePrecedence: the lookup wins over the file', () => {
    const env = fromRecord({ OPTION_A: '5' });
    expect(Object.fromEntries(read(substitutions, env))).toEqual({ OPTION_A: '1', OPTION_B: '5', OPTION_C: '5', OPTION_D: '5_5', OPTION_E: '' });
  });

  it('TestSubstitutionsWithEnvFileDefaultValuePrecedence (fixtures/substitutions-default.env)', () => {
    const env = fromRecord({ OPTION_A: '5' });
    expect(Object.fromEntries(read(substitutionsDefault, env))).toEqual({ OPTION_A: '5', OPTION_B: '5', OPTION_C: '5', OPTION_D: '5_5', OPTION_E: '' });
    expect(Object.fromEntries(read(substitutionsDefault))).toEqual({ OPTION_A: '1', OPTION_B: '1', OPTION_C: '1', OPTION_D: '1_1', OPTION_E: '' });
  });

  it('TestInheritedEnvVariable* (fixtures/inherited-*.env)', () => {
    const env = fromRecord({ VAR_TO_BE_LOADED_FROM_OS_ENV: 'SOME_RANDOM_VALUE' });
    expect(Object.fromEntries(read('foo=bar\nVAR_TO_BE_LOADED_FROM_OS_ENV\nbar=baz\n', env))).toEqual({
      VAR_TO_BE_LOADED_FROM_OS_ENV: 'SOME_RANDOM_VALUE',
      foo: 'bar',
      bar: 'baz',
    });
    expect(Object.fromEntries(read('VAR_TO_BE_LOADED_FROM_OS_ENV\n', env))).toEqual({ VAR_TO_BE_LOADED_FROM_OS_ENV: 'SOME_RANDOM_VALUE' });
    const asked: string[] = [];
    const notFound = read('VARIABLE_NOT_FOUND\n', (name) => {
      asked.push(name);
      return undefined;
    });
    expect(notFound.has('VARIABLE_NOT_FOUND')).toBe(false);
    expect(asked).toContain('VARIABLE_NOT_FOUND');
  });

  it('TestExpandingEnvironmentWithLookup', () => {
    expect(read('TEST=$ME', (name) => (name === 'ME' ? 'YES' : undefined)).get('TEST')).toBe('YES');
  });

  it('TestMultipleFiles: files read into one map, as GetEnvFromFile does', () => {
    const base = '\nENV_HOSTNAME=localhost\nENV_MY_URL="http://${ENV_HOSTNAME}"\n';
    const override = '\nENV_HOSTNAME=dev.my-company.com\nENV_MY_URL="http://${ENV_HOSTNAME}"\n';
    const getEnvFromFile = (current: Readonly<Record<string, string>>, files: readonly string[]): Record<string, string> => {
      const into = new Map<string, string>();
      for (const text of files) readComposeDotenv(text, { into, lookup: (name) => fromRecord(current)(name) ?? into.get(name) });
      return Object.fromEntries(into);
    };
    expect(getEnvFromFile({}, [base, override])).toEqual({ ENV_HOSTNAME: 'dev.my-company.com', ENV_MY_URL: 'http://dev.my-company.com' });
    expect(getEnvFromFile({ ENV_HOSTNAME: 'host.local' }, [base, override])).toEqual({
      ENV_HOSTNAME: 'dev.my-company.com',
      ENV_MY_URL: 'http://host.local',
    });
  });
});

describe('compose-go dotenv/parser_test.go', () => {
  it('TestParseBytes', () => {
    const input = '\na=b\na[1]=c\na.propertyKey=d\nárvíztűrő-TÜKÖRFÚRÓGÉP=ÁRVÍZTŰRŐ-tükörfúrógép\n';
    expect(Object.fromEntries(read(input))).toEqual({ a: 'b', 'a[1]': 'c', 'a.propertyKey': 'd', 'árvíztűrő-TÜKÖRFÚRÓGÉP': 'ÁRVÍZTŰRŐ-tükörfúrógép' });
  });

  it('TestParseVariable', () => {
    expect(readError('%!(EXTRA string)=foo')).toBe('line 1: unexpected character "%" in variable name "%!(EXTRA string)=foo"');
  });
});

describe('compose-go dotenv/godotenv_var_expansion_test.go', () => {
  const env = fromRecord({ EMPTY_VAR: '', TEST_VAR: 'Test Value' });
  // The Go tests expand the whole `RESULT=…` text as one value: here it is an unquoted value.
  const expand = (text: string): string => read(`X=${text}`, env).get('X')!;
  it.each([
    ['RESULT=${UNSET_VAR:-Default Value}', 'RESULT=Default Value'],
    ['RESULT=${EMPTY_VAR:-Default Value}', 'RESULT=Default Value'],
    ['RESULT=${TEST_VAR:-Default Value}', 'RESULT=Test Value'],
    ['RESULT=${UNSET_VAR-Default Value}', 'RESULT=Default Value'],
    ['RESULT=${EMPTY_VAR-Default Value}', 'RESULT='],
    ['RESULT=${TEST_VAR-Default Value}', 'RESULT=Test Value'],
    ['RESULT=${TEST_VAR:?Default Value}', 'RESULT=Test Value'],
    ['RESULT=${EMPTY_VAR?Test error}', 'RESULT='],
    ['RESULT=${TEST_VAR?Default Value}', 'RESULT=Test Value'],
  ])('%s', (text, expected) => {
    expect(expand(text)).toBe(expected);
  });
  it.each([
    ['RESULT=${UNSET_VAR:?Test error}', 'required variable UNSET_VAR is missing a value: Test error'],
    ['RESULT=${EMPTY_VAR:?Test error}', 'required variable EMPTY_VAR is missing a value: Test error'],
    ['RESULT=${UNSET_VAR?Test error}', 'required variable UNSET_VAR is missing a value: Test error'],
  ])('%s fails', (text, message) => {
    expect(readError(`X=${text}`, env)).toBe(message);
  });
});

describe('compose-go template/template_test.go, through an unquoted value', () => {
  const defaults = fromRecord({ FOO: 'first', BAR: '', JSON: '{"json":2}' });
  const substitute = (template: string, mapping: DotenvLookup = defaults): string => read(`X=${template}`, mapping).get('X')!;
  it.each([
    ['$${foo}', '${foo}'], // TestEscaped
    ['foo', 'foo'], // TestSubstituteNoMatch
    ['a $ string', 'a $ string'], // TestUnescaped
    ['^REGEX$', '^REGEX$'],
    ['$}', '$}'],
    ['$', '$'],
    ['$FOO-bar', 'first-bar'], // TestNonBraced
    ['This ${missing} var', 'This  var'], // TestNoValueNoDefault
    ['This ${BAR} var', 'This  var'],
    ['This $FOO var', 'This first var'], // TestValueNoDefault
    ['This ${FOO} var', 'This first var'],
    ['ok ${missing:-def}', 'ok def'], // TestNoValueWithDefault
    ['ok ${missing-def}', 'ok def'],
    ['${A:+${A},}B', 'B'], // TestLazyDefaultDoesNotWarn
    ['${A:-${B}}', ''], // TestLazyDefaultWarnsWhenUsed
    ['ok ${BAR:-def}', 'ok def'], // TestEmptyValueWithSoftDefault
    ['ok ${FOO:-def}', 'ok first'], // TestValueWithSoftDefault
    ['ok ${BAR-def}', 'ok '], // TestEmptyValueWithHardDefault
    ['ok ${UNSET_VAR:+presence_value}', 'ok '], // TestPresentValueWithUnset
    ['ok ${UNSET_VAR+presence_value}', 'ok '],
    ['ok ${FOO:+presence_value}', 'ok presence_value'], // TestPresentValueWithNonEmpty
    ['ok ${FOO+presence_value}', 'ok presence_value'],
    ['ok ${BAR+presence_value}', 'ok presence_value'], // TestPresentValueWithSet
    ['ok ${BAR:+presence_value}', 'ok '],
    ['ok ${BAR:-/non:-alphanumeric}', 'ok /non:-alphanumeric'], // TestNonAlphanumericDefault
    // TestInterpolationExternalInterference
    ['-ok ${BAR:-defaultValue}', '-ok defaultValue'],
    ['+ok ${UNSET:-${BAR-defaultValue}}', '+ok '],
    ['-ok ${FOO:-defaultValue}', '-ok first'],
    [':-ok ${UNSET-defaultValue}', ':-ok defaultValue'],
    [':-ok ${BAR-defaultValue}', ':-ok '],
    [':?ok ${BAR-defaultValue}', ':?ok '],
    [':?ok ${BAR:-defaultValue}', ':?ok defaultValue'],
    [':+ok ${BAR:-defaultValue}', ':+ok defaultValue'],
    ['+ok ${BAR-defaultValue}', '+ok '],
    ['?ok ${BAR:-defaultValue}', '?ok defaultValue'],
    // TestDefaultsWithNestedExpansion
    ['ok ${UNSET_VAR-$FOO}', 'ok first'],
    ['ok ${UNSET_VAR-${FOO}}', 'ok first'],
    ['ok ${UNSET_VAR-${FOO} ${FOO}}', 'ok first first'],
    ['ok ${BAR:-$FOO}', 'ok first'],
    ['ok ${BAR:-${FOO}}', 'ok first'],
    ['ok ${BAR:-${FOO} ${FOO}}', 'ok first first'],
    ['ok ${BAR+$FOO}', 'ok first'],
    ['ok ${BAR+$FOO ${FOO:+second}}', 'ok first second'],
    // TestDefaultsForMandatoryVariables
    ['ok ${FOO:?err}', 'ok first'],
    ['ok ${FOO?err}', 'ok first'],
    ['ok ${BAR?err}', 'ok '],
    // TestPrecedence
    ['${UNSET_VAR-myerror?msg}', 'myerror?msg'],
    ['${FOO?bar-baz}', 'first'],
    ['${BAR:-default_value_for_empty_var}', 'default_value_for_empty_var'],
    ['${UNSET_VAR-default_value_for_unset_var}', 'default_value_for_unset_var'],
    // TestNoValueWithCurlyBracesDefault, TestValueWithCurlyBracesDefault
    ['ok ${missing:-{"json":1}}', 'ok {"json":1}'],
    ['ok ${missing-{"json":1}}', 'ok {"json":1}'],
    ['ok ${JSON:-{"json":1}}', 'ok {"json":2}'],
    ['ok ${JSON-{"json":1}}', 'ok {"json":2}'],
    // TestSubstituteWithReplacementFunc, last case
    ['ok ${SUBDOMAIN:-redis}.${FOO:?}', 'ok redis.first'],
  ])('%s', (template, expected) => {
    expect(substitute(template)).toBe(expected);
  });

  it('TestLazyRequiredMessageDoesNotWarn', () => {
    expect(substitute('${A?${B}}', (name) => (name === 'A' ? 'value' : undefined))).toBe('value');
  });

  it.each(['${', '${}', '${ }', '${ foo}', '${foo }', '${foo!}'])('TestInvalid %j', (template) => {
    expect(readError(`X=${template}`, defaults)).toContain('Invalid template');
  });

  it.each([
    ['not ok ${UNSET_VAR:?Mandatory Variable Unset}', 'required variable UNSET_VAR is missing a value: Mandatory Variable Unset'],
    ['not ok ${BAR:?Mandatory Variable Empty}', 'required variable BAR is missing a value: Mandatory Variable Empty'],
    ['not ok ${UNSET_VAR:?}', 'required variable UNSET_VAR is missing a value'],
    ['not ok ${UNSET_VAR?Mandatory Variable Unset}', 'required variable UNSET_VAR is missing a value: Mandatory Variable Unset'],
    ['not ok ${UNSET_VAR?}', 'required variable UNSET_VAR is missing a value'],
    ['not ok ${UNSET_VAR:?Mandatory Variable ${FOO}}', 'required variable UNSET_VAR is missing a value: Mandatory Variable first'],
    ['not ok ${UNSET_VAR?Mandatory Variable ${FOO}}', 'required variable UNSET_VAR is missing a value: Mandatory Variable first'],
    ['${UNSET_VAR?bar-baz}', 'required variable UNSET_VAR is missing a value: bar-baz'],
  ])('TestMandatoryVariableErrors %s', (template, message) => {
    expect(readError(`X=${template}`, defaults)).toBe(message);
  });
});

describe('edge cases, expected values as compose-go gives them', () => {
  const lookup = fromRecord({ ſ: 'long s' });
  it.each([
    ['octal escapes need three digits up to 255', String.raw`K="\0400|\0377|\01|\0|\0000x|\0128|\c"`, { K: '\\400|ÿ|\\1|\\|\0x|\\128|\\c' }],
    ['U+0085 is white space before a name', '\u0085K=1', { K: '1' }],
    ['U+00A0 and U+2028 end an unquoted value as white space', 'K=a\u00a0 \u2028', { K: 'a' }],
    ['names fold case as Unicode does', 'K=${ſ}', { K: 'long s' }],
    ['a default runs to the last brace of the line', 'K="${X:-a}}"', { K: 'a}' }],
    ['a brace inside a default', 'K=${X:-{x}', { K: '{x' }],
    ['the brace count skips the character after each {', 'K=${X:-{}a}b}', { K: '{}a}b' }],
    ['a default may hold a CR', 'K=${X:-\r}', { K: '\r' }],
    ['an escaped backslash in single quotes stays two characters', String.raw`K='a\\'`, { K: 'a\\\\' }],
    ['export followed by a line break', 'export\nK=1', { K: '1' }],
    ['text after a closing quote starts the next variable', 'K="x"y=2', { K: 'x', y: '2' }],
    ['a tab inside a name is kept', 'K\tX=1', { 'K\tX': '1' }],
  ])('%s', (_what, text, expected) => {
    expect(Object.fromEntries(read(text, lookup))).toEqual(expected);
  });
  it.each([
    ['a BOM that does not open the file', 'A=1\n\uFEFFB=2', 'line 2: unexpected character "\\ufeff" in variable name "\\ufeffB=2"'],
    ['an unescaped quote ends a double-quoted value', String.raw`K="a\\"b"`, 'line 1: unexpected character "\\"" in variable name "b\\""'],
  ])('%s is refused', (_what, text, message) => {
    expect(readError(text)).toBe(message);
  });
});

/** Values that each break some way of writing a .env file. */
const NASTY: readonly (readonly [string, string])[] = [
  ['trailing backslash', 'C:\\'],
  ['two trailing backslashes', 'a\\\\'],
  ['a lone backslash', '\\'],
  ['backslash then n', '\\n'],
  ['backslash then quote', '\\"'],
  ['backslash then dollar', '\\$X'],
  ['octal-looking escape', '\\0123'],
  ['default expansion', '${X:-y}'],
  ['required expansion', '${X:?boom}'],
  ['braced variable', '${X}'],
  ['named variable', '$X'],
  ['doubled dollar', '$$'],
  ['dollar at the end', 'cost 5$'],
  ['unclosed brace', '${'],
  ['hash after a space', 'a #b'],
  ['hash alone', '#'],
  ['double quotes', 'say "hi"'],
  ['a lone double quote', '"'],
  ['single quotes', "it's 'quoted'"],
  ['a lone single quote', "'"],
  ['backticks', '`id`'],
  ['tabs', '\ta\tb\t'],
  ['multi-line LF', 'line1\nline2\n'],
  ['multi-line CRLF', 'line1\r\nline2\r\n'],
  ['lone CR', 'a\rb'],
  ['unicode', 'héllo wörld ✓ 日本 😀'],
  ['unicode spaces', '\u00a0\u0085\u2028\u3000'],
  ['BOM inside', '\uFEFFx'],
  ['empty', ''],
  ['spaces at both ends', '  padded  '],
  ['equals signs', 'a=b=c'],
  ['colon and equals', 'key: value=1'],
  ['export prefix', 'export X=1'],
  ['looks like a next line', 'x"\nB="y'],
  ['control characters', '\x07\b\f\v\x1b'],
  ['shell metacharacters', '$(rm -rf /); `x` && y || z'],
];

/** A lookup that answers every name, so any interpolation would show in the value read back. */
const INJECTING: DotenvLookup = () => 'INJECTED';

function roundTrip(vars: readonly DotenvVariable[]): Map<string, string> {
  return readComposeDotenv(renderDotenv(vars, 'generated by confhub'), { lookup: INJECTING });
}

describe('renderDotenv reads back exactly through compose rules', () => {
  it.each(NASTY)('%s', (_what, value) => {
    const vars = [
      { name: 'BEFORE', value: 'x' },
      { name: 'X', value },
      { name: 'AFTER', value: 'y' },
    ];
    expect([...roundTrip(vars)]).toEqual(vars.map(({ name, value }) => [name, value]));
  });

  it('all the nasty values in one file, in order', () => {
    const vars = NASTY.map(([, value], i) => ({ name: `V_${i}`, value }));
    expect([...roundTrip(vars)]).toEqual(vars.map(({ name, value }) => [name, value]));
  });

  const arbitraryValue = fc
    .oneof(
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.string({ unit: 'grapheme', maxLength: 40 }),
      fc
        .array(fc.constantFrom(...NASTY.map(([, value]) => value), '\\', '"', '$', '{', '}', ' ', '\n', '\r', 'a'), { maxLength: 12 })
        .map((parts) => parts.join('')),
    )
    .filter((value) => !value.includes('\0') && !hasLoneSurrogate(value));
  const arbitraryVars = fc.uniqueArray(fc.record({ name: fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,15}$/), value: arbitraryValue }), {
    maxLength: 6,
    selector: (variable) => variable.name.toUpperCase(),
  });

  it('property: any variables without NUL or lone surrogates read back exactly', () => {
    fc.assert(
      fc.property(arbitraryVars, (vars) => {
        expect([...roundTrip(vars)]).toEqual(vars.map(({ name, value }) => [name, value]));
      }),
      { numRuns: 500 },
    );
  });
});

describe('the writer', () => {
  it('writes the rule: double quotes, \\ " LF CR escaped, $ doubled, the rest verbatim', () => {
    expect(quoteDotenvValue('a\\b"c\nd\re$f\tg\'h#i é')).toBe('"a\\\\b\\"c\\nd\\re$$f\tg\'h#i é"');
    // A final backslash in octal, so that no `\\"` ends the value (see the module comment).
    expect(quoteDotenvValue('C:\\')).toBe('"C:\\0134"');
    expect(quoteDotenvValue('\\\\')).toBe('"\\\\\\0134"');
    expect(quoteDotenvValue('\\"')).toBe('"\\\\\\""');
    expect(dotenvLine('NAME', '${X:-y}')).toEqual({ ok: true, line: 'NAME="$${X:-y}"' });
    expect(dotenvLine('EMPTY', '')).toEqual({ ok: true, line: 'EMPTY=""' });
  });

  it('writes the header as comments, one line per variable, LF and a final line break', () => {
    const text = renderDotenv(
      [
        { name: 'A', value: '1' },
        { name: 'b_2', value: 'two words' },
      ],
      'generated by confhub\r\n\nsecond line',
    );
    expect(text).toBe('# generated by confhub\n#\n# second line\nA="1"\nb_2="two words"\n');
    expect(renderDotenv([])).toBe('');
    expect(readComposeDotenv(text)).toEqual(
      new Map([
        ['A', '1'],
        ['b_2', 'two words'],
      ]),
    );
  });

  it('refuses what no environment variable can hold, naming the variable and never the value', () => {
    expect(dotenvLine('A', 'se\0cret')).toEqual({ ok: false, problem: 'A holds a NUL character, which no environment variable can' });
    const surrogate = dotenvLine('B', 'se\uD800cret');
    expect(surrogate.ok).toBe(false);
    expect(!surrogate.ok && surrogate.problem).toMatch(/^B holds half of a UTF-16 surrogate pair/);
    expect(dotenvLine('C', 'ok \uD83D\uDE00').ok).toBe(true);
  });

  it('refuses names outside the product grammar, duplicates and case clashes', () => {
    expect(dotenvLine('1A', 'x').ok).toBe(false);
    expect(dotenvLine('A B', 'x').ok).toBe(false);
    expect(dotenvLine('A-B', 'x').ok).toBe(false);
    expect(dotenvLine('', 'x').ok).toBe(false);
    expect(dotenvLine('A'.repeat(256), 'x').ok).toBe(true);
    expect(dotenvLine('A'.repeat(257), 'x').ok).toBe(false);
    expect(
      dotenvProblems([
        { name: 'A', value: '1' },
        { name: 'A', value: '2' },
        { name: 'Path', value: '3' },
        { name: 'PATH', value: '4' },
      ]),
    ).toEqual(['A is given twice', 'Path and PATH differ only in case']);
  });

  it('renderDotenv throws one RENDER_FAILED listing every problem, without values', () => {
    let thrown: unknown;
    try {
      renderDotenv([
        { name: 'SECRET_ONE', value: 'hunter2\0' },
        { name: '9BAD', value: 'hunter3' },
        { name: 'OK', value: 'fine' },
      ]);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(AppError);
    expect((thrown as AppError).code).toBe('RENDER_FAILED');
    const details = (thrown as AppError).details;
    expect(details).toContain('SECRET_ONE holds a NUL character');
    expect(details).toContain('"9BAD" is not a variable name');
    expect(details).not.toMatch(/hunter|fine/);
  });
});
