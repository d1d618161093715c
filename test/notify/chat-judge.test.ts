import { describe, expect, it } from 'vitest';
import { CHAT_ADAPTERS, CHAT_KINDS, type ChatKind, type DeliveryAnswer, type DeliveryVerdict, judgeStandard } from '../../src/notify/chat-formats.js';

interface Case {
  readonly answer: DeliveryAnswer;
  /** ok | retry | give-up | disable, and the retry delay when one is expected. */
  readonly expect: 'ok' | 'retry' | 'give-up' | 'disable';
  readonly retryAfterMs?: number;
  /** A piece the reason must contain. */
  readonly reason?: string;
}

const json = (value: unknown): string => JSON.stringify(value);

function outcome(verdict: DeliveryVerdict): Case['expect'] {
  if (verdict.ok) return 'ok';
  if (verdict.disable === true) return 'disable';
  return verdict.retry ? 'retry' : 'give-up';
}

function check(judge: (answer: DeliveryAnswer) => DeliveryVerdict, cases: readonly Case[]): void {
  for (const item of cases) {
    const verdict = judge(item.answer);
    const label = `${item.answer.status} ${item.answer.body.slice(0, 60)}`;
    expect(outcome(verdict), label).toBe(item.expect);
    if (!verdict.ok) {
      expect(verdict.reason, label).toMatch(/\S/);
      if (item.reason !== undefined) expect(verdict.reason, label).toContain(item.reason);
      expect(verdict.retryAfterMs, label).toBe(item.retryAfterMs);
      if (verdict.disable === true) expect(verdict.retry, label).toBe(false);
    }
  }
}

/** What every kind shares: redirects are failures never followed, retried; 408/429/5xx retried. */
function transportCases(): Case[] {
  return [
    { answer: { status: 301, body: '' }, expect: 'retry', reason: 'HTTP 301' },
    { answer: { status: 302, body: 'ok' }, expect: 'retry', reason: 'redirect' },
    { answer: { status: 307, body: '' }, expect: 'retry', reason: 'HTTP 307' },
    { answer: { status: 408, body: '' }, expect: 'retry', reason: 'HTTP 408' },
    { answer: { status: 500, body: 'rollup_error' }, expect: 'retry', reason: 'HTTP 500' },
    { answer: { status: 502, body: '<html>bad gateway</html>' }, expect: 'retry', reason: 'HTTP 502' },
    { answer: { status: 503, body: '', retryAfterMs: 30_000 }, expect: 'retry', retryAfterMs: 30_000 },
  ];
}

/** A result code of success in a 2xx other than 200: not the service's answer (a proxy, a portal), retried. */
function notIn200(success: Record<string, unknown> = { errcode: 0, errmsg: 'ok' }): Case[] {
  return [201, 202, 204, 206].map((status) => ({ answer: { status, body: json(success) }, expect: 'retry', reason: `HTTP ${status} with code 0, not 200` }));
}

describe('judging answers', () => {
  it('standard: 2xx delivered, 410 disables, everything else retried with the status named', () => {
    check(judgeStandard, [
      { answer: { status: 200, body: '' }, expect: 'ok' },
      { answer: { status: 204, body: '' }, expect: 'ok' },
      { answer: { status: 299, body: 'whatever' }, expect: 'ok' },
      { answer: { status: 410, body: '' }, expect: 'disable', reason: '410' },
      { answer: { status: 429, body: '', retryAfterMs: 5000 }, expect: 'retry', retryAfterMs: 5000, reason: 'HTTP 429' },
      { answer: { status: 400, body: '' }, expect: 'retry', reason: 'HTTP 400' },
      { answer: { status: 401, body: '' }, expect: 'retry', reason: 'HTTP 401' },
      { answer: { status: 404, body: '' }, expect: 'retry', reason: 'HTTP 404' },
      { answer: { status: 101, body: '' }, expect: 'retry', reason: 'HTTP 101' },
      ...transportCases(),
    ]);
  });

  for (const kind of CHAT_KINDS) {
    it(`${kind}: a redirect is never success, 408/429/5xx are retried`, () => {
      const cases = transportCases().filter((item) => !(kind === 'discord' && item.answer.status === 429));
      check(CHAT_ADAPTERS[kind].judge, [...cases, { answer: { status: 429, body: '', retryAfterMs: 1000 }, expect: 'retry', retryAfterMs: 1000 }]);
    });
  }

  it('slack: 200 ok delivered; 400 tokens not retried; gone channel, service or team disables; 429 honours Retry-After', () => {
    check(CHAT_ADAPTERS.slack.judge, [
      { answer: { status: 200, body: 'ok' }, expect: 'ok' },
      { answer: { status: 200, body: 'ok\n' }, expect: 'ok' },
      { answer: { status: 200, body: json({ ok: true }) }, expect: 'ok' },
      { answer: { status: 200, body: json({ ok: false, error: 'invalid_auth' }) }, expect: 'give-up', reason: 'invalid_auth' },
      { answer: { status: 200, body: '<html>captive portal</html>' }, expect: 'retry', reason: 'without "ok"' },
      { answer: { status: 400, body: 'invalid_payload' }, expect: 'give-up', reason: 'invalid_payload' },
      { answer: { status: 400, body: 'no_text' }, expect: 'give-up', reason: 'no_text' },
      { answer: { status: 400, body: 'invalid_blocks' }, expect: 'give-up', reason: 'invalid_blocks' },
      { answer: { status: 403, body: 'action_prohibited' }, expect: 'disable', reason: 'action_prohibited' },
      { answer: { status: 403, body: 'invalid_token' }, expect: 'disable' },
      { answer: { status: 404, body: 'channel_not_found' }, expect: 'disable', reason: 'channel_not_found' },
      { answer: { status: 404, body: 'no_service' }, expect: 'disable', reason: 'no_service' },
      { answer: { status: 404, body: '<html>not found</html>' }, expect: 'give-up', reason: 'HTTP 404' },
      { answer: { status: 410, body: 'channel_is_archived' }, expect: 'disable', reason: 'channel_is_archived' },
      { answer: { status: 429, body: json({ ok: false }), retryAfterMs: 30_000 }, expect: 'retry', retryAfterMs: 30_000 },
    ]);
  });

  it('discord: 204/200 delivered, no other 2xx (retried, named); 429 waits Retry-After or retry_after; unknown webhook or bad token disables; other 4xx not retried', () => {
    check(CHAT_ADAPTERS.discord.judge, [
      { answer: { status: 204, body: '' }, expect: 'ok' },
      { answer: { status: 200, body: json({ id: '1' }) }, expect: 'ok' },
      { answer: { status: 201, body: json({ id: '1' }) }, expect: 'retry', reason: 'HTTP 201, not 204 or 200' },
      { answer: { status: 202, body: '' }, expect: 'retry', reason: 'HTTP 202' },
      { answer: { status: 206, body: '' }, expect: 'retry', reason: 'HTTP 206' },
      {
        answer: { status: 429, body: json({ message: 'You are being rate limited.', retry_after: 64.57, global: false }) },
        expect: 'retry',
        retryAfterMs: 64_570,
      },
      { answer: { status: 429, body: json({ retry_after: 64.57 }), retryAfterMs: 2000 }, expect: 'retry', retryAfterMs: 2000 },
      { answer: { status: 429, body: 'slow down' }, expect: 'retry', retryAfterMs: undefined },
      { answer: { status: 404, body: json({ message: 'Unknown Webhook', code: 10015 }) }, expect: 'disable', reason: '10015' },
      { answer: { status: 401, body: json({ message: 'Invalid Webhook Token', code: 50027 }) }, expect: 'disable', reason: '50027' },
      {
        answer: { status: 400, body: json({ code: 50035, message: 'Invalid Form Body', errors: {} }) },
        expect: 'give-up',
        reason: 'code 50035 (Invalid Form Body)',
      },
      { answer: { status: 404, body: '' }, expect: 'give-up', reason: 'HTTP 404' },
      { answer: { status: 403, body: json({ code: 50013, message: 'Missing Permissions' }) }, expect: 'give-up' },
    ]);
  });

  it('wecom: errcode 0 in a 200 body delivered; 45009 and -1 retried; 93000 disables; other codes not retried; non-JSON 200 retried', () => {
    check(CHAT_ADAPTERS.wecom.judge, [
      { answer: { status: 200, body: json({ errcode: 0, errmsg: 'ok' }) }, expect: 'ok' },
      { answer: { status: 200, body: json({ errcode: 45009, errmsg: 'api freq out of limit' }) }, expect: 'retry', retryAfterMs: 60_000, reason: '45009' },
      { answer: { status: 200, body: json({ errcode: 45009 }), retryAfterMs: 5000 }, expect: 'retry', retryAfterMs: 5000 },
      { answer: { status: 200, body: json({ errcode: -1, errmsg: 'system busy' }) }, expect: 'retry', reason: 'system busy' },
      { answer: { status: 200, body: json({ errcode: 93000, errmsg: 'invalid webhook url, hint: [1]' }) }, expect: 'disable', reason: '93000' },
      { answer: { status: 200, body: json({ errcode: 40058, errmsg: 'markdown.content exceed max length 4096' }) }, expect: 'give-up', reason: '40058' },
      { answer: { status: 200, body: json({ errcode: 40008, errmsg: 'invalid message type' }) }, expect: 'give-up' },
      { answer: { status: 200, body: 'ok' }, expect: 'retry', reason: 'without a result code' },
      { answer: { status: 200, body: json({ message: 'hello' }) }, expect: 'retry' },
      { answer: { status: 404, body: 'not found' }, expect: 'give-up', reason: 'HTTP 404' },
      ...notIn200(),
    ]);
  });

  it('dingtalk: errcode 0 in a 200 body delivered; 130101/660026 retried after the throttle; token gone disables; 310000 not retried', () => {
    check(CHAT_ADAPTERS.dingtalk.judge, [
      { answer: { status: 200, body: json({ errcode: 0, errmsg: 'ok' }) }, expect: 'ok' },
      { answer: { status: 200, body: json({ errcode: 130101, errmsg: 'send too fast, exceed 20 times per minute' }) }, expect: 'retry', retryAfterMs: 600_000 },
      { answer: { status: 200, body: json({ errcode: 660026, errmsg: 'too fast' }) }, expect: 'retry', retryAfterMs: 600_000 },
      { answer: { status: 200, body: json({ errcode: -1, errmsg: '系统繁忙' }) }, expect: 'retry' },
      { answer: { status: 200, body: json({ errcode: 300001, errmsg: 'token is not exist' }) }, expect: 'disable', reason: 'token is not exist' },
      { answer: { status: 200, body: json({ errcode: 300005, errmsg: 'token is not exist' }) }, expect: 'disable' },
      { answer: { status: 200, body: json({ errcode: 310000, errmsg: 'keywords not in content' }) }, expect: 'give-up', reason: 'keywords not in content' },
      { answer: { status: 200, body: json({ errcode: 310000, errmsg: 'sign not match' }) }, expect: 'give-up' },
      { answer: { status: 200, body: '<html></html>' }, expect: 'retry' },
      ...notIn200(),
    ]);
  });

  it('feishu: code 0 (or legacy StatusCode 0) in a 200 body delivered; 11232 retried; 19001 disables; 19021/19024/9499 not retried', () => {
    check(CHAT_ADAPTERS.feishu.judge, [
      { answer: { status: 200, body: json({ code: 0, data: {}, msg: 'success' }) }, expect: 'ok' },
      { answer: { status: 200, body: json({ Extra: null, StatusCode: 0, StatusMessage: 'success' }) }, expect: 'ok' },
      { answer: { status: 200, body: json({ code: 11232, msg: 'frequency limited psm' }) }, expect: 'retry', retryAfterMs: 60_000 },
      { answer: { status: 200, body: json({ code: 19001, msg: 'param invalid: incoming webhook access token invalid' }) }, expect: 'disable' },
      { answer: { status: 200, body: json({ code: 19021, msg: 'sign match fail or timestamp is not within one hour from current time' }) }, expect: 'give-up' },
      { answer: { status: 200, body: json({ code: 19024, msg: 'Key Words Not Found' }) }, expect: 'give-up', reason: 'Key Words Not Found' },
      { answer: { status: 400, body: json({ code: 9499, msg: 'Bad Request', data: {} }) }, expect: 'give-up', reason: 'code 9499' },
      { answer: { status: 200, body: json({ StatusCode: 19024, StatusMessage: 'Key Words Not Found' }) }, expect: 'give-up' },
      { answer: { status: 200, body: 'ok' }, expect: 'retry' },
      ...notIn200({ code: 0, msg: 'success' }),
    ]);
  });

  it('when a service answers a long, multi-line body, then the reason quotes one short line of it', () => {
    const errmsg = `line one\nline two ${'x'.repeat(2000)}`;
    for (const kind of ['wecom', 'dingtalk'] as ChatKind[]) {
      const verdict = CHAT_ADAPTERS[kind].judge({ status: 200, body: json({ errcode: 40035, errmsg }) });
      expect(verdict.ok).toBe(false);
      if (!verdict.ok) {
        expect(verdict.reason).not.toContain('\n');
        expect(verdict.reason.length).toBeLessThan(200);
      }
    }
  });
});
