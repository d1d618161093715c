import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/core/errors.js';
import { parseIni } from '../../src/ini/document.js';
import { loadRuntimeConfig } from '../../src/runtime-config.js';
import { DEFAULT_SYNC_SETTINGS, describeAction, installedCheck, parseReload, parseSyncConfig } from '../../src/targets/target-spec.js';

const base = { dataDir: '/srv/data', configDir: '/srv/data/config', own: loadRuntimeConfig({ CONFHUB_DATA_DIR: '/srv/data' }, '/').ownPaths };
const parse = (text: string) => parseSyncConfig({ ...base, doc: parseIni(text) });

function failure(text: string): string {
  try {
    parse(text);
  } catch (error) {
    if (error instanceof AppError && error.code === 'TARGET_INVALID') return error.message;
    throw error;
  }
  throw new Error('expected TARGET_INVALID');
}

describe('sync target declarations', () => {
  it('when the environment names the reloaders, then it wins over [sync] and is validated the same way', () => {
    const doc = parseIni('[sync]\ndocker_socket = /ini/docker.sock\nsupervisor_url = unix:///ini/supervisor.sock\n');
    const { settings } = parseSyncConfig({ ...base, doc, overrides: { dockerSocket: '/env/docker.sock', supervisorUrl: 'http://127.0.0.1:9001' } });
    expect(settings).toMatchObject({ dockerSocket: '/env/docker.sock', supervisorUrl: 'http://127.0.0.1:9001' });
    expect(parseSyncConfig({ ...base, doc: parseIni(''), overrides: { dockerSocket: '/env/docker.sock' } }).settings.dockerSocket).toBe('/env/docker.sock');
    expect(() => parseSyncConfig({ ...base, doc, overrides: { supervisorUrl: 'nope' } })).toThrow(/supervisor_url/);
  });

  it('when a target is fully declared, then every key is parsed', () => {
    const { targets, settings } = parse(`[sync]
output_roots = /data

[target:gitea]
sections = gitea, domain
format = gitea
output = /data/gitea/conf/app.ini
write = inplace
mode = 0640
reload = docker:restart:websoft9-git
health = http:http://127.0.0.1:3000/api/healthz
check = /usr/bin/test -s {file}
timeout = 45
on_failure = keep
`);
    expect(settings).toEqual(DEFAULT_SYNC_SETTINGS);
    expect(targets).toEqual([
      {
        name: 'gitea',
        sections: ['gitea', 'domain'],
        format: 'gitea',
        output: '/data/gitea/conf/app.ini',
        write: 'inplace',
        mode: 0o640,
        reload: { kind: 'docker_restart', container: { by: 'name', name: 'websoft9-git' } },
        health: { kind: 'http', url: 'http://127.0.0.1:3000/api/healthz' },
        check: { kind: 'exec', argv: ['/usr/bin/test', '-s', '{file}'] },
        timeoutMs: 45_000,
        onFailure: 'keep',
      },
    ]);
  });

  it('when optional keys are left out, then the documented defaults apply and relative paths resolve', () => {
    const [target] = parse(
      '[sync]\non_failure = keep\ndebounce_min_ms = 20\n[target:t]\nsections = a\nformat = template\ntemplate = t.tmpl\noutput = out/t.conf\n',
    ).targets;
    expect(target).toMatchObject({ write: 'auto', mode: 0o600, reload: { kind: 'none' }, health: { kind: 'auto' }, timeoutMs: 30_000, onFailure: 'keep' });
    expect(target!.output).toBe('/srv/data/out/t.conf');
    expect(target!.template).toBe('/srv/data/config/t.tmpl');
  });

  it('when health and reload URLs refer to config.ini values, then they are kept as templates with a safe text to show; health_window and check_installed are parsed', () => {
    const [target] = parse(`[sync]
output_roots = /etc/nginx

[target:nginx]
sections = web
format = template
template = nginx.conf.tmpl
output = /etc/nginx/conf.d/site.conf
reload = http:POST:http://{{ web.hook_user }}@127.0.0.1:{{ web.admin_port }}/reload?site={{ web.name }}
health = http:http://[{{ web.ip6 }}]:{{ web.port }}/health
health_window = 2.5
check_installed = /usr/sbin/nginx -t -q -c /etc/nginx/nginx.conf
timeout = 10
`).targets;
    expect(target).toMatchObject({
      reload: {
        kind: 'http',
        method: 'POST',
        url: 'http://{{ web.hook_user }}@127.0.0.1:{{ web.admin_port }}/reload?site={{ web.name }}',
        templated: true,
        shown: 'http://127.0.0.1:{{ web.admin_port }}/reload',
      },
      health: {
        kind: 'http',
        url: 'http://[{{ web.ip6 }}]:{{ web.port }}/health',
        templated: true,
        shown: 'http://[{{ web.ip6 }}]:{{ web.port }}/health',
        windowMs: 2500,
      },
      checkInstalled: { kind: 'exec', argv: ['/usr/sbin/nginx', '-t', '-q', '-c', '/etc/nginx/nginx.conf'] },
      timeoutMs: 10_000,
    });
    expect(target!.check).toBeUndefined();
    expect(describeAction(target!.reload)).toBe('POST http://127.0.0.1:{{ web.admin_port }}/reload');
    expect(installedCheck(target!)).toEqual(target!.checkInstalled);
    // A docker:exec check keeps running on the installed file.
    const [docker] = parse(
      '[target:p]\nsections = a\nformat = json\noutput = p\ncheck = docker:exec:proxy:nginx -t\nhealth = auto\nhealth_window = 0\n',
    ).targets;
    expect(installedCheck(docker!)).toEqual({ kind: 'docker_exec', container: { by: 'name', name: 'proxy' }, command: ['nginx', '-t'] });
    expect(docker!.health).toEqual({ kind: 'auto', windowMs: 0 });
  });

  it.each([
    [
      'docker:signal:HUP:label=com.docker.compose.service=proxy',
      { kind: 'docker_signal', signal: 'HUP', container: { by: 'label', label: 'com.docker.compose.service', value: 'proxy' } },
    ],
    ['docker:signal:SIGUSR1:web', { kind: 'docker_signal', signal: 'USR1', container: { by: 'name', name: 'web' } }],
    ['docker:exec:web:nginx -s reload', { kind: 'docker_exec', container: { by: 'name', name: 'web' }, command: ['nginx', '-s', 'reload'] }],
    ['supervisor:restart:nginx', { kind: 'supervisor_restart', program: 'nginx' }],
    ['supervisor:signal:HUP:nginx', { kind: 'supervisor_signal', signal: 'HUP', program: 'nginx' }],
    ['http:POST:http://127.0.0.1:9000/reload', { kind: 'http', method: 'POST', url: 'http://127.0.0.1:9000/reload' }],
    ['none', { kind: 'none' }],
    ['docker:recreate:label=app=box', { kind: 'docker_recreate', container: { by: 'label', label: 'app', value: 'box' }, envFile: '' }],
    ['supervisor:update:web', { kind: 'supervisor_update', program: 'web' }],
  ])('when reload is %s, then it parses to the action', (text, action) => {
    expect(parseReload('target:x', text)).toEqual(action);
  });

  it('when a target delivers an environment, then sections are not needed; a recreate reads its own .env output', () => {
    const { targets, env } = parse(
      '[target:box]\nenv = box\nformat = env\noutput = box.env\nreload = docker:recreate:box\n\n[target:web]\nenv = web\nformat = supervisor_env\noutput = web.conf\nreload = supervisor:update:web\n',
    );
    expect(targets.map((t) => [t.name, t.env, t.sections, t.reload])).toEqual([
      ['box', 'box', [], { kind: 'docker_recreate', container: { by: 'name', name: 'box' }, envFile: '/srv/data/box.env' }],
      ['web', 'web', [], { kind: 'supervisor_update', program: 'web' }],
    ]);
    expect(env.consumers).toEqual(['box', 'web']);
    expect(describeAction(targets[0]!.reload)).toBe('docker recreate box with a new environment');
    expect(describeAction(targets[1]!.reload)).toBe('supervisorctl update web');
  });

  it.each([
    [
      '[target:x]\nformat = env\noutput = a\nreload = docker:recreate:box\nsections = a\n',
      'system.ini [target:x] reload: docker:recreate delivers an environment',
    ],
    [
      '[target:x]\nenv = box\nformat = supervisor_env\noutput = a\nreload = docker:recreate:box\n',
      'system.ini [target:x] reload: docker:recreate delivers an environment',
    ],
    [
      '[target:x]\nenv = web\nformat = env\noutput = a\nreload = supervisor:update:web\n',
      'system.ini [target:x] reload: supervisor:update delivers an environment',
    ],
    [
      '[target:x]\nenv = web\nformat = supervisor_env\noutput = a\nreload = supervisor:restart:web\n',
      'system.ini [target:x] format: supervisor_env is the include file',
    ],
    [
      '[target:x]\nenv = a\nformat = env\noutput = a\nreload = docker:recreate:box\n[target:y]\nenv = b\nformat = env\noutput = b\nreload = docker:recreate:box\n',
      "system.ini [target:y] reload: [target:x] already recreates box; one target delivers a container's environment",
    ],
    [
      '[target:x]\nenv = web\nformat = supervisor_env\noutput = a\nreload = supervisor:update:grp:web\n',
      'system.ini [target:x] reload: "supervisor:update:grp:web" is not one of',
    ],
  ])('when an environment target is declared wrongly (%#), then start-up names it', (text, message) => {
    expect(failure(text)).toContain(message);
  });

  it.each([
    ['[target:x]\nformat = json\noutput = a\n', 'system.ini [target:x] sections: is required'],
    ['[target:x]\nsections = a\nformat = xml\noutput = a\n', 'system.ini [target:x] format: "xml" is not one of'],
    ['[target:x]\nsections = a\nformat = json\noutput = a\nreload = docker:bounce:web\n', 'system.ini [target:x] reload: "docker:bounce:web" is not one of'],
    [
      '[target:x]\nsections = a\nformat = json\noutput = a\nreload = docker:restart:bad name\n',
      'system.ini [target:x] reload: "bad name" is not a container name',
    ],
    ['[target:x]\nsections = a\nformat = json\noutput = a\nmode = 999\n', 'system.ini [target:x] mode:'],
    ['[target:x]\nsections = a\nformat = json\noutput = a\ntimeout = 0\n', 'system.ini [target:x] timeout: must be a whole number from 1 to 600'],
    ['[target:x]\nsections = a\nformat = json\noutput = a\ncolour = red\n', 'system.ini [target:x] colour: unknown key'],
    ['[target:x]\nsections = a\nformat = json\noutput = a\nhealth = sometimes\n', 'system.ini [target:x] health:'],
    ['[target:x]\nsections = a\nformat = json\noutput = a\ncheck = nginx -t\n', 'system.ini [target:x] check: the command must start with an absolute path'],
    [
      '[target:x]\nsections = a\nformat = json\noutput = config/config.ini\n',
      'system.ini [target:x] output: /srv/data/config/config.ini is config.ini, which confhub keeps for itself',
    ],
    [
      '[target:x]\nsections = a\nformat = json\noutput = a\n[target:y]\nsections = a\nformat = json\noutput = /srv/data/a\n',
      'system.ini [target:y] output: is also the output of [target:x]',
    ],
    ['[target:x]\nsections = a\nformat = template\noutput = a\n', 'system.ini [target:x] template: is required with format = template'],
    ['[target:X Y]\nsections = a\nformat = json\noutput = a\n', 'system.ini [target:X Y]: the target name'],
    ['[target:x]\nsections = a,,b\nformat = json\noutput = a\n', 'system.ini [target:x] sections: an empty section name'],
    ['[sync]\ndebounce_min_ms = 500\ndebounce_max_ms = 100\n', 'system.ini [sync] debounce_max_ms: must not be below debounce_min_ms'],
    ['[sync]\nsupervisor_url = /tmp/sock\n', 'system.ini [sync] supervisor_url:'],
    [
      '[target:x]\nsections = web\nformat = json\noutput = a\nhealth = http:http://127.0.0.1:{{ web.port }/\n',
      'system.ini [target:x] health: "{{" without a closing "}}" around a section.key name',
    ],
    [
      '[target:x]\nsections = web\nformat = json\noutput = a\nreload = http:POST:http://127.0.0.1:{{ web port }}/reload\n',
      'system.ini [target:x] reload: "{{" without a closing "}}"',
    ],
    [
      '[target:x]\nsections = web\nformat = json\noutput = a\nhealth = http:http://127.0.0.1:{{ other.port }}/\n',
      'system.ini [target:x] health: {{ other.port }} names no section of sections (web)',
    ],
    [
      '[target:x]\nsections = web\nformat = json\noutput = a\nreload = http:POST:http://127.0.0.1/hooks/{{ web.hook_token }}\n',
      'system.ini [target:x] reload: {{ web.hook_token }} refers to web.hook_token, a secret: a URL may only hold values that are not secret',
    ],
    [
      '[target:x]\nsections = web\nformat = json\noutput = a\nhealth = http:http://{{ web.user }}:{{ web.user_pwd }}@127.0.0.1/\n',
      'system.ini [target:x] health: {{ web.user_pwd }} refers to web.user_pwd, a secret',
    ],
    [
      // A dotted name is refused when any of its readings in the target's sections is a secret.
      '[target:x]\nsections = web, web.api\nformat = json\noutput = a\nhealth = http:http://127.0.0.1/?k={{ web.api.key }}\n',
      'system.ini [target:x] health: {{ web.api.key }} refers to web.api.key, a secret',
    ],
    [
      '[target:x]\nsections = web\nformat = json\noutput = a\nreload = http:POST:{{ web.scheme }}://h/\n',
      'system.ini [target:x] reload: "{{ web.scheme }}://h/" is not a URL',
    ],
    [
      '[target:x]\nsections = web\nformat = json\noutput = a\nreload = http:POST:http{{ web.s }}://h/\n',
      'system.ini [target:x] reload: "http{{ web.s }}://h/" must be an http:// or https:// URL',
    ],
    [
      '[target:x]\nsections = a\nformat = json\noutput = a\nhealth = none\nhealth_window = 2\n',
      'system.ini [target:x] health_window: has no effect with health = none',
    ],
    ['[target:x]\nsections = a\nformat = json\noutput = a\nhealth_window = 2s\n', 'system.ini [target:x] health_window: must be seconds such as 2 or 0.5'],
    [
      '[target:x]\nsections = a\nformat = json\noutput = a\ntimeout = 5\nhealth_window = 5\n',
      'system.ini [target:x] health_window: must be shorter than timeout (5 s)',
    ],
    [
      '[target:x]\nsections = a\nformat = json\noutput = a\ncheck_installed = nginx -t\n',
      'system.ini [target:x] check_installed: the command must start with an absolute path',
    ],
    [
      '[target:x]\nsections = a\nformat = json\noutput = a\ncheck = docker:exec:web:nginx -t\ncheck_installed = /usr/sbin/nginx -t\n',
      'system.ini [target:x] check_installed: a docker:exec check already runs on the installed file',
    ],
    ['[target:x]\nsections = a\nformat = json\noutput = w/a\npart_of = x\n', 'system.ini [target:x] part_of: names this target itself'],
    ['[target:x]\nsections = a\nformat = json\noutput = w/a\npart_of = y\n', 'system.ini [target:x] part_of: names no target: there is no [target:y]'],
    ['[target:x]\nsections = a\nformat = json\noutput = w/a\npart_of = Y Z\n', 'system.ini [target:x] part_of: "Y Z" is not a target name'],
    [
      '[target:w]\nsections = a\nformat = json\noutput = w/a\n[target:x]\nsections = a\nformat = json\noutput = other/b\npart_of = w\n',
      "system.ini [target:x] output: /srv/data/other/b is not inside /srv/data/w, the directory of [target:w]'s output (part_of)",
    ],
    [
      '[target:w]\nsections = a\nformat = json\noutput = w/a\npart_of = x\n[target:x]\nsections = a\nformat = json\noutput = w/b\n[target:y]\nsections = a\nformat = json\noutput = w/c\npart_of = w\n',
      'system.ini [target:y] part_of: [target:w] is itself part of [target:x]; name that one',
    ],
    ['[target:x]\nsections = a\nformat = json\noutput = w/a\u0007\n', 'system.ini [target:x] output: must not contain control characters'],
    ['[target:x]\nsections = a\nformat = json\noutput = w/a -> b\n', 'system.ini [target:x] output: must not contain " -> "'],
  ])('when the declaration is bad, then start-up names the section and key (%#)', (text, message) => {
    expect(failure(text)).toContain(message);
  });
});

describe('bundles (part_of)', () => {
  it('when targets are part of another, then its bundle holds it first and them after in declared order, and a part still has its own', async () => {
    const { bundleTargets } = await import('../../src/targets/target-spec.js');
    const { targets } = parse(
      '[target:b]\nsections = a\nformat = json\noutput = svc/conf/b.json\npart_of = svc\n' +
        '[target:svc]\nsections = a\nformat = ini\noutput = svc/app.ini\n' +
        '[target:c]\nsections = a\nformat = json\noutput = svc/c.json\npart_of = svc\n',
    );
    expect(bundleTargets(targets, 'svc').map((t) => t.name)).toEqual(['svc', 'b', 'c']);
    expect(bundleTargets(targets, 'b').map((t) => t.name)).toEqual(['b']);
    expect(bundleTargets(targets, 'nope')).toEqual([]);
    expect(targets.find((t) => t.name === 'b')!.partOf).toBe('svc');
  });
});

describe('where outputs and templates may be', () => {
  const target = (keys: string) => `[target:x]\nsections = a\nformat = template\ntemplate = t.tmpl\n${keys}`;

  it('when [sync] names no roots, then outputs stay in the data directory and templates in the config directory', () => {
    expect(parse(target('output = out/x.conf\n')).paths).toMatchObject({ outputRoots: ['/srv/data'], templateRoots: ['/srv/data/config'] });
    const { paths } = parse(`[sync]\noutput_roots = /srv/data, /srv/volumes/web/\ntemplate_roots = /srv/data/config,/opt/templates\n`);
    expect(paths).toMatchObject({ outputRoots: ['/srv/data', '/srv/volumes/web'], templateRoots: ['/srv/data/config', '/opt/templates'] });
  });

  it.each([
    ['master.key', 'output: /srv/data/master.key is the master key, which confhub keeps for itself'],
    ['master.key.retired', 'output: /srv/data/master.key.retired is the retired master keys'],
    ['master.key.next', 'output: /srv/data/master.key.next is the master key of a rotation'],
    ['confhub.db', 'output: /srv/data/confhub.db is the database'],
    ['confhub.db-wal', 'output: /srv/data/confhub.db-wal is the database'],
    ['confhub.db-shm', 'output: /srv/data/confhub.db-shm is the database'],
    ['confhub.db-journal', 'output: /srv/data/confhub.db-journal is the database'],
    ['history.git/HEAD', 'output: /srv/data/history.git/HEAD is inside the history repository'],
    ['history.git', 'output: /srv/data/history.git is the history repository'],
    ['services/../history.git/refs/heads/main', 'output: /srv/data/history.git/refs/heads/main is inside the history repository'],
    ['confhub.sock', 'output: /srv/data/confhub.sock is the instance lock'],
    ['shipped-template.json', 'output: /srv/data/shipped-template.json is the record of the shipped template'],
    ['config/system.ini', 'output: /srv/data/config/system.ini is system.ini'],
    ['config/t.tmpl', 'output: /srv/data/config/t.tmpl is inside the config directory'],
    ['.', 'output: /srv/data is the data directory'],
    ['/etc/cron.d/x', 'output: /etc/cron.d/x is outside the output roots (/srv/data) that [sync] output_roots allows'],
    ['/srv/database', 'output: /srv/database is outside the output roots (/srv/data)'],
  ])('when the output is %s, then start-up refuses it with the reason', (output, message) => {
    expect(failure(target(`output = ${output}\n`))).toContain(`system.ini [target:x] ${message}`);
  });

  it('when a root contains the data directory, then confhub own files there are still refused', () => {
    expect(failure(`[sync]\noutput_roots = /\n${target('output = /srv/data/master.key\n')}`)).toContain('is the master key, which confhub keeps for itself');
    expect(parse(`[sync]\noutput_roots = /\n${target('output = /etc/app.conf\n')}`).targets[0]!.output).toBe('/etc/app.conf');
  });

  it.each([
    ['/etc/shadow', 'template: /etc/shadow is outside the template roots (/srv/data/config) that [sync] template_roots allows'],
    ['../../../etc/shadow', 'template: /etc/shadow is outside the template roots'],
    ['../master.key', 'template: /srv/data/master.key is the master key, which is no template'],
    ['config.ini', 'template: /srv/data/config/config.ini is config.ini, which is no template'],
    ['.', 'template: /srv/data/config is the config directory, which is no template'],
  ])('when the template is %s, then start-up refuses it with the reason', (template, message) => {
    expect(failure(`[target:x]\nsections = a\nformat = template\ntemplate = ${template}\noutput = out/x\n`)).toContain(`system.ini [target:x] ${message}`);
  });

  it('when template_roots allows another directory, then a template there is accepted', () => {
    const [t] = parse(
      `[sync]\ntemplate_roots = /srv/data/config, /opt/templates\n[target:x]\nsections = a\nformat = template\ntemplate = /opt/templates/x.tmpl\noutput = out/x\n`,
    ).targets;
    expect(t!.template).toBe('/opt/templates/x.tmpl');
  });

  it.each([
    ['output_roots = data', '[sync] output_roots: "data" must be an absolute path'],
    ['output_roots = /srv/data,,/x', '[sync] output_roots: must not contain empty list items'],
    ['template_roots = /srv/../etc', '[sync] template_roots: "/srv/../etc" must not contain ".." segments'],
  ])('when [sync] %s, then start-up refuses the list', (line, message) => {
    expect(failure(`[sync]\n${line}\n`)).toContain(`system.ini ${message}`);
  });
});
