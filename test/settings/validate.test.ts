import { describe, expect, it } from 'vitest';
import { parseIni, serializeIni } from '../../src/ini/document.js';
import { weakPasswordReason } from '../../src/settings/credential-strength.js';
import { FIELD_KINDS } from '../../src/settings/field-kinds.js';
import { planChanges } from '../../src/settings/plan-changes.js';
import { CONFIG_SCHEMA } from '../../src/settings/schema.js';
import { validateDocument } from '../../src/settings/validate.js';
import { AppError } from '../../src/core/errors.js';

const base = `[gitea]
user_name = websoft9
user_email = a@b.co
user_pwd = short
[cockpit]
port = 9090
[nginx_proxy_manager]
listen_port = 9000
`;

function planError(fn: () => unknown): AppError {
  try {
    fn();
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error('expected an AppError');
}

describe('credential strength', () => {
  it.each([
    ['Ab1-short', 'must be at least 12 characters long'],
    ['Password1234', 'is a commonly used password'],
    ['aaaaaaaaaaaaaaab', 'must use at least 5 different characters'],
    ['qwertyuiopas', 'is a commonly used password'],
    ['6789012345678', 'is a keyboard or alphabet sequence'],
    ['fedcbazyxwvut', 'is a keyboard or alphabet sequence'],
  ])('when the password is %s, then it is refused: %s', (password, reason) => {
    expect(weakPasswordReason({ password })).toBe(reason);
  });

  it('when the password equals the user name in another case, then it is refused', () => {
    expect(weakPasswordReason({ password: 'Gitea-Admin-01', userName: 'gitea-admin-01' })).toBe('must not be the user name');
  });

  it('when the password is long and varied, then it is accepted', () => {
    expect(weakPasswordReason({ password: 'k3#Vd9;q`Lm2', userName: 'websoft9' })).toBeUndefined();
  });
});

describe('field kinds', () => {
  it.each([
    ['port', '65535', undefined],
    ['port', '0', 'must be an integer from 1 to 65535'],
    ['port', '08080x', 'must be an integer from 1 to 65535'],
    ['http_url', 'https://example.com/api', undefined],
    ['http_url', 'javascript:alert(1)', 'must be an http:// or https:// URL'],
    ['hostname', '*.apps.example.com', undefined],
    ['hostname', 'bad_host', 'must be a domain name such as example.com'],
    ['url_list', 'https://a.example,https://b.example', undefined],
    ['url_list', 'https://a.example,,https://b.example', 'must not contain empty list items'],
    ['name_list', 'wordpress,gitea', undefined],
    ['name_list', 'WordPress', '"WordPress": must be a lowercase application name'],
    ['boolean', 'Yes', undefined],
    ['boolean', 'maybe', 'must be true or false'],
    ['abs_path', '/data/../etc', 'must not contain ".." segments'],
    ['ipv4', '172.17.0.256', 'must be an IPv4 address'],
  ] as const)('when a %s is %s, then the check says %s', (kind, text, problem) => {
    expect(FIELD_KINDS[kind].check(text)).toBe(problem);
  });

  it('when JSON inputs are converted, then lists join, integers pass and floats and objects are refused', () => {
    expect(FIELD_KINDS.name_list.fromJson(['a', ' b '])).toEqual({ ok: true, text: 'a,b' });
    expect(FIELD_KINDS.port.fromJson(8080)).toEqual({ ok: true, text: '8080' });
    expect(FIELD_KINDS.port.fromJson(80.5).ok).toBe(false);
    expect(FIELD_KINDS.text.fromJson({ a: 1 }).ok).toBe(false);
    expect(FIELD_KINDS.boolean.toJson('on')).toBe(true);
  });
});

describe('whole-document validation', () => {
  it('when an untouched stored password is weak, then an unrelated change is still accepted', () => {
    const doc = parseIni(base);
    expect(validateDocument({ doc, schema: CONFIG_SCHEMA })).toEqual([]);
    const plan = planChanges({ doc, inputs: [{ section: 'cockpit', key: 'port', value: 9091 }], schema: CONFIG_SCHEMA });
    expect(plan.changes).toEqual([{ section: 'cockpit', key: 'port', oldValue: '9090', newValue: '9091' }]);
  });

  it('when the user name is changed to the stored password, then the password is flagged', () => {
    const doc = parseIni(base.replace('user_pwd = short', 'user_pwd = Same-As-Name-1'));
    const error = planError(() => planChanges({ doc, inputs: [{ section: 'gitea', key: 'user_name', value: 'same-as-name-1' }], schema: CONFIG_SCHEMA }));
    expect(error.data.errors).toEqual([expect.objectContaining({ field: 'gitea.user_pwd', code: 'WEAK_PASSWORD' })]);
  });

  it('when several fields fail, then every one is reported in one error', () => {
    const doc = parseIni(base);
    const error = planError(() =>
      planChanges({
        doc,
        inputs: [
          { section: 'cockpit', key: 'port', value: 9000 },
          { section: 'gitea', key: 'user_email', value: 'nope' },
          { section: 'gitea', key: 'user_pwd', value: 'short' },
        ],
        schema: CONFIG_SCHEMA,
      }),
    );
    expect(error.code).toBe('VALIDATION_FAILED');
    const codes = (error.data.errors ?? []).map((e) => `${e.field}:${e.code}`).sort();
    expect(codes).toEqual([
      'cockpit.port:PORT_CONFLICT',
      'gitea.user_email:INVALID_EMAIL',
      'gitea.user_pwd:WEAK_PASSWORD',
      'nginx_proxy_manager.listen_port:PORT_CONFLICT',
    ]);
  });

  it('when a key is given twice in one request in different case, then it is refused', () => {
    const error = planError(() =>
      planChanges({
        doc: parseIni(base),
        inputs: [
          { section: 'gitea', key: 'user_name', value: 'a' },
          { section: 'gitea', key: 'USER_NAME', value: 'b' },
        ],
        schema: CONFIG_SCHEMA,
      }),
    );
    expect(error.code).toBe('INVALID_REQUEST');
  });

  it('when a key is written in another case than the file spells it, then the file keeps its spelling', () => {
    const plan = planChanges({
      doc: parseIni('[gitea]\nUser_Name = x\n'),
      inputs: [{ section: 'gitea', key: 'user_name', value: 'y' }],
      schema: CONFIG_SCHEMA,
    });
    expect(serializeIni(plan.doc)).toBe('[gitea]\nUser_Name = y\n');
  });
});
