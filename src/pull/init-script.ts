/**
 * init/confhub-init.sh, the entrypoint script a service runs to pull its files: served by
 * GET /api/v1/init.sh and shipped in the image as /usr/local/bin/confhub-init.sh. Read once, on
 * its first request.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export const INIT_SCRIPT_PATH = fileURLToPath(new URL('../../init/confhub-init.sh', import.meta.url));

export function createInitScriptReader(path = INIT_SCRIPT_PATH): () => Promise<Buffer> {
  let script: Promise<Buffer> | undefined;
  return () => {
    script ??= readFile(path).catch((error: unknown) => {
      script = undefined;
      throw error;
    });
    return script;
  };
}
