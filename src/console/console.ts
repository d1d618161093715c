#!/usr/bin/env node
/**
 * Entry point of the console program (see console-server.ts); supervisord starts it as
 *   node console.js --config /data/services/console/console.json --upstream http://127.0.0.1:8080
 * Exit code 2 when it cannot start with these settings.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { CONSOLE_DEFAULTS, createConsoleServer, parseConsoleSettings, type ConsoleSettings } from './console-server.js';

function loadSettings(path: string): ConsoleSettings {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      process.stderr.write(`console: ${path} does not exist yet; using the defaults until confhub renders it\n`);
      return CONSOLE_DEFAULTS;
    }
    throw new Error(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  return parseConsoleSettings(text);
}

function main(): void {
  const { values } = parseArgs({ options: { config: { type: 'string' }, upstream: { type: 'string' } }, strict: true });
  if (!values.config || !values.upstream) throw new Error('usage: console-server --config FILE --upstream http://127.0.0.1:PORT');
  const upstream = new URL(values.upstream);
  if (upstream.protocol !== 'http:') throw new Error('--upstream must be an http:// URL');
  const settings = loadSettings(values.config);
  const server = createConsoleServer({ settings, upstream });
  server.on('error', (error) => {
    process.stderr.write(`console: cannot listen on ${settings.bind}:${settings.port}: ${(error as NodeJS.ErrnoException).code ?? error.message}\n`);
    process.exit(2);
  });
  server.listen(settings.port, settings.bind, () =>
    process.stdout.write(`console: listening on http://${settings.bind}:${settings.port}, passing /api/ to ${upstream.origin}\n`),
  );
  const stop = (): void => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

try {
  main();
} catch (error) {
  process.stderr.write(`console: ${(error as Error).message}\n`);
  process.exit(2);
}
