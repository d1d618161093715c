/**
 * The pure half of the environment recreation: what the new container is created with, from the
 * inspected old one. The real daemon runs only `--network none` here, so networks, aliases and
 * links are checked on the plan.
 */
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/core/errors.js';
import { engineStep } from '../../src/reload/docker.js';
import { MANAGED_ENV_LABEL, parseAsideName, planRecreate, redactionOf, type ContainerInspect, type ImageInspect } from '../../src/reload/docker-recreate.js';

const ID = `0123456789ab${'c'.repeat(52)}`;
const IMAGE: ImageInspect = { Id: 'sha256:feed', Config: { Env: ['PATH=/usr/bin', 'LANG=C.UTF-8'] } };

function container(
  overrides: { Config?: Partial<ContainerInspect['Config']>; HostConfig?: Partial<ContainerInspect['HostConfig']> } & Partial<ContainerInspect> = {},
): ContainerInspect {
  const { Config, HostConfig, ...rest } = overrides;
  return {
    Id: ID,
    Name: '/web',
    Created: '2026-01-01T00:00:00Z',
    Image: 'sha256:feed',
    State: { Running: true, Status: 'running' },
    Mounts: [],
    NetworkSettings: { Networks: { none: {} } },
    ...rest,
    Config: { Hostname: '0123456789ab', Image: 'app:1', Env: ['PATH=/usr/bin', 'LANG=C.UTF-8'], Labels: {}, Cmd: ['serve'], ...Config },
    HostConfig: { NetworkMode: 'none', Binds: [], ...HostConfig },
  };
}

const plan = (info: ContainerInspect, env: Record<string, string>, image: ImageInspect = IMAGE) =>
  planRecreate({ container: info, image, imageRef: 'app:1', env: new Map(Object.entries(env)) });

describe('planRecreate: the environment', () => {
  it("when confhub sets variables, then the user's own stay, a taken-over one is replaced in place, new ones follow in name order, image defaults are left to the image", () => {
    const info = container({ Config: { Env: ['B_USER=1', 'SHARED=by-hand', 'A_USER=2', 'PATH=/usr/bin', 'LANG=C.UTF-8'] } });
    const { create, managed, unchanged } = plan(info, { ZED: 'z', SHARED: 'confhub', ALPHA: 'a' });
    expect(create.Env).toEqual(['B_USER=1', 'SHARED=confhub', 'A_USER=2', 'ALPHA=a', 'ZED=z']);
    expect(create.Labels[MANAGED_ENV_LABEL]).toBe('ALPHA,SHARED,ZED');
    expect(managed).toEqual(['ALPHA', 'SHARED', 'ZED']);
    expect(unchanged).toBe(false);
  });

  it('when confhub no longer manages a variable it set, then it is dropped (an image default of that name shows again), and with none left the label goes', () => {
    const info = container({
      Config: { Env: ['KEEP=mine', 'OLD=x', 'LANG=en_US', 'PATH=/usr/bin'], Labels: { [MANAGED_ENV_LABEL]: 'LANG,OLD', 'com.docker.compose.service': 'web' } },
    });
    const { create } = plan(info, {});
    // LANG=en_US was confhub's: without it the image's LANG=C.UTF-8 applies again.
    expect(create.Env).toEqual(['KEEP=mine']);
    expect(create.Labels).toEqual({ 'com.docker.compose.service': 'web' });
  });

  it('when the container already has the environment and the label, then the plan is unchanged; a new value, or variables set by hand and not yet recorded, are not', () => {
    const recorded = container({ Config: { Env: ['A=1', 'B=2', 'PATH=/usr/bin'], Labels: { [MANAGED_ENV_LABEL]: 'A,B' } } });
    expect(plan(recorded, { A: '1', B: '2' }).unchanged).toBe(true);
    expect(plan(recorded, { A: '1', B: '3' }).unchanged).toBe(false);
    expect(plan(recorded, { A: '1' }).unchanged).toBe(false);
    const byHand = container({ Config: { Env: ['A=1', 'B=2'] } });
    expect(plan(byHand, { A: '1', B: '2' }).unchanged).toBe(false);
    // A managed value equal to an image default: the process already has it.
    const atDefault = container({ Config: { Env: ['LANG=C.UTF-8', 'PATH=/usr/bin'], Labels: { [MANAGED_ENV_LABEL]: 'LANG' } } });
    expect(plan(atDefault, { LANG: 'C.UTF-8' }).unchanged).toBe(true);
    expect(plan(atDefault, { LANG: 'en_US.UTF-8' }).unchanged).toBe(false);
  });

  it('when a value holds `=`, newlines or an empty string, then the entry is NAME=value exactly', () => {
    const { create } = plan(container({ Config: { Env: ['X=a=b'] } }), { X: 'c=d\ne', EMPTY: '' });
    expect(create.Env).toEqual(['X=c=d\ne', 'EMPTY=']);
  });
});

describe('planRecreate: what else is carried over', () => {
  it('when the hostname is the short id Docker made up, then it is left out; an explicit one is kept; the image is the one given', () => {
    expect(plan(container(), {}).create).not.toHaveProperty('Hostname');
    const explicit = plan(container({ Config: { Hostname: 'web-1', Domainname: 'example.test' } }), {}).create;
    expect(explicit).toMatchObject({ Hostname: 'web-1', Domainname: 'example.test', Image: 'app:1', Cmd: ['serve'] });
  });

  it("when the container shares another container's network, then neither hostname nor domain nor endpoints are set", () => {
    const { create, connect } = plan(
      container({ Config: { Hostname: 'db-host', Domainname: 'x' }, HostConfig: { NetworkMode: 'container:db' }, NetworkSettings: { Networks: {} } }),
      {},
    );
    expect(create).not.toHaveProperty('Hostname');
    expect(create).not.toHaveProperty('Domainname');
    expect(create).not.toHaveProperty('NetworkingConfig');
    expect(connect).toEqual([]);
  });

  it('when the container is on user networks, then the first is set at create with its aliases minus the old short id, and the others are connected with theirs', () => {
    const info = container({
      HostConfig: { NetworkMode: 'app_default' },
      NetworkSettings: {
        Networks: {
          app_default: { Aliases: ['web', '0123456789ab', 'app-web-1'], IPAMConfig: { IPv4Address: '172.30.0.9' }, NetworkID: 'n1', IPAddress: '172.30.0.9' },
          backend: { Aliases: ['0123456789ab'], Links: ['db:database'] },
        },
      },
    });
    const { create, connect } = plan(info, {});
    expect(create.NetworkingConfig).toEqual({ EndpointsConfig: { app_default: { Aliases: ['web', 'app-web-1'], IPAMConfig: { IPv4Address: '172.30.0.9' } } } });
    expect(connect).toEqual([{ network: 'backend', endpoint: { Links: ['db:database'] } }]);
    const legacy = plan(container({ HostConfig: { NetworkMode: 'default' }, NetworkSettings: { Networks: { bridge: { Aliases: null } } } }), {});
    expect(legacy.create.NetworkingConfig).toEqual({ EndpointsConfig: { bridge: {} } });
    expect(plan(container({ HostConfig: { NetworkMode: 'host' }, NetworkSettings: { Networks: { host: {} } } }), {}).create).not.toHaveProperty(
      'NetworkingConfig',
    );
  });

  it('when volumes are anonymous, then the new container mounts the same volumes by name; binds, named volumes and --mount entries are not doubled', () => {
    const info = container({
      HostConfig: {
        Binds: ['/srv/conf:/conf:ro', 'data:/data'],
        Mounts: [
          { Type: 'volume', Target: '/cache' },
          { Type: 'bind', Source: '/srv/logs', Target: '/logs' },
        ],
        Links: ['/db:/web/database'],
        RestartPolicy: { Name: 'always', MaximumRetryCount: 0 },
      },
      Mounts: [
        { Type: 'bind', Source: '/srv/conf', Destination: '/conf', RW: false },
        { Type: 'volume', Name: 'data', Source: '/var/lib/docker/volumes/data/_data', Destination: '/data', RW: true },
        { Type: 'volume', Name: 'c4c4', Destination: '/cache', RW: true },
        { Type: 'bind', Source: '/srv/logs', Destination: '/logs', RW: true },
        { Type: 'volume', Name: 'a1a1', Destination: '/anon', RW: true },
        { Type: 'volume', Name: 'b2b2', Destination: '/seed', RW: false },
      ],
    });
    const host = plan(info, {}).create.HostConfig;
    expect(host.Binds).toEqual(['/srv/conf:/conf:ro', 'data:/data']);
    expect(host.Mounts).toEqual([
      { Type: 'volume', Source: 'c4c4', Target: '/cache' },
      { Type: 'bind', Source: '/srv/logs', Target: '/logs' },
      { Type: 'volume', Source: 'a1a1', Target: '/anon' },
      { Type: 'volume', Source: 'b2b2', Target: '/seed', ReadOnly: true },
    ]);
    // Links read back as /target:/container/alias; create takes target:alias.
    expect(host.Links).toEqual(['db:database']);
    expect(host.RestartPolicy).toEqual({ Name: 'always', MaximumRetryCount: 0 });
    expect(host.NetworkMode).toBe('none');
  });
});

describe('parseAsideName', () => {
  it('when a name carries an aside suffix, then the service name and whether it was running come back; other names are not aside', () => {
    expect(parseAsideName('web.confhub-old')).toEqual({ name: 'web', wasRunning: true });
    expect(parseAsideName('app-web-1.confhub-old-stopped')).toEqual({ name: 'app-web-1', wasRunning: false });
    expect(parseAsideName('web')).toBeUndefined();
    expect(parseAsideName('web.confhub-older')).toBeUndefined();
  });
});

describe('engineStep', () => {
  it('when values are masked in an engine message, then every value of four or more characters is, the longest first, and shorter ones are not', () => {
    const redact = redactionOf(['1', 'abc', 'secret-value', 'secret']);
    expect(redact('exit code 1: secret-value and secret (abc)')).toBe('exit code 1: ****** and ****** (abc)');
  });

  it("when a redaction is given, then the engine's message reaches the error only through it", async () => {
    const refusal = Object.assign(new Error('invalid value s3cr3t-value in Env'), { statusCode: 400, json: { message: 'invalid value s3cr3t-value in Env' } });
    const error = await engineStep(
      {
        socketPath: '/nowhere',
        what: 'create the new container web',
        timeoutMs: 1000,
        code: 'RELOAD_FAILED',
        redact: (text) => text.replaceAll('s3cr3t-value', '******'),
      },
      () => Promise.reject(refusal),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).details).toBe('create the new container web: HTTP 400: invalid value ****** in Env');
    expect(JSON.stringify((error as AppError).cause, ['message', 'statusCode', 'json'])).not.toContain('s3cr3t');
    expect((error as AppError).cause).toMatchObject({ statusCode: 400, message: 'invalid value ****** in Env' });
  });
});
