/**
 * Installs config.ini and system.ini from the shipped config/ folder when the config directory
 * lacks them. A file already present is used as it is; the shipped files are never modified.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../fs/atomic-write.js';

/** config/ at the package root, from src/bootstrap or dist/bootstrap alike. */
export const SHIPPED_CONFIG_DIR = fileURLToPath(new URL('../../config', import.meta.url));

export interface InstallDefaultsInput {
  dataDir: string;
  configDir: string;
  configPath: string;
  systemPath: string;
  shippedDir?: string;
}

export async function installShippedDefaults(input: InstallDefaultsInput): Promise<string[]> {
  const shippedDir = input.shippedDir ?? SHIPPED_CONFIG_DIR;
  await mkdir(input.dataDir, { recursive: true, mode: 0o700 });
  await mkdir(input.configDir, { recursive: true, mode: 0o700 });
  const installed: string[] = [];
  // config.ini holds credentials: owner-only. system.ini holds none.
  for (const [target, mode] of [
    [input.configPath, 0o600],
    [input.systemPath, 0o644],
  ] as const) {
    if (existsSync(target)) continue;
    const content = await readFile(`${shippedDir}/${basename(target)}`);
    await writeFileAtomic(target, content, { mode });
    installed.push(target);
  }
  return installed;
}
