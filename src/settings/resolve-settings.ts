/**
 * `[confhub]` of system.ini and CONFHUB_ENVIRONMENT: how config.ini's values are resolved. Read
 * once at start; a bad value stops the start naming the key.
 */
import type { IniDocument } from '../ini/document.js';
import { invalid } from '../targets/declaration-error.js';
import { INTERPOLATION_MODES, type InterpolationMode, type ResolveSettings } from './resolve.js';

const KEYS = ['interpolation'] as const;

export function resolveSettingsOf({ system, environment }: { system: IniDocument; environment?: string | undefined }): ResolveSettings {
  const section = system.byName.get('confhub');
  let interpolation: InterpolationMode = 'none';
  for (const entry of section?.entries ?? []) {
    if (!(KEYS as readonly string[]).includes(entry.keyLower))
      throw invalid('confhub', entry.key.slice(0, 64), `unknown key; expected one of ${KEYS.join(', ')}`);
    const value = entry.value.trim();
    if (value === '') continue;
    if (!(INTERPOLATION_MODES as readonly string[]).includes(value))
      throw invalid('confhub', 'interpolation', `must be ${INTERPOLATION_MODES.join(' or ')}, got "${value.slice(0, 40)}"`);
    interpolation = value as InterpolationMode;
  }
  return Object.freeze({ interpolation, ...(environment !== undefined ? { environment } : {}) });
}
