/**
 * The pieces under the env API: how a value is stored in config.ini (any text without NUL reads
 * back exactly), how hand-edited env sections are judged, the declarations of system.ini, and a
 * consumer's environment (global ∪ mapped ∪ own).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/core/errors.js';
import { environmentOf, variablesAt } from '../../src/env/environment.js';
import { parseIni, serializeIni, editIni } from '../../src/ini/document.js';
import { loadRuntimeConfig } from '../../src/runtime-config.js';
import { decodeEnvValue, encodeEnvValue, envValueProblem, looksSecret } from '../../src/settings/env-sections.js';
import { CONFIG_SCHEMA, isSensitive } from '../../src/settings/schema.js';
import { validateDocument } from '../../src/settings/validate.js';
import { parseSyncConfig } from '../../src/targets/target-spec.js';

const base = { dataDir: '/srv/data', configDir: '/srv/data/config', own: loadRuntimeConfig({ CONFHUB_DATA_DIR: '/srv/data' }, '/').ownPaths };
const declarations = (text: string) => parseSyncConfig({ ...base, doc: parseIni(text) }).env;

function failure(text: string): string {
  try {
    declarations(text);
  } catch (error) {
    if (error instanceof AppError && error.code === 'TARGET_INVALID') return error.message;
    throw error;
  }
  throw new Error('expected TARGET_INVALID');
}

describe('env values in config.ini', () => {
  it('when any text without NUL or half a surrogate pair is stored, then config.ini reads it back exactly', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 60 }), fc.string({ unit: 'binary', maxLength: 40 }), (a, b) => {
        const value = a + b;
        fc.pre(envValueProblem(value) === undefined);
        const doc = editIni(parseIni('[env:global]\n'), [{ section: 'env:global', key: 'V', value: encodeEnvValue(value) }]);
        const read = parseIni(serializeIni(doc)).byName.get('env:global')!.byKey.get('v')!.value;
        expect(decodeEnvValue(read)).toBe(value);
      }),
      { numRuns: 500 },
    );
  });

  it('when a value fits the file format, then it is stored as typed; otherwise as json: and its JSON string', () => {
    expect(encodeEnvValue('Asia/Shanghai')).toBe('Asia/Shanghai');
    expect(encodeEnvValue('line one\nline two')).toBe('line one\nline two');
    expect(encodeEnvValue(' padded')).toBe('json:" padded"');
    expect(encodeEnvValue('a\r\nb')).toBe('json:"a\\r\\nb"');
    expect(encodeEnvValue('json:x')).toBe('json:"json:x"');
    expect(encodeEnvValue('del\u007f')).toBe('json:"del\\u007f"');
    expect(envValueProblem('a\0b')).toMatch(/NUL/);
    expect(envValueProblem('\ud800')).toMatch(/surrogate/);
  });

  it('when names look secret, then they are sensitive in either section; every key of a :secret section is', () => {
    for (const name of [
      'DB_PASSWORD',
      'PASSWD',
      'API_KEY',
      'KEY',
      'GITHUB_TOKEN',
      'AWS_SECRET_ACCESS_KEY',
      'SMTP_PWD',
      'CREDENTIALS',
      'SSH_PRIVATE',
      'APIKEY',
    ]) {
      expect(looksSecret(name), name).toBe(true);
      expect(isSensitive(CONFIG_SCHEMA, 'env:global', name), name).toBe(true);
    }
    for (const name of ['TZ', 'KEYBOARD', 'MONKEY_ISLAND', 'PATH', 'HOME']) expect(looksSecret(name), name).toBe(false);
    expect(isSensitive(CONFIG_SCHEMA, 'env:web:secret', 'TZ')).toBe(true);
    expect(isSensitive(CONFIG_SCHEMA, 'env:web', 'TZ')).toBe(false);
  });

  it('when a json: value does not parse, then the problem never quotes it (it may be a secret)', () => {
    const doc = parseIni('[env:global:secret]\nBADJSON = json:Hand-Typed-Secret-999\n');
    const issues = validateDocument({ doc, schema: CONFIG_SCHEMA });
    expect(issues.map((issue) => issue.code)).toEqual(['INVALID_ENV_VALUE']);
    expect(JSON.stringify(issues)).not.toContain('Hand-Typed');
  });

  it('when hand-edited env sections meet the declarations of system.ini, then an undeclared scope, a mapped name and a name two ways are named', () => {
    const envDeclarations = declarations('[env:web]\nWEB_PORT = {{ cockpit.port }}\n');
    const doc = parseIni('[env:global]\nfoo = 1\n[env:web]\nFOO = 2\nweb_port = 3\n[env:nobody]\nX = 1\n');
    expect(validateDocument({ doc, schema: CONFIG_SCHEMA, envDeclarations }).map((issue) => [issue.field, issue.code])).toEqual([
      ['env:web.foo', 'ENV_NAME_CASE'],
      ['env:web.web_port', 'ENV_MAPPED'],
      ['env:nobody', 'INVALID_ENV_SCOPE'],
    ]);
    expect(validateDocument({ doc, schema: CONFIG_SCHEMA })).toEqual([]);
  });

  it('when env sections are edited by hand, then bad scopes, names, values and a name in both sections are each named', () => {
    const doc = parseIni(
      '[env:global]\nGOOD = 1\n1BAD = x\nBROKEN = json:"unterminated\nNOT_A_STRING = json:5\nBOTH = a\n[env:global:secret]\nboth = b\n[env:bad scope!]\nX = 1\n',
    );
    const issues = validateDocument({ doc, schema: CONFIG_SCHEMA }).map((issue) => [issue.field, issue.code]);
    expect(issues).toEqual([
      ['env:global.1bad', 'INVALID_ENV_NAME'],
      ['env:global.broken', 'INVALID_ENV_VALUE'],
      ['env:global.not_a_string', 'INVALID_ENV_VALUE'],
      ['env:global.both', 'ENV_NAME_CLASH'],
      ['env:bad scope!', 'INVALID_ENV_SCOPE'],
    ]);
  });
});

describe('env declarations in system.ini', () => {
  it('when consumers are declared by targets and [env:NAME] sections, then they are listed with their mapped variables', () => {
    const env = declarations(
      '[env:gitea]\nGITEA__server__ROOT_URL = {{ gitea.base_url }}/\nGITEA_ADMIN = {{gitea.user_name}}\n\n[target:compose]\nenv = portainer\nformat = env\noutput = services/p.env\n',
    );
    expect(env.consumers).toEqual(['gitea', 'portainer']);
    expect(env.mapped.get('gitea')!.map((v) => [v.name, v.placeholders])).toEqual([
      ['GITEA__server__ROOT_URL', ['gitea.base_url']],
      ['GITEA_ADMIN', ['gitea.user_name']],
    ]);
  });

  it('when a declaration is wrong, then start-up names its section and key', () => {
    expect(failure('[env:gitea]\n1BAD = {{ gitea.base_url }}\n')).toBe(
      'system.ini [env:gitea] 1BAD: the name must start with a letter or "_" and hold only letters, digits and "_"',
    );
    expect(failure('[env:gitea]\nX = {{ gitea.base_url\n')).toMatch(/^system.ini \[env:gitea\] X: line 1: "\{\{" without a closing/);
    expect(failure('[env:gitea]\nX = fixed\n')).toMatch(/^system.ini \[env:gitea\] X: names no \{\{ section.key \}\}/);
    expect(failure('[env:global]\nX = {{ a.b }}\n')).toMatch(/^system.ini \[env:global\]: mapped variables are declared per consumer/);
    expect(failure('[env:gitea:secret]\nX = {{ a.b }}\n')).toMatch(/^system.ini \[env:gitea:secret\]: /);
    expect(failure('[target:x]\nenv = bad name!\nformat = env\noutput = services/x\n')).toMatch(
      /^system.ini \[env:bad name!\]: a scope is global or a consumer name/,
    );
    expect(failure('[target:x]\nenv = web\nformat = json\noutput = services/x\n')).toMatch(
      /^system.ini \[target:x\] env: format json does not deliver an environment/,
    );
    expect(failure('[target:x]\nenv = web\nsections = a\nformat = env\noutput = services/x\n')).toMatch(/^system.ini \[target:x\] sections: a target with env/);
    expect(failure('[target:x]\nsections = env:global:secret\nformat = ini\noutput = services/x\n')).toMatch(
      /^system.ini \[target:x\] sections: env:global:secret holds environment variables/,
    );
  });
});

describe("a consumer's environment", () => {
  const env = declarations(
    '[env:web]\nWEB_URL = http://{{ cockpit.listen_ip }}:{{ cockpit.port }}\nWEB_PASS = {{ gitea.user_pwd }}\nBROKEN = {{ nowhere.key }}\n',
  );
  const doc = parseIni(
    '[cockpit]\nport = 9090\nlisten_ip = 10.0.0.1\n[gitea]\nuser_pwd = s3cret-Value\n[env:global]\nTZ = UTC\nSHARED = global\n[env:web]\nSHARED = own\n[env:web:secret]\nTOKEN_X = t\n',
  );

  it('when it is computed, then global, mapped and its own variables are merged in that order, with their source and secrecy', () => {
    const { variables, problems } = environmentOf({ doc, schema: CONFIG_SCHEMA, declarations: env, consumer: 'web' });
    expect(Object.fromEntries(variables)).toEqual({
      TZ: { value: 'UTC', secret: false, source: 'config.ini', scope: 'global' },
      SHARED: { value: 'own', secret: false, source: 'config.ini', scope: 'web' },
      WEB_URL: { value: 'http://10.0.0.1:9090', secret: false, source: 'mapped:cockpit.listen_ip,cockpit.port', scope: 'web' },
      WEB_PASS: { value: 's3cret-Value', secret: true, source: 'mapped:gitea.user_pwd', scope: 'web' },
      TOKEN_X: { value: 't', secret: true, source: 'config.ini', scope: 'web' },
    });
    expect(problems).toEqual(['[env:web] BROKEN: unknown placeholders nowhere.key']);
    expect([...variablesAt({ doc, schema: CONFIG_SCHEMA, declarations: env, consumer: 'web' }).variables.keys()]).toEqual([
      'WEB_URL',
      'WEB_PASS',
      'SHARED',
      'TOKEN_X',
    ]);
    expect([...environmentOf({ doc, schema: CONFIG_SCHEMA, declarations: env, consumer: 'global' }).variables.keys()]).toEqual(['TZ', 'SHARED']);
  });
});
