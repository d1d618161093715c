/** Bench settings from the environment: a bad value stops the bench before anything starts. */
export function positiveFromEnv(name: string, fallback: number, unit: 'seconds' | 'count'): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  const ok = unit === 'count' ? Number.isInteger(value) && value > 0 : Number.isFinite(value) && value > 0;
  if (!ok) {
    process.stderr.write(`bench: ${name} must be a positive ${unit === 'count' ? 'whole number' : 'number of seconds'}, got "${raw}"\n`);
    process.exit(2);
  }
  return value;
}
