/**
 * The listening server: confhub composed by main.ts, behind node:http with its timeouts, and a
 * shutdown that drains HTTP before the composition closes.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { answerClientError, createConfhub, type Confhub, type ConfhubOptions } from './main.js';
import { AppError } from './core/errors.js';
import type { RuntimeConfig } from './runtime-config.js';

export { VERSION } from './main.js';

/** What the start did (defaults installed, secrets made, template keys merged), and where it listens. */
export interface RunningServer extends Pick<Confhub, 'installed' | 'secrets' | 'upgrade'> {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const hostInUrl = (host: string): string => (host.includes(':') ? `[${host}]` : host);

/** Why the address cannot be taken, and which variable fixes it. */
const LISTEN_PROBLEMS: Readonly<Record<string, (port: number) => string>> = {
  EADDRINUSE: () => 'the address is in use by another process; set CONFHUB_PORT to a free port',
  EACCES: (port) =>
    port < 1024
      ? 'ports below 1024 need privileges this process does not have; set CONFHUB_PORT to 1024 or above'
      : 'this process may not bind it; set CONFHUB_PORT or CONFHUB_HOST to an address it may use',
  EADDRNOTAVAIL: () => 'no network interface of this machine has that address; set CONFHUB_HOST to one of its addresses (127.0.0.1, or 0.0.0.0 for all)',
  ENOTFOUND: () => 'the host name does not resolve; set CONFHUB_HOST to an address of this machine',
  EAI_AGAIN: () => 'the host name does not resolve; set CONFHUB_HOST to an address of this machine',
};

/** A listen error as one line naming the address and the fix; other errors as they are. */
function listenRefusal(error: unknown, config: Pick<RuntimeConfig, 'host' | 'port'>): unknown {
  const problem = LISTEN_PROBLEMS[(error as NodeJS.ErrnoException)?.code ?? ''];
  if (!problem) return error;
  const details = `cannot listen on ${hostInUrl(config.host)}:${config.port}: ${problem(config.port)}`;
  return new AppError('STARTUP_CONFIG_INVALID', { message: details, details, cause: error });
}

export async function startServer(
  config: RuntimeConfig,
  logger: Logger,
  options: Pick<ConfhubOptions, 'logLinesDropped' | 'notify'> = {},
): Promise<RunningServer> {
  const confhub = await createConfhub({ config, logger, syncWorker: 'thread', ...options });
  const server: Server = createServer(confhub.app);
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;
  server.on('clientError', answerClientError);
  server.on('upgrade', confhub.handleUpgrade);
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
    throw listenRefusal(error, config);
  }
  const { port } = server.address() as AddressInfo;
  const host = hostInUrl(config.host);
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
          // WebSockets are told confhub is going away (1001), and their sockets end with that.
          void confhub.websocket.close();
          // Event streams never end on their own.
          setTimeout(() => server.closeAllConnections(), 2000).unref();
        });
        await confhub.close();
      })();
      return closing;
    },
  };
}
