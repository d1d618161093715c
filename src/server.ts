/**
 * The listening server: confhub composed by main.ts, behind node:http with its timeouts, and a
 * shutdown that drains HTTP before the composition closes.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { answerClientError, createConfhub, type Confhub, type ConfhubOptions } from './main.js';
import type { RuntimeConfig } from './runtime-config.js';

export { VERSION } from './main.js';

/** What the start did (defaults installed, secrets made, template keys merged), and where it listens. */
export interface RunningServer extends Pick<Confhub, 'installed' | 'secrets' | 'upgrade'> {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startServer(config: RuntimeConfig, logger: Logger, options: Pick<ConfhubOptions, 'logLinesDropped'> = {}): Promise<RunningServer> {
  const confhub = await createConfhub({ config, logger, syncWorker: 'thread', ...options });
  const server: Server = createServer(confhub.app);
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;
  server.on('clientError', answerClientError);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await confhub.close();
    throw error;
  }
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    installed: confhub.installed,
    secrets: confhub.secrets,
    upgrade: confhub.upgrade,
    close() {
      // Stop taking requests, let the writes in flight land, then let the worker finish its apply.
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          // Event streams never end on their own.
          setTimeout(() => server.closeAllConnections(), 2000).unref();
        });
        await confhub.close();
      })();
      return closing;
    },
  };
}
