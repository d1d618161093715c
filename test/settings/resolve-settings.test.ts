/** system.ini's [confhub] and CONFHUB_ENVIRONMENT read into the resolve settings; a bad value names its key. */
import { describe, expect, it } from 'vitest';
import { parseIni } from '../../src/ini/document.js';
import { resolveSettingsOf } from '../../src/settings/resolve-settings.js';
import { expectAppError } from '../support/wait.js';

describe('resolveSettingsOf', () => {
  it('when [confhub] is absent, empty or says extended, then interpolation is none or extended, with the environment given', () => {
    expect(resolveSettingsOf({ system: parseIni('[sync]\n') })).toEqual({ interpolation: 'none' });
    expect(resolveSettingsOf({ system: parseIni('[confhub]\ninterpolation =\n'), environment: 'prod' })).toEqual({
      interpolation: 'none',
      environment: 'prod',
    });
    expect(resolveSettingsOf({ system: parseIni('[confhub]\ninterpolation = extended\n') })).toEqual({ interpolation: 'extended' });
  });

  it('when [confhub] holds another value or another key, then the start is refused naming it', async () => {
    await expectAppError(
      Promise.resolve().then(() => resolveSettingsOf({ system: parseIni('[confhub]\ninterpolation = basic\n') })),
      'TARGET_INVALID',
    );
    expect(() => resolveSettingsOf({ system: parseIni('[confhub]\ninterpolation = basic\n') })).toThrow(
      /\[confhub\] interpolation: must be none or extended, got "basic"/,
    );
    expect(() => resolveSettingsOf({ system: parseIni('[confhub]\nmode = x\n') })).toThrow(/\[confhub\] mode: unknown key/);
  });
});
