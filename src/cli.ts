#!/usr/bin/env node
/**
 * confhub command line: `serve` (default) runs the service; `apikey show` prints the API key
 * for an admin UI, as the legacy `apphub getkey` did.
 */
import { isAppError } from './errors.js';
import { createLogger } from './log.js';
import { loadRuntimeConfig, type RuntimeConfig } from './runtime-config.js';
import { CONFIG_SCHEMA } from './settings/schema.js';
import { createReadOnlyIniStore } from './settings/store.js';
import { startServer, VERSION, type RunningServer } from './server.js';

const USAGE = `confhub ${VERSION}: configuration center for all-in-one container deployments

Usage:
  confhub [serve]        run the REST API (environment: CONFHUB_DATA_DIR, CONFHUB_CONFIG_DIR,
                         CONFHUB_HOST, CONFHUB_PORT, CONFHUB_API_KEY, CONFHUB_RATE_LIMIT,
                         CONFHUB_LOG_LEVEL; see README.md)
  confhub apikey show    print the API key clients send in the x-api-key header
  confhub --help         this text
`;

async function serve(config: RuntimeConfig): Promise<void> {
  const logger = createLogger({ level: config.logLevel });
  // Handlers first: a SIGTERM that arrives while starting still ends in a clean shutdown.
  let stopping = false;
  let started: Promise<RunningServer> | undefined;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    (started ?? Promise.reject(new Error('not started')))
      .then((server) => server.close())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  started = startServer(config, logger);
  const server = await started;
  if (server.secrets.apiKeyGenerated) logger.info('generated a new random API key (first start)');
  if (server.secrets.apiKeyFromEnvironment) logger.info('API key set from CONFHUB_API_KEY (first start)');
  if (server.secrets.passwordsGenerated.length > 0) logger.info({ keys: server.secrets.passwordsGenerated }, 'generated random service passwords (first start)');
  logger.info(
    { url: server.url, dataDir: config.dataDir, configDir: config.configDir },
    `confhub ${VERSION} listening on ${server.url}; read the API key with "npm run --silent apikey" (or "confhub apikey show"), send it as the x-api-key header`,
  );
}

function showApiKey(config: RuntimeConfig): void {
  const store = createReadOnlyIniStore({ path: config.configPath, label: 'config.ini', schema: CONFIG_SCHEMA });
  const key = store.read().doc.byName.get('api_key')?.byKey.get('key')?.value;
  if (!key) {
    process.stderr.write(`confhub: no API key in ${config.configPath} yet; start confhub once to generate it\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(`${key}\n`);
}

async function main(argv: string[]): Promise<void> {
  const [command = 'serve', ...rest] = argv;
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const config = loadRuntimeConfig();
  if (command === 'serve' && rest.length === 0) return serve(config);
  if (command === 'apikey' && rest[0] === 'show' && rest.length === 1) return showApiKey(config);
  process.stderr.write(`confhub: unknown command "${argv.join(' ')}"\n\n${USAGE}`);
  process.exitCode = 2;
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message = isAppError(error) ? `${error.message}${error.details !== error.message ? `: ${error.details}` : ''}` : String((error as Error)?.stack ?? error);
  process.stderr.write(`confhub: ${message}\n`);
  process.exit(1);
});
