/** A WebSocket client of confhub's channel (the `ws` package), keeping every message it got. */
import WebSocket from 'ws';

export interface WsMessage {
  readonly type?: string;
  readonly rev?: number;
  readonly ConfigChanged?: { tenant_id: string; change_type: string };
  readonly [field: string]: unknown;
}

export interface WsClient {
  readonly ws: WebSocket;
  readonly messages: WsMessage[];
  /** The first message (already received or still to come) that matches. */
  next(match: (message: WsMessage) => boolean, timeoutMs?: number): Promise<WsMessage>;
  /** Resolves once the handshake succeeded; rejects when it was refused (see `refused`). */
  readonly opened: Promise<void>;
  /** The close code and reason, once closed. */
  readonly closed: Promise<{ code: number; reason: string }>;
  /** A refused handshake: its status, headers and body. */
  readonly refused: Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>;
  /** Sec-WebSocket-Protocol of the server's 101 answer. */
  readonly acceptedProtocolHeader: () => string | undefined;
  close(): void;
}

export interface ConnectWsOptions {
  protocols?: string[];
  headers?: Record<string, string>;
  origin?: string;
  /** false: the client does not answer pings (a dead peer). */
  autoPong?: boolean;
}

export function connectWs(url: string, { protocols = [], headers = {}, origin, autoPong = true }: ConnectWsOptions = {}): WsClient {
  const ws = new WebSocket(url, protocols, { headers, ...(origin ? { origin } : {}), autoPong });
  const messages: WsMessage[] = [];
  const waiters: { match: (m: WsMessage) => boolean; resolve: (m: WsMessage) => void }[] = [];
  let protocolHeader: string | undefined;
  ws.on('upgrade', (res) => {
    protocolHeader = res.headers['sec-websocket-protocol'];
  });
  ws.on('message', (data, isBinary) => {
    const message = JSON.parse(isBinary ? '"binary"' : data.toString('utf8')) as WsMessage;
    messages.push(message);
    for (const waiter of [...waiters]) {
      if (waiter.match(message)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(message);
      }
    }
  });
  const refused = new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
    ws.once('open', () => reject(new Error('the handshake was expected to be refused, but it succeeded')));
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
  });
  refused.catch(() => undefined);
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  opened.catch(() => undefined);
  // A refused handshake emits an error after unexpected-response; a closed one emits close.
  ws.on('error', () => undefined);
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') }));
  });
  return {
    ws,
    messages,
    next(match, timeoutMs = 10_000) {
      const found = messages.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching message in ${timeoutMs} ms; got ${JSON.stringify(messages).slice(0, 500)}`)), timeoutMs);
        waiters.push({
          match,
          resolve: (message) => {
            clearTimeout(timer);
            resolve(message);
          },
        });
      });
    },
    opened,
    closed,
    refused,
    acceptedProtocolHeader: () => protocolHeader,
    close: () => ws.terminate(),
  };
}
