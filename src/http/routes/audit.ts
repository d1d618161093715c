/** /audit: the audit log, newest first, filtered by section and time, paged by id. */
import { Router } from 'express';
import type { AuditLog } from '../../audit/audit-log.js';
import { AppError } from '../../core/errors.js';
import { sectionNameProblem } from '../../core/names.js';
import { baseSectionOf, environmentNameProblem, parseOverlay } from '../../settings/overlays.js';
import { DEFAULT_AUDIT_LIMIT, MAX_AUDIT_LIMIT } from '../operations.js';
import { addPath, ROUTING, sendJson, singleQueryValue } from '../route-helpers.js';

function overlayNameProblem(section: string): string | undefined {
  const overlay = parseOverlay(section);
  return overlay ? environmentNameProblem(overlay.environment) : undefined;
}

function invalid(details: string): AppError {
  return new AppError('INVALID_REQUEST', { details });
}

function positiveInteger(raw: string | undefined, name: string, max: number): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d{1,16}$/.test(raw) || Number(raw) < 1 || Number(raw) > max) throw invalid(`${name} must be a whole number from 1 to ${max}`);
  return Number(raw);
}

/** ISO 8601 date-time or epoch milliseconds. */
function parseSince(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const value = /^\d{1,16}$/.test(raw) ? Number(raw) : Date.parse(raw);
  if (!Number.isFinite(value)) throw invalid('since must be an ISO 8601 date-time or epoch milliseconds');
  return value;
}

export function createAuditRoutes({ audit }: { audit: AuditLog }): Router {
  const router = Router(ROUTING);
  addPath(router, '/audit', {
    handlers: {
      listAudit: (req, res) => {
        const section = singleQueryValue(req, 'section');
        // An environment's overlay (`cockpit@prod`) is a section the audit log names too.
        const problem = section === undefined ? undefined : (sectionNameProblem(baseSectionOf(section)) ?? overlayNameProblem(section));
        if (problem) throw invalid(problem);
        const limit = positiveInteger(singleQueryValue(req, 'limit'), 'limit', MAX_AUDIT_LIMIT) ?? DEFAULT_AUDIT_LIMIT;
        const before = positiveInteger(singleQueryValue(req, 'before'), 'before', Number.MAX_SAFE_INTEGER);
        const since = parseSince(singleQueryValue(req, 'since'));
        const entries = audit.query({ section, since, before, limit });
        const next = entries.length === limit ? entries[entries.length - 1]!.id : null;
        sendJson(res, JSON.stringify({ entries, next }));
      },
    },
  });
  return router;
}
