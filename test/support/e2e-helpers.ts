/** Helpers of end-to-end tests on a whole confhub: a quick system.ini, API calls, reads of config.ini and the event log. */
import BetterSqlite3 from 'better-sqlite3';
import { parseIni } from '../../src/ini/document.js';
import { eventually, type Confhub } from './confhub.js';

/** A system.ini with one ini target rendering [gitea] and [cockpit], quick to sync. */
export const APP_TARGET_SYSTEM_INI = `[sync]
output_roots = @DIR@
debounce_min_ms = 30
debounce_max_ms = 300
poll_interval_ms = 300

[target:app]
sections = gitea, cockpit
format = ini
output = @DIR@/out/app.ini
reload = none
`;

/** `${path}` as config.ini writes a reference (built, so no JS string holds a template placeholder). */
export const ref = (path: string): string => `$\{${path}}`;

export interface Reply {
  status: number;
  body: Record<string, unknown> & { code?: string; details?: string; errors?: { field: string; code: string; message: string }[] };
}

/** One API call of a test's confhub, its JSON body parsed. */
export async function call(c: Confhub, path: string, init: RequestInit = {}): Promise<Reply> {
  const res = await c.api(path, init);
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : JSON.parse(text) };
}

export function valueAt(text: string, section: string, key: string): string | undefined {
  return parseIni(text).byName.get(section)?.byKey.get(key)?.value;
}

/** 1-based line of `key` in `[section]` of config.ini's text. */
export function lineAt(text: string, section: string, key: string): number {
  const entry = parseIni(text).byName.get(section)?.byKey.get(key);
  if (!entry) throw new Error(`${section}.${key} is not in the file`);
  return entry.firstLine + 1;
}

export async function ready(c: Confhub): Promise<void> {
  await eventually('ready', async () => (await fetch(`${c.url}/readyz`)).status === 200);
}

/** The keys of each settings.changed event, oldest first (read from the event log). */
export function changedKeys(c: Confhub): string[][] {
  const db = new BetterSqlite3(c.config.databasePath, { readonly: true });
  try {
    const rows = db.prepare("SELECT data FROM events WHERE type = 'settings.changed' ORDER BY id").all() as { data: string }[];
    return rows.map((row) => (JSON.parse(row.data) as { keys: string[] }).keys);
  } finally {
    db.close();
  }
}

export async function auditEntries(c: Confhub, query = ''): Promise<Record<string, unknown>[]> {
  return (await call(c, `/api/v1/audit?limit=200${query}`)).body.entries as Record<string, unknown>[];
}
