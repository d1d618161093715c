import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/core/errors.js';
import { loadRuntimeConfig } from '../../src/runtime-config.js';

function refusal(env: NodeJS.ProcessEnv): string {
  try {
    loadRuntimeConfig(env, '/srv');
  } catch (error) {
    if (error instanceof AppError && error.code === 'STARTUP_CONFIG_INVALID') return error.message;
    throw error;
  }
  throw new Error('expected STARTUP_CONFIG_INVALID');
}

describe('runtime configuration from the environment', () => {
  it('when nothing is set, then the reloaders come from system.ini and a stop waits 5 s', () => {
    const config = loadRuntimeConfig({}, '/srv');
    expect(config.reloaders).toEqual({});
    expect(config.stopTimeoutMs).toBe(5000);
    expect(config.dataDir).toBe('/srv/data');
  });

  it('when the reloader variables and the stop timeout are set, then they are taken', () => {
    const config = loadRuntimeConfig(
      { CONFHUB_DOCKER_SOCKET: '/run/docker.sock', CONFHUB_SUPERVISOR_URL: 'http://127.0.0.1:9001', CONFHUB_STOP_TIMEOUT_MS: '2500' },
      '/srv',
    );
    expect(config.reloaders).toEqual({ dockerSocket: '/run/docker.sock', supervisorUrl: 'http://127.0.0.1:9001' });
    expect(config.stopTimeoutMs).toBe(2500);
    expect(Object.isFrozen(config.reloaders)).toBe(true);
  });

  it.each([
    [{ CONFHUB_DOCKER_SOCKET: 'docker.sock' }, 'CONFHUB_DOCKER_SOCKET must be an absolute path'],
    [{ CONFHUB_SUPERVISOR_URL: '/run/supervisor.sock' }, 'CONFHUB_SUPERVISOR_URL must be unix:///path'],
    [{ CONFHUB_SUPERVISOR_URL: 'ftp://host' }, 'CONFHUB_SUPERVISOR_URL must be unix:///path'],
    [{ CONFHUB_STOP_TIMEOUT_MS: '5s' }, 'CONFHUB_STOP_TIMEOUT_MS must be a whole number'],
    [{ CONFHUB_STOP_TIMEOUT_MS: '10' }, 'CONFHUB_STOP_TIMEOUT_MS must be a whole number from 100'],
  ])('when %o, then the start is refused naming the variable', (env, message) => {
    expect(refusal(env)).toContain(message);
  });

  it('when a refused supervisord URL carries a password, then the message does not repeat it', () => {
    expect(refusal({ CONFHUB_SUPERVISOR_URL: 'ftp://admin:s3cret-pw@host:9001' })).not.toContain('s3cret-pw');
  });
});
