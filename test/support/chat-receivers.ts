/**
 * Stand-ins for the chat services' webhook endpoints: real HTTP servers on 127.0.0.1 that accept a
 * body only within the service's documented limits and refuse it as the service does (its status
 * and error body), record every request, and can be told to answer errors for the next requests.
 *
 * Lengths the services state in characters are counted in UTF-16 units, never fewer than code
 * points: a body these accept passes whichever way the service counts. The error bodies follow
 * the services' documented shapes; where a service documents no code for a case (DingTalk's text
 * length, Feishu's body size) the closest documented one is used.
 *
 * `checkChatBody` is the same check without the server, for property tests.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChatKind } from '../../src/notify/chat-formats.js';

export interface Refusal {
  readonly status: number;
  readonly body: string;
  readonly contentType: string;
}

export interface RecordedRequest {
  readonly method: string;
  /** Path and query. */
  readonly url: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
  /** The refusal sent, when the receiver (not an injected answer) refused the body. */
  readonly refused?: Refusal;
}

export interface InjectedAnswer {
  readonly status: number;
  readonly body?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface ChatReceiverOptions {
  /** DingTalk's "custom keyword" security setting: a message without it is refused (310000). */
  readonly keyword?: string;
}

export interface ChatReceiver {
  readonly kind: ChatKind;
  /** Where to POST: `http://127.0.0.1:<port>/hook`. */
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Answer the next `count` requests with this instead of judging them (they are still recorded). */
  failNext(count: number, answer: InjectedAnswer): void;
  close(): Promise<void>;
}

const MAX_READ_BYTES = 4 * 1024 * 1024;
const TEXT = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';

type Json = Record<string, unknown>;

const units = (value: unknown): number => (typeof value === 'string' ? value.length : 0);
const bytes = (value: unknown): number => (typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : 0);
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

function parse(body: string): Json | undefined {
  try {
    const value: unknown = JSON.parse(body);
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

// Slack: errors are a plain-text token with a 4xx status.
function slackRefusal(token: string): Refusal {
  return { status: 400, body: token, contentType: TEXT };
}

function checkSlack(body: string): Refusal | undefined {
  const json = parse(body);
  if (json === undefined) return slackRefusal('invalid_payload');
  const { text, blocks } = json;
  if (text !== undefined && typeof text !== 'string') return slackRefusal('invalid_payload');
  if (blocks !== undefined && !Array.isArray(blocks)) return slackRefusal('invalid_blocks');
  const hasBlocks = Array.isArray(blocks) && blocks.length > 0;
  if (!hasBlocks && (typeof text !== 'string' || text.trim() === '')) return slackRefusal('no_text');
  if (Array.isArray(blocks)) {
    if (blocks.length > 50) return slackRefusal('invalid_blocks');
    for (const block of blocks) {
      if (!isObject(block)) return slackRefusal('invalid_blocks');
      if (block.type === 'divider') continue;
      if (block.type !== 'section') return slackRefusal('invalid_blocks');
      const object = block.text;
      if (!isObject(object) || (object.type !== 'mrkdwn' && object.type !== 'plain_text')) return slackRefusal('invalid_blocks');
      if (typeof object.text !== 'string' || object.text.length < 1 || units(object.text) > 3000) return slackRefusal('invalid_blocks');
    }
  }
  return undefined;
}

// Discord: JSON errors; 50035 "Invalid Form Body" names the failing field.
function discordRefusal(status: number, error: Json): Refusal {
  return { status, body: JSON.stringify(error), contentType: JSON_TYPE };
}

function formError(field: string, message: string): Refusal {
  return discordRefusal(400, { code: 50035, errors: { [field]: { _errors: [{ code: 'BASE_TYPE_MAX_LENGTH', message }] } }, message: 'Invalid Form Body' });
}

function checkDiscord(body: string): Refusal | undefined {
  const json = parse(body);
  if (json === undefined) return discordRefusal(400, { code: 50109, message: 'The request body contains invalid JSON.' });
  const { content, embeds } = json;
  const embedList = Array.isArray(embeds) ? embeds : [];
  if ((typeof content !== 'string' || content === '') && embedList.length === 0)
    return discordRefusal(400, { code: 50006, message: 'Cannot send an empty message' });
  if (units(content) > 2000) return formError('content', 'Must be 2000 or fewer in length.');
  if (embedList.length > 10) return formError('embeds', 'Must be 10 or fewer in length.');
  let total = 0;
  for (const [index, embed] of embedList.entries()) {
    if (!isObject(embed)) return formError(`embeds.${index}`, 'Invalid embed.');
    const fields = Array.isArray(embed.fields) ? embed.fields.filter(isObject) : [];
    const footer = isObject(embed.footer) ? embed.footer.text : undefined;
    const author = isObject(embed.author) ? embed.author.name : undefined;
    if (units(embed.title) > 256) return formError(`embeds.${index}.title`, 'Must be 256 or fewer in length.');
    if (units(embed.description) > 4096) return formError(`embeds.${index}.description`, 'Must be 4096 or fewer in length.');
    if (fields.length > 25) return formError(`embeds.${index}.fields`, 'Must be 25 or fewer in length.');
    if (fields.some((field) => units(field.name) > 256)) return formError(`embeds.${index}.fields.name`, 'Must be 256 or fewer in length.');
    if (fields.some((field) => units(field.value) > 1024)) return formError(`embeds.${index}.fields.value`, 'Must be 1024 or fewer in length.');
    if (units(footer) > 2048) return formError(`embeds.${index}.footer.text`, 'Must be 2048 or fewer in length.');
    if (units(author) > 256) return formError(`embeds.${index}.author.name`, 'Must be 256 or fewer in length.');
    total += units(embed.title) + units(embed.description) + units(footer) + units(author);
    total += fields.reduce((sum, field) => sum + units(field.name) + units(field.value), 0);
  }
  if (total > 6000) return formError('embeds', 'Embed size exceeds maximum size of 6000');
  return undefined;
}

// WeCom and DingTalk: HTTP 200 with {errcode, errmsg}.
function errcode(code: number, errmsg: string): Refusal {
  return { status: 200, body: JSON.stringify({ errcode: code, errmsg }), contentType: JSON_TYPE };
}

function checkWecom(body: string): Refusal | undefined {
  const json = parse(body);
  if (json === undefined) return errcode(40058, 'invalid Request Parameter, Warning: wrong json format.');
  const { msgtype } = json;
  if (msgtype !== 'markdown' && msgtype !== 'text') return errcode(40008, 'invalid message type');
  const part = json[msgtype];
  const content = isObject(part) ? part.content : undefined;
  if (typeof content !== 'string' || content === '') return errcode(44004, 'empty content');
  const limit = msgtype === 'markdown' ? 4096 : 2048;
  if (bytes(content) > limit) return errcode(40058, `${msgtype}.content exceed max length ${limit}`);
  return undefined;
}

function checkDingtalk(body: string, options: ChatReceiverOptions): Refusal | undefined {
  const json = parse(body);
  if (json === undefined) return errcode(40035, '缺少参数 json');
  if (json.msgtype !== 'markdown' && json.msgtype !== 'text') return errcode(40035, '缺少参数 msgtype');
  const part = json[json.msgtype];
  if (!isObject(part)) return errcode(40035, `缺少参数 ${json.msgtype}`);
  const text = json.msgtype === 'markdown' ? part.text : part.content;
  if (json.msgtype === 'markdown' && (typeof part.title !== 'string' || part.title === '')) return errcode(40035, '缺少参数 title');
  if (typeof text !== 'string' || text === '') return errcode(40035, '缺少参数 text');
  if (units(text) > 5000) return errcode(460101, 'message too long');
  if (options.keyword !== undefined) {
    const seen = `${typeof part.title === 'string' ? part.title : ''}\n${text}`;
    if (!seen.includes(options.keyword)) return errcode(310000, 'keywords not in content');
  }
  return undefined;
}

// Feishu: {code, msg, data}; a body it cannot take is a 400 with 9499 "Bad Request".
function feishuRefusal(code: number, msg: string): Refusal {
  return { status: 400, body: JSON.stringify({ code, data: {}, msg }), contentType: JSON_TYPE };
}

function checkFeishu(body: string): Refusal | undefined {
  if (Buffer.byteLength(body, 'utf8') > 20_000) return feishuRefusal(9499, 'Bad Request');
  const json = parse(body);
  if (json === undefined) return feishuRefusal(9499, 'Bad Request');
  if (json.msg_type !== 'text') return feishuRefusal(9499, 'Bad Request');
  const text = isObject(json.content) ? json.content.text : undefined;
  if (typeof text !== 'string' || text === '') return feishuRefusal(9499, 'Bad Request');
  return undefined;
}

/** The refusal a service would send for this body, or undefined when it would accept it. */
export function checkChatBody(kind: ChatKind, body: string, options: ChatReceiverOptions = {}): Refusal | undefined {
  switch (kind) {
    case 'slack':
      return checkSlack(body);
    case 'discord':
      return checkDiscord(body);
    case 'wecom':
      return checkWecom(body);
    case 'dingtalk':
      return checkDingtalk(body, options);
    case 'feishu':
      return checkFeishu(body);
  }
}

/** What each service answers when it takes a message. */
function accepted(kind: ChatKind, url: string): { status: number; body: string; contentType: string } {
  switch (kind) {
    case 'slack':
      return { status: 200, body: 'ok', contentType: TEXT };
    case 'discord':
      // 204 unless the sender asked to wait for the created message.
      return url.includes('wait=true')
        ? { status: 200, body: JSON.stringify({ id: '1', type: 0, content: '' }), contentType: JSON_TYPE }
        : { status: 204, body: '', contentType: JSON_TYPE };
    case 'wecom':
    case 'dingtalk':
      return { status: 200, body: JSON.stringify({ errcode: 0, errmsg: 'ok' }), contentType: JSON_TYPE };
    case 'feishu':
      return { status: 200, body: JSON.stringify({ code: 0, data: {}, msg: 'success' }), contentType: JSON_TYPE };
  }
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_READ_BYTES) throw new Error('body too large for a test receiver');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(response: ServerResponse, answer: { status: number; body: string; contentType: string; headers?: Readonly<Record<string, string>> }): void {
  response.writeHead(answer.status, { 'content-type': answer.contentType, ...answer.headers });
  response.end(answer.status === 204 ? undefined : answer.body);
}

export async function startChatReceiver(kind: ChatKind, options: ChatReceiverOptions = {}): Promise<ChatReceiver> {
  const requests: RecordedRequest[] = [];
  const injected: InjectedAnswer[] = [];
  const server = createServer((request, response) => {
    readBody(request).then(
      (body) => {
        const url = request.url ?? '/';
        const base = { method: request.method ?? '', url, headers: { ...request.headers }, body };
        const next = injected.shift();
        if (next !== undefined) {
          requests.push(base);
          send(response, { status: next.status, body: next.body ?? '', contentType: JSON_TYPE, ...(next.headers ? { headers: next.headers } : {}) });
          return;
        }
        const refused =
          request.method !== 'POST'
            ? { status: 405, body: 'method not allowed', contentType: TEXT }
            : !String(request.headers['content-type'] ?? '').startsWith('application/json')
              ? checkChatBody(kind, 'not json', options)
              : checkChatBody(kind, body, options);
        requests.push(refused === undefined ? base : { ...base, refused });
        send(response, refused ?? accepted(kind, url));
      },
      (error: unknown) => {
        response.writeHead(413, { 'content-type': TEXT });
        response.end(String(error));
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    kind,
    url: `http://127.0.0.1:${port}/hook`,
    requests,
    failNext(count, answer) {
      for (let index = 0; index < count; index += 1) injected.push(answer);
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
