/**
 * Child process for the crash-safety test: writes config.ini through the settings store in a
 * loop and prints "ack N" after write N was acknowledged. The parent kills it with SIGKILL.
 * Usage: node --import tsx test/support/write-loop.ts <dataDir> <startAt>
 */
import { pino } from 'pino';
import { createAuditLog } from '../../src/audit/audit-log.js';
import { openDatabase } from '../../src/db/database.js';
import { CONFIG_SCHEMA } from '../../src/settings/schema.js';
import { createSettingsStore } from '../../src/settings/store.js';

const [dataDir, startAt] = process.argv.slice(2);
const db = openDatabase({ path: `${dataDir}/confhub.db` });
const store = createSettingsStore({
  path: `${dataDir}/config/config.ini`,
  label: 'config.ini',
  schema: CONFIG_SCHEMA,
  audit: createAuditLog({ db }),
  logger: pino({ level: 'silent' }),
});

/** The payload grows and shrinks with n, so a torn write could not look like a whole one. */
export function payloadFor(n: number): string {
  return `p${n}-${'x'.repeat((n * 37) % 500)}`;
}

for (let n = Number(startAt); ; n++) {
  await store.update({
    changes: [
      { section: 'extra', key: 'counter', value: String(n) },
      { section: 'extra', key: 'payload', value: payloadFor(n) },
    ],
    actor: { type: 'system', id: 'crash-test' },
  });
  process.stdout.write(`ack ${n}\n`);
}
