/**
 * The HTTP side of the WebSocket channel (events/websocket.ts): the server's `upgrade` listener,
 * which takes upgrades of `GET /api/v1/ws` (and the legacy `/api/ws`) through the rate limits
 * every /api request passes and hands them to the channel (any other upgrade is 404), and the
 * key check the channel runs, with the verifier and the failed-authentication limit of the HTTP
 * API (api-access.ts).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Express, Request } from 'express';
import { AppError } from '../core/errors.js';
import { refuseUpgrade, type WebSocketChannel } from '../events/websocket.js';
import type { ReadOnlyIniStore, Snapshot } from '../settings/store.js';
import type { ApiAccess } from './api-access.js';
import { OPERATIONS } from './operations.js';

const ignore = (): void => undefined;

/**
 * The client address as Express's `req.ip` has it (the `trust proxy` setting applied), for a
 * request Express never sees: the rate limits key on it, so both ways in count alike.
 */
function clientAddress(app: Express, req: IncomingMessage): string {
  // app.request is the prototype of Express's requests; its `ip` getter reads only these.
  const view = Object.create(app.request, { headers: { value: req.headers }, socket: { value: req.socket }, connection: { value: req.socket } }) as Request;
  return view.ip ?? req.socket.remoteAddress ?? '';
}

export interface WebSocketGateDeps {
  app: Express;
  access: ApiAccess;
  settings: ReadOnlyIniStore;
}

/** The channel's `authenticate`: the API key check of the HTTP API; a refusal counts toward the failed-authentication limit. */
export function createWebSocketAuthentication({
  app,
  access,
  settings,
}: WebSocketGateDeps): (input: { req: IncomingMessage; key: string | undefined }) => boolean {
  return ({ req, key }) => {
    let snapshot: Snapshot | undefined;
    if (key) {
      try {
        snapshot = settings.read();
      } catch {
        // config.ini does not parse now: the last key that did still works (configuredKey).
      }
    }
    const verdict = access.keys.verify(key, key ? access.configuredKey(snapshot) : undefined);
    if (!verdict.ok) access.limits.authenticationRefusedFrom(clientAddress(app, req));
    return verdict.ok;
  };
}

/**
 * Whether a key is (still) the API key, with nothing counted: the key a long-lived connection (a
 * WebSocket, an event stream) was opened with, checked again on each heartbeat.
 */
export function createConnectedKeyCheck({ access, settings }: Pick<WebSocketGateDeps, 'access' | 'settings'>): (key: string | undefined) => boolean {
  return (key) => {
    let snapshot: Snapshot | undefined;
    try {
      snapshot = settings.read();
    } catch {
      // config.ini does not parse now: the last key that did still works (configuredKey).
    }
    return access.keys.verify(key, key ? access.configuredKey(snapshot) : undefined).ok;
  };
}

/** The node:http server's `upgrade` listener. */
export function createUpgradeListener({ app, access, channel }: Omit<WebSocketGateDeps, 'settings'> & { channel: WebSocketChannel }) {
  const { path } = OPERATIONS.openWebSocket;
  const paths: ReadonlySet<string> = new Set([`/api/v1${path}`, `/api${path}`]);
  return (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', ignore);
    const url = req.url ?? '/';
    const at = url.indexOf('?');
    // As the routes match (ROUTING): case-sensitive, a trailing slash allowed.
    const pathname = (at === -1 ? url : url.slice(0, at)).replace(/(.)\/$/, '$1');
    if (!paths.has(pathname)) {
      refuseUpgrade(socket, { error: new AppError('NOT_FOUND', { details: `No WebSocket at ${pathname}` }) });
      return;
    }
    const refusal = access.limits.admitAddress(clientAddress(app, req));
    if (refusal) {
      refuseUpgrade(socket, { error: refusal.error, headers: { 'Retry-After': String(refusal.retryAfterSeconds) } });
      return;
    }
    channel.handleUpgrade(req, socket, head);
  };
}
