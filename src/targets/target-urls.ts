/**
 * A target's reload and health URLs for one revision of config.ini: `{{ section.key }}` filled
 * with the revision's values (the template grammar, render/placeholders.ts), so a service whose
 * port moved is reloaded and checked at its new address.
 *
 * Each value is percent-encoded (as RFC 6570 simple expansion does): it fills one part of the
 * URL (port, a path segment, a query value) and can never move the request to another host or
 * scheme. A value that is the whole host is read as a host instead (url-host.ts: an IPv6
 * address gets its brackets). A value that is missing, or that does not make a valid URL, fails
 * the target (RENDER_FAILED naming the keys, never a value). No URL holds a secret: target-spec.ts
 * refuses placeholders of sensitive keys (the URL is shown in results, logs and /services), and
 * so does this, for any target it is given. What messages show (`shown`) has no userinfo, query
 * or fragment.
 */
import type { AppError } from '../core/errors.js';
import { safeUrl } from '../core/safe-url.js';
import type { IniDocument } from '../ini/document.js';
import { parsePlaceholders, placeholderNames, substitute, substitutionProblems } from '../render/placeholders.js';
import { renderFailed } from '../render/render-input.js';
import { CONFIG_SCHEMA, isSensitive } from '../settings/schema.js';
import type { HttpUrl, TargetSpec } from './target-spec.js';
import { hostPlaceholder, hostText } from './url-host.js';

function lookupIn(doc: IniDocument, sections: readonly string[]): (section: string, key: string) => string | undefined {
  return (section, key) => {
    if (!sections.includes(section)) return undefined;
    const lower = key.toLowerCase();
    return doc.byName.get(section)?.entries.find((e) => e.keyLower === lower)?.value;
  };
}

function resolveUrl(spec: TargetSpec, doc: IniDocument, { key, url }: { key: 'health' | 'reload'; url: HttpUrl }): HttpUrl {
  const parsed = parsePlaceholders(url.url);
  const host = hostPlaceholder(parsed);
  const refused: string[] = [];
  const result = substitute(parsed, lookupIn(doc, spec.sections), (value, at) => {
    const field = `${at.section}.${at.key}`;
    if (isSensitive(CONFIG_SCHEMA, at.section, at.key)) {
      refused.push(`${field} is a secret, which a URL may not hold`);
      return '';
    }
    if (at.index !== host?.index) return encodeURIComponent(value);
    const hostValue = hostText(value, { bracketed: host.bracketed, field });
    if ('problem' in hostValue) refused.push(hostValue.problem);
    return 'text' in hostValue ? hostValue.text : '';
  });
  const problems = [...substitutionProblems(parsed, result), ...refused];
  const failed = (problem: string): AppError => renderFailed(spec.name, `${key} URL ${url.shown ?? ''}: ${problem}`);
  if (problems.length > 0) throw failed(problems.join('; '));
  let resolved: URL;
  try {
    resolved = new URL(result.text);
  } catch {
    throw failed(`the values of ${placeholderNames(parsed).join(', ')} do not make a valid URL`);
  }
  // The declared scheme is literal text (target-spec.ts refuses placeholders there); checked again all the same.
  if (resolved.protocol !== 'http:' && resolved.protocol !== 'https:') throw failed('the URL is not http:// or https://');
  return { url: resolved.toString(), shown: safeUrl(resolved.toString()) };
}

/**
 * The target as it applies to this revision: templated URLs resolved. A target without templated
 * URLs is returned as it is (the same object).
 */
export function targetForDocument(spec: TargetSpec, doc: IniDocument): TargetSpec {
  const { reload, health } = spec;
  const reloadUrl = reload.kind === 'http' && reload.templated ? resolveUrl(spec, doc, { key: 'reload', url: reload }) : undefined;
  const healthUrl = health.kind === 'http' && health.templated ? resolveUrl(spec, doc, { key: 'health', url: health }) : undefined;
  if (!reloadUrl && !healthUrl) return spec;
  return Object.freeze({
    ...spec,
    ...(reload.kind === 'http' && reloadUrl ? { reload: { kind: reload.kind, method: reload.method, ...reloadUrl } } : {}),
    ...(health.kind === 'http' && healthUrl
      ? { health: { kind: health.kind, ...healthUrl, ...(health.windowMs !== undefined ? { windowMs: health.windowMs } : {}) } }
      : {}),
  });
}
