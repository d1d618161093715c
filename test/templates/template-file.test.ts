// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config.ini's `${section:key}` references are the subject of some strings, kept as literal text.
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/core/errors.js';
import { instantiateTemplate, parseTemplate, type Template, templateNameProblem } from '../../src/templates/template-file.js';

/** A valid template; line numbers in the tests below count from its first line. */
const VALID = `# a comment
[template]
title = Public domain
description = Serve the apps on a domain.

[variable:domain]
type = hostname
required = true
description = The domain

[variable:https_port]
type = port
default = 443
description = The port

[domain]
wildcard_domain = *.{{ domain }}

[nginx_proxy_manager]
listen_port = {{https_port}}
`;

function parseError(text: string, name = 'sample'): AppError {
  try {
    parseTemplate({ name, text, origin: 'custom' });
  } catch (error) {
    if (error instanceof AppError) return error;
    throw error;
  }
  throw new Error('expected the template to be refused');
}

function template(text: string): Template {
  return parseTemplate({ name: 'sample', text, origin: 'shipped' });
}

describe('parsing a template file', () => {
  it('when the file is valid, then its header, variables with their defaults and the sections with 1-based lines are read', () => {
    const parsed = template(VALID);
    expect(parsed).toEqual({
      name: 'sample',
      origin: 'shipped',
      title: 'Public domain',
      description: 'Serve the apps on a domain.',
      variables: [
        { name: 'domain', kind: 'hostname', required: true, secret: false, description: 'The domain' },
        { name: 'https_port', kind: 'port', required: false, secret: false, default: '443', description: 'The port' },
      ],
      sections: [
        { name: 'domain', entries: [{ key: 'wildcard_domain', value: '*.{{ domain }}', line: 17 }] },
        { name: 'nginx_proxy_manager', entries: [{ key: 'listen_port', value: '{{https_port}}', line: 20 }] },
      ],
    });
    expect(Object.isFrozen(parsed.sections[0]!.entries)).toBe(true);
  });

  it('when a variable omits type and secret, then it is text and not secret; a variable of type secret is secret', () => {
    const parsed = template(
      '[template]\ntitle = t\ndescription = d\n[variable:note]\ndescription = n\n[variable:pw]\ntype = secret\ndescription = p\n[a]\nk = {{ note }} {{ pw }}\n',
    );
    expect(parsed.variables.map((v) => [v.name, v.kind, v.secret, v.required])).toEqual([
      ['note', 'text', false, false],
      ['pw', 'secret', true, false],
    ]);
  });

  it.each([
    ['an INI syntax error', '[template]\ntitle = t\ndescription = d\nnot a key line\n', 4, 'expected "key = value"'],
    ['a duplicate key', '[template]\ntitle = t\ntitle = u\n', 3, 'duplicate key "title"'],
    ['an unknown [template] key', VALID.replace('title = Public domain', 'title = Public domain\nauthor = me'), 4, '[template] has no key "author"'],
    ['a missing title', VALID.replace('title = Public domain\n', ''), 2, '[template] needs a title'],
    ['an empty description', VALID.replace('description = Serve the apps on a domain.', 'description ='), 4, '[template] needs a description'],
    ['a title on two lines', VALID.replace('title = Public domain', 'title = Public\n  domain'), 3, 'title must be a single line'],
    ['a bad variable name', VALID.replace('[variable:https_port]', '[variable:HTTPS]'), 11, 'variable name "HTTPS" must be'],
    ['an unknown variable key', VALID.replace('type = port', 'type = port\nmin = 1'), 13, '[variable:https_port] has no key "min"'],
    ['an unknown type', VALID.replace('type = port', 'type = number'), 12, 'type "number" is not one of text, secret, port'],
    ['a required flag that is not true or false', VALID.replace('required = true', 'required = yes'), 8, 'required must be true or false'],
    [
      'a required variable with a default',
      VALID.replace('required = true', 'required = true\ndefault = example.com'),
      9,
      'variable domain is required and has a default',
    ],
    ['a default its kind refuses', VALID.replace('default = 443', 'default = 70000'), 13, 'the default of https_port must be an integer from 1 to 65535'],
    ['a variable without a description', VALID.replace('description = The port\n', ''), 11, '[variable:https_port] needs a description'],
    [
      'a secret type declared not secret',
      VALID.replace('type = port\ndefault = 443', 'type = secret\nsecret = false'),
      13,
      'a variable of type secret is always secret',
    ],
    ['a placeholder naming no variable', VALID.replace('{{https_port}}', '{{https_port}} {{ http_port }}'), 20, '{{ http_port }} names no declared variable'],
    ['a placeholder with a dotted name', VALID.replace('{{https_port}}', '{{https_port}}{{ gitea.port }}'), 20, '{{ gitea.port }} names no declared variable'],
    ['an unused variable', VALID.replace('{{https_port}}', '9000'), 11, 'variable https_port is used by no value'],
    ['an unclosed placeholder', VALID.replace('*.{{ domain }}', '*.{{ domain }} and {{ x'), 17, '"{{" without a closing "}}"'],
    ['an env section', `${VALID}[env:global]\nTOKEN = x\n`, 21, 'environment variables are set through the env API'],
    [
      'an environment overlay section',
      `${VALID}[domain@prod]\nwildcard_domain = x\n`,
      21,
      '[domain@prod]: a template sets the base settings, not an environment overlay',
    ],
    ['a section name outside the allow-list', `${VALID}[__proto__]\nx = 1\n`, 21, 'Section name "__proto__" is not allowed'],
    ['a key name outside the allow-list', VALID.replace('listen_port =', 'listen port ='), 20, 'Key name "listen port" must be'],
    ['a section that sets nothing', `${VALID}[cockpit]\n`, 21, '[cockpit] sets no key'],
  ])('when the file has %s, then TEMPLATE_INVALID names the file and the line of the problem', (_, text, line, message) => {
    const error = parseError(text);
    expect(error.code).toBe('TEMPLATE_INVALID');
    expect(error.status).toBe(500);
    expect(error.data.line).toBe(line);
    expect(error.data.template).toBe('sample');
    expect(error.details).toContain(`sample.ini line ${line}: `);
    expect(error.details).toContain(message);
  });

  it('when the line of an unclosed placeholder is on a continuation line, then that line is named', () => {
    const error = parseError(VALID.replace('listen_port = {{https_port}}', 'listen_port = {{https_port}}\n\n  {{ oops'));
    expect(error.details).toContain('sample.ini line 22: "{{" without a closing');
  });

  it('when there is no [template] section or no settings section, then the file is named without a line', () => {
    expect(parseError('[a]\nk = v\n').details).toBe('sample.ini: there is no [template] section with the title and description');
    expect(parseError('[template]\ntitle = t\ndescription = d\n').details).toBe('sample.ini: the template sets no config.ini section');
  });

  it('when a file has several problems, then each is named with its line, in line order', () => {
    const error = parseError(VALID.replace('type = port', 'type = nope').replace('{{ domain }}', '{{ domian }}'));
    expect(error.details).toBe(
      'sample.ini line 6: variable domain is used by no value: write {{ domain }} where it goes, or remove it; ' +
        'sample.ini line 12: type "nope" is not one of text, secret, port, http_url, email, boolean, abs_path, ipv4, hostname, url_list, name_list, api_key; ' +
        'sample.ini line 17: {{ domian }} names no declared variable ([variable:domian])',
    );
    expect(error.data.line).toBe(6);
  });

  it('when a file has more than 20 problems, then the first 20 are listed and the rest counted', () => {
    const keys = Array.from({ length: 25 }, (_, i) => `k${i} = 1`).join('\n');
    const error = parseError(VALID.replace('title = Public domain', `title = Public domain\n${keys}`));
    expect(error.details.split('; ')).toHaveLength(21);
    expect(error.details).toContain('sample.ini line 23: [template] has no key "k19"');
    expect(error.details).not.toContain('"k20"');
    expect(error.details.endsWith('sample.ini: 5 more problems')).toBe(true);
  });

  it('when a secret default fails its kind check, then the default is not quoted', () => {
    const text = VALID.replace('[domain]', '[variable:mirrors]\ntype = url_list\nsecret = true\ndefault = hunter2-secret\ndescription = m\n\n[domain]').replace(
      '*.{{ domain }}',
      '*.{{ domain }}{{ mirrors }}',
    );
    const error = parseError(text);
    expect(error.details).toContain('line 19: the default of mirrors is not a valid url_list');
    expect(error.details).not.toContain('hunter2');
    // The same default on a variable that is not secret is quoted, as the kind's check says it.
    expect(parseError(text.replace('secret = true\n', '')).details).toContain('"hunter2-secret": must be an http:// or https:// URL');
  });

  it('when "{{{{" is written, then it is a literal "{{" and no placeholder', () => {
    const parsed = template(VALID.replace('{{https_port}}', '{{https_port}}{{{{ domain }}'));
    expect(parsed.sections[1]!.entries[0]!.value).toBe('{{https_port}}{{{{ domain }}');
    expect(parseError(VALID.replace('*.{{ domain }}', '*.{{{{ domain }}')).details).toContain('line 6: variable domain is used by no value');
  });

  it('when the name is not a template name, then it is refused before the text is read', () => {
    expect(parseError(VALID, 'Bad_Name').details).toBe(
      'Bad_Name.ini: template name "Bad_Name" must be 1-64 lowercase letters, digits or "-", starting with a letter or digit',
    );
  });
});

describe('template names', () => {
  it.each(['public-https', 'a', '0mirror', 'x'.repeat(64)])('when the name is %s, then it is valid', (name) => {
    expect(templateNameProblem(name)).toBeUndefined();
  });
  it.each(['', '-a', 'A', 'a_b', 'a.b', 'x'.repeat(65), '../a', 'a\nb'])('when the name is %j, then it is refused', (name) => {
    expect(templateNameProblem(name)).toMatch(/^template name ".*" must be/);
  });
});

describe('instantiating a template', () => {
  const withSecret = template(
    `${VALID}[variable:password]\ntype = secret\ndescription = p\n[variable:mirrors]\ntype = url_list\ndefault = https://m.example\ndescription = m\n` +
      `[variable:note]\ndescription = n\n[portainer]\nuser_pwd = {{ password }}\n[docker_mirror]\nurl = {{ mirrors }}\n[console]\ntitle = {{{{ {{ note }} }} \${console:port}\n`,
  );

  it('when every variable is given, then the placeholders are filled in the file order, "{{{{" is "{{" and ${...} references are kept', () => {
    const result = instantiateTemplate({
      template: withSecret,
      variables: { domain: 'example.com', https_port: 8443, password: 's3cret-Value!', mirrors: ['https://a.example', ' https://b.example '], note: 'hi' },
    });
    expect(result).toEqual({
      changes: [
        { section: 'domain', key: 'wildcard_domain', value: '*.example.com' },
        { section: 'nginx_proxy_manager', key: 'listen_port', value: '8443' },
        { section: 'portainer', key: 'user_pwd', value: 's3cret-Value!' },
        { section: 'docker_mirror', key: 'url', value: 'https://a.example,https://b.example' },
        { section: 'console', key: 'title', value: '{{ hi }} ${console:port}' },
      ],
      unresolved: [],
      issues: [],
      secretFields: ['portainer.user_pwd'],
    });
  });

  it('when optional variables are missing, then their defaults (or nothing) are used; a missing required one is unresolved and still previewed empty', () => {
    const result = instantiateTemplate({ template: withSecret, variables: {} });
    expect(result.unresolved).toEqual(['domain']);
    expect(result.issues).toEqual([]);
    expect(result.changes.map((c) => c.value)).toEqual(['*.', '443', '', 'https://m.example', '{{  }} ${console:port}']);
  });

  it('when a port is given as its digits, then it is taken; as "0443" or a float, then the port issue code is given', () => {
    expect(instantiateTemplate({ template: withSecret, variables: { domain: 'a.example', https_port: '8443' } }).changes[1]!.value).toBe('8443');
    const result = instantiateTemplate({ template: withSecret, variables: { domain: 'a.example', https_port: '0443' } });
    expect(result.issues).toEqual([
      { field: 'variable.https_port', code: 'INVALID_PORT', message: 'variable.https_port must be an integer from 1 to 65535 written without leading zeros' },
    ]);
    expect(instantiateTemplate({ template: withSecret, variables: { domain: 'a.example', https_port: 1.5 } }).issues[0]!.code).toBe('INVALID_TYPE');
    expect(instantiateTemplate({ template: withSecret, variables: { domain: 'a.example', https_port: 70000 } }).issues[0]!.code).toBe('INVALID_PORT');
  });

  it('when values have the wrong JSON type or fail their kind, then each is an issue with the kind code and the rest is still previewed', () => {
    const result = instantiateTemplate({ template: withSecret, variables: { domain: 'bad_host', mirrors: [1], note: { a: 1 } } });
    expect(result.issues).toEqual([
      { field: 'variable.domain', code: 'INVALID_HOSTNAME', message: 'variable.domain must be a domain name such as example.com' },
      { field: 'variable.mirrors', code: 'INVALID_TYPE', message: 'variable.mirrors list items must be strings' },
      { field: 'variable.note', code: 'INVALID_TYPE', message: 'variable.note must be a string, not an object' },
    ]);
    expect(result.unresolved).toEqual([]);
    expect(result.changes[0]).toEqual({ section: 'domain', key: 'wildcard_domain', value: '*.bad_host' });
    expect(result.changes[3]).toEqual({ section: 'docker_mirror', key: 'url', value: '' });
  });

  it('when a required variable is given empty, then it is a REQUIRED issue, not unresolved', () => {
    const result = instantiateTemplate({ template: withSecret, variables: { domain: '' } });
    expect(result.unresolved).toEqual([]);
    expect(result.issues).toEqual([{ field: 'variable.domain', code: 'REQUIRED', message: 'variable.domain must not be empty' }]);
  });

  it('when a value spans lines, then it is refused', () => {
    const result = instantiateTemplate({ template: withSecret, variables: { domain: 'a.example', note: 'one\ntwo' } });
    expect(result.issues).toEqual([{ field: 'variable.note', code: 'MULTILINE_NOT_ALLOWED', message: 'variable.note must be a single line' }]);
  });

  it('when unknown variables are given, then each is an UNKNOWN_VARIABLE issue, named printably, and inherited names are not variables', () => {
    const variables = JSON.parse('{"domain":"a.example","domian":"x","__proto__":"y","bad\\nname":1}') as Record<string, unknown>;
    const result = instantiateTemplate({ template: withSecret, variables });
    expect(result.issues).toEqual([
      { field: 'variable.domian', code: 'UNKNOWN_VARIABLE', message: 'variable.domian is not a variable of template sample' },
      { field: 'variable.__proto__', code: 'UNKNOWN_VARIABLE', message: 'variable.__proto__ is not a variable of template sample' },
      { field: 'variable.bad\\nname', code: 'UNKNOWN_VARIABLE', message: 'variable.bad\\nname is not a variable of template sample' },
    ]);
    expect(instantiateTemplate({ template: withSecret, variables: Object.create({ domain: 'inherited.example' }) }).unresolved).toEqual(['domain']);
  });

  it('when a secret variable is refused by its kind, then no message quotes its value', () => {
    const secretList = template(
      '[template]\ntitle = t\ndescription = d\n[variable:mirrors]\ntype = url_list\nsecret = true\ndescription = m\n[docker_mirror]\nurl = {{ mirrors }}\n',
    );
    const result = instantiateTemplate({ template: secretList, variables: { mirrors: 'https://ok.example,hunter2-token' } });
    expect(result.issues).toEqual([
      { field: 'variable.mirrors', code: 'INVALID_LIST', message: 'variable.mirrors is not a valid url_list (the value is secret and not shown)' },
    ]);
    expect(JSON.stringify(result.issues)).not.toContain('hunter2');
    expect(result.secretFields).toEqual(['docker_mirror.url']);
    // Not secret, the same value's problem quotes the item, as the settings API does.
    const plain = template(
      '[template]\ntitle = t\ndescription = d\n[variable:mirrors]\ntype = url_list\ndescription = m\n[docker_mirror]\nurl = {{ mirrors }}\n',
    );
    expect(instantiateTemplate({ template: plain, variables: { mirrors: 'https://ok.example,hunter2-token' } }).issues[0]!.message).toContain(
      '"hunter2-token"',
    );
  });
});
