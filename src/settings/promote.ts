/**
 * Promotion between environments: the overlay values of one environment copied into another's
 * overlays in one write (`POST /environments/promote`), planned purely so a dry run shows exactly
 * what the write would do. Values are copied as written: references stay references, resolved in
 * the target environment.
 */
import { AppError } from '../core/errors.js';
import type { IniDocument } from '../ini/document.js';
import { environmentsOf, overlayName, parseOverlay } from './overlays.js';
import type { ChangeInput } from './plan-changes.js';
import { fieldId } from './validate.js';

export interface PromoteInput {
  /** config.ini as written (sealed values opened). */
  readonly doc: IniDocument;
  readonly from: string;
  readonly to: string;
  /** `section.key` to promote; default every key of `from`'s overlays. */
  readonly keys?: readonly string[];
}

export interface PromotedKey {
  /** `section.key` (base section, key lowercased). */
  readonly key: string;
  readonly section: string;
  readonly name: string;
  /** The value `to` has now (undefined: its overlay does not set the key). */
  readonly before: string | undefined;
  readonly after: string;
}

export function planPromotion({ doc, from, to, keys }: PromoteInput): { changes: ChangeInput[]; keys: PromotedKey[] } {
  if (from === to) throw new AppError('INVALID_REQUEST', { details: 'from and to name the same environment' });
  if (!environmentsOf(doc).includes(from)) {
    throw new AppError('ENVIRONMENT_NOT_FOUND', { details: `Environment:${from} has no overlays in config.ini` });
  }
  const offered = new Map<string, PromotedKey>();
  for (const section of doc.sections) {
    const overlay = parseOverlay(section.name);
    if (!overlay || overlay.environment !== from) continue;
    for (const entry of section.entries) {
      const before = doc.byName.get(overlayName(overlay.base, to))?.byKey.get(entry.keyLower);
      const key = fieldId(overlay.base, entry.keyLower);
      offered.set(key, { key, section: overlay.base, name: before?.key ?? entry.key, before: before?.value, after: entry.value });
    }
  }
  let chosen = [...offered.values()];
  if (keys !== undefined) {
    const wanted = keys.map((key) => {
      const dot = key.lastIndexOf('.');
      return dot < 0 ? key : fieldId(key.slice(0, dot), key.slice(dot + 1));
    });
    const missing = wanted.filter((key) => !offered.has(key));
    if (missing.length > 0) {
      throw new AppError('KEY_NOT_FOUND', { details: missing.map((key) => `Key:${key} is not set in environment ${from}`).join('; ') });
    }
    chosen = [...new Set(wanted)].map((key) => offered.get(key)!);
  }
  if (chosen.length === 0) throw new AppError('INVALID_REQUEST', { details: `environment ${from} has no keys to promote` });
  const changes = chosen.map((key) => ({ section: overlayName(key.section, to), key: key.name, value: key.after }));
  return { changes, keys: chosen };
}
