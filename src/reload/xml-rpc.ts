/**
 * The XML-RPC client the supervisord driver needs: a method call with string, boolean and integer
 * parameters, over HTTP on a unix socket or TCP, and its answer or fault decoded. The xmlrpc
 * package (with sax and xmlbuilder) costs about 8 MiB of resident memory in each thread that
 * loads it; supervisord's answers are Python's xmlrpc.client output, which this small reader
 * covers: string, int/i4/i8, boolean, double, nil, array and struct values.
 *
 * Failures keep the shapes the driver matches on: a fault rejects with `faultCode` and
 * `faultString`, an HTTP status other than 200 with `statusCode`, a socket error with node's `code`.
 */
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';

export type XmlRpcParam = string | boolean | number;
export type XmlRpcValue = string | number | boolean | null | XmlRpcValue[] | { [name: string]: XmlRpcValue };

export interface XmlRpcCallInput {
  /** Where and how to connect: `socketPath` or `host`/`port`, `path`, extra `headers` (Authorization). */
  readonly endpoint: Readonly<Pick<RequestOptions, 'socketPath' | 'host' | 'port' | 'path' | 'headers'>>;
  readonly secure: boolean;
  readonly method: string;
  readonly params: readonly XmlRpcParam[];
  readonly signal: AbortSignal;
}

export interface XmlRpcError extends Error {
  faultCode?: number;
  faultString?: string;
  statusCode?: number;
  code?: string;
}

/** A supervisord answer is a few KB (getAllProcessInfo of many programs at most). */
const MAX_ANSWER_BYTES = 1024 * 1024;

function escapeText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function encodeParam(param: XmlRpcParam): string {
  if (typeof param === 'string') return `<string>${escapeText(param)}</string>`;
  if (typeof param === 'boolean') return `<boolean>${param ? 1 : 0}</boolean>`;
  if (!Number.isSafeInteger(param)) throw new TypeError('XML-RPC parameters here are whole numbers');
  return `<int>${param}</int>`;
}

export function encodeCall(method: string, params: readonly XmlRpcParam[]): string {
  const encoded = params.map((p) => `<param><value>${encodeParam(p)}</value></param>`).join('');
  return `<?xml version="1.0"?><methodCall><methodName>${escapeText(method)}</methodName><params>${encoded}</params></methodCall>`;
}

const ENTITIES: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeText(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (whole, name: string) => {
    if (name.startsWith('#x')) return String.fromCodePoint(Number.parseInt(name.slice(2), 16));
    if (name.startsWith('#')) return String.fromCodePoint(Number.parseInt(name.slice(1), 10));
    return ENTITIES[name] ?? whole;
  });
}

type Token = { kind: 'open' | 'close' | 'empty'; name: string } | { kind: 'text'; text: string };

/** Elements and text of a document without attributes, comments or CDATA (what xmlrpc.client writes). */
function tokenize(xml: string): Token[] {
  const tokens: Token[] = [];
  const pattern = /<\?[^>]*\?>|<(\/?)([A-Za-z][\w.-]*)\s*(\/?)>|([^<]+)/gy;
  let at = 0;
  while (at < xml.length) {
    pattern.lastIndex = at;
    const match = pattern.exec(xml);
    if (!match) throw new Error(`not XML-RPC: unexpected markup at offset ${at}`);
    if (match[4] !== undefined) tokens.push({ kind: 'text', text: match[4] });
    else if (match[2] !== undefined) tokens.push({ kind: match[1] ? 'close' : match[3] ? 'empty' : 'open', name: match[2] });
    at = pattern.lastIndex;
  }
  return tokens;
}

function parseResponse(xml: string): { value: XmlRpcValue } | { fault: XmlRpcValue } {
  const tokens = tokenize(xml);
  let i = 0;
  const fail = (what: string): never => {
    throw new Error(`not XML-RPC: ${what}`);
  };
  /** Whitespace between elements (indentation) is not content. */
  const skipSpace = (): void => {
    for (let t = tokens[i]; t?.kind === 'text' && t.text.trim() === ''; t = tokens[++i]);
  };
  const isOpen = (): boolean => {
    skipSpace();
    return tokens[i]?.kind === 'open';
  };
  const open = (name: string): void => {
    skipSpace();
    const t = tokens[i++];
    if (t?.kind !== 'open' || t.name !== name) fail(`expected <${name}>`);
  };
  const close = (name: string): void => {
    skipSpace();
    const t = tokens[i++];
    if (t?.kind !== 'close' || t.name !== name) fail(`expected </${name}>`);
  };
  /** The text of an element whose start tag was read, up to its end tag ('' when empty). */
  const textOf = (name: string): string => {
    const t = tokens[i];
    if (t?.kind === 'text') i++;
    const after = tokens[i++];
    if (after?.kind !== 'close' || after.name !== name) fail(`expected </${name}>`);
    return t?.kind === 'text' ? decodeText(t.text) : '';
  };
  const number = (name: string): number => {
    const text = textOf(name).trim();
    const n = Number(text);
    if (text === '' || Number.isNaN(n)) fail(`<${name}> ${text}`);
    return n;
  };

  /** A value whose <value> start tag was read, through its end tag. */
  const value = (): XmlRpcValue => {
    const first = tokens[i];
    // No type element: the text is a string, whitespace included.
    if (first?.kind === 'text' || (first?.kind === 'close' && first.name === 'value')) {
      const next = tokens[i + (first.kind === 'text' ? 1 : 0)];
      if (next?.kind === 'close' && next.name === 'value') return textOf('value');
    }
    skipSpace();
    const t = tokens[i++];
    let result: XmlRpcValue;
    if (t?.kind === 'empty') {
      if (t.name === 'nil') result = null;
      else if (t.name === 'string') result = '';
      else return fail(`empty <${t.name}/>`);
    } else if (t?.kind !== 'open') {
      return fail('a value without a type');
    } else if (t.name === 'string') {
      result = textOf('string');
    } else if (t.name === 'int' || t.name === 'i4' || t.name === 'i8' || t.name === 'double') {
      result = number(t.name);
    } else if (t.name === 'boolean') {
      const text = textOf('boolean').trim();
      if (text !== '0' && text !== '1') fail(`<boolean> ${text}`);
      result = text === '1';
    } else if (t.name === 'array') {
      const items: XmlRpcValue[] = [];
      open('data');
      while (isOpen()) {
        open('value');
        items.push(value());
      }
      close('data');
      close('array');
      result = items;
    } else if (t.name === 'struct') {
      const members: { [name: string]: XmlRpcValue } = Object.create(null);
      while (isOpen()) {
        open('member');
        open('name');
        const name = textOf('name');
        open('value');
        members[name] = value();
        close('member');
      }
      close('struct');
      result = members;
    } else {
      return fail(`unsupported type <${t.name}>`);
    }
    close('value');
    return result;
  };

  open('methodResponse');
  skipSpace();
  const next = tokens[i];
  if (next?.kind === 'open' && next.name === 'fault') {
    i++;
    open('value');
    const fault = value();
    close('fault');
    close('methodResponse');
    return { fault };
  }
  open('params');
  open('param');
  open('value');
  const result = value();
  close('param');
  close('params');
  close('methodResponse');
  skipSpace();
  if (i !== tokens.length) fail('content after </methodResponse>');
  return { value: result };
}

/** The decoded answer of an XML-RPC body; throws a fault as an XmlRpcError with faultCode. */
export function decodeResponse(xml: string): XmlRpcValue {
  const parsed = parseResponse(xml);
  if ('value' in parsed) return parsed.value;
  const fault = (typeof parsed.fault === 'object' && parsed.fault !== null && !Array.isArray(parsed.fault) ? parsed.fault : {}) as Record<string, XmlRpcValue>;
  const faultString = String(fault.faultString ?? '');
  const error: XmlRpcError = new Error(`XML-RPC fault: ${faultString}`);
  error.faultCode = Number(fault.faultCode);
  error.faultString = faultString;
  throw error;
}

function readBody(response: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    response.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_ANSWER_BYTES) response.destroy(new Error(`the answer exceeds ${MAX_ANSWER_BYTES} bytes`));
      else chunks.push(chunk);
    });
    response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    response.on('error', reject);
    response.on('close', () => {
      if (!response.complete) reject(new Error('the connection closed before the answer ended'));
    });
  });
}

/** One call: resolves with the decoded value; no keep-alive agent, so nothing lingers after it. */
export async function xmlRpcCall({ endpoint, secure, method, params, signal }: XmlRpcCallInput): Promise<XmlRpcValue> {
  const body = encodeCall(method, params);
  // https is loaded only by the installations that use it.
  const request = secure ? (await import('node:https')).request : httpRequest;
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(
      {
        ...endpoint,
        method: 'POST',
        agent: false,
        signal,
        headers: { ...endpoint.headers, 'content-type': 'text/xml', 'content-length': Buffer.byteLength(body) },
      },
      resolve,
    );
    req.on('error', reject);
    req.end(body);
  });
  const text = await readBody(response);
  if (response.statusCode !== 200) {
    const error: XmlRpcError = new Error(`HTTP ${response.statusCode}`);
    error.statusCode = response.statusCode;
    throw error;
  }
  return decodeResponse(text);
}
