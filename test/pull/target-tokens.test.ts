import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { createCheckins } from '../../src/pull/checkins.js';
import { createTargetTokens, MAX_TOKENS_PER_TARGET } from '../../src/pull/target-tokens.js';

describe('per-target tokens', () => {
  it('when a token is made, then it verifies for its target only, until it is revoked', () => {
    const tokens = createTargetTokens({ db: openDatabase({ path: ':memory:' }) });
    const { token, record } = tokens.create('web', { description: 'web container', now: 1000 });
    expect(token).toMatch(/^cht_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(tokens.verify('web', token, 2000)).toEqual({ ok: true, id: record.id });
    expect(tokens.verify('other', token, 2000)).toEqual({ ok: false });
    expect(tokens.verify('web', `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`, 2000)).toEqual({ ok: false });
    expect(tokens.verify('web', 'not a token', 2000)).toEqual({ ok: false });
    expect(tokens.list('web')).toEqual([{ id: record.id, target: 'web', description: 'web container', createdAt: 1000, lastUsedAt: 2000 }]);
    tokens.revoke('web', record.id);
    expect(tokens.verify('web', token, 3000)).toEqual({ ok: false });
    expect(() => tokens.revoke('web', record.id)).toThrow(expect.objectContaining({ code: 'TOKEN_NOT_FOUND' }));
  });

  it('when a target has the most tokens it may, then another is refused; descriptions are checked', () => {
    const tokens = createTargetTokens({ db: openDatabase({ path: ':memory:' }) });
    for (let i = 0; i < MAX_TOKENS_PER_TARGET; i++) tokens.create('web', { description: undefined, now: i });
    expect(() => tokens.create('web', { description: undefined, now: 0 })).toThrow(expect.objectContaining({ code: 'TOKEN_LIMIT_REACHED' }));
    expect(() => tokens.create('other', { description: 'bad\u0007', now: 0 })).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => tokens.create('other', { description: 5, now: 0 })).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });

  it('when system.ini no longer declares a target, then its tokens and check-ins are forgotten, so a new target of that name does not inherit them', () => {
    const db = openDatabase({ path: ':memory:' });
    const tokens = createTargetTokens({ db });
    const checkins = createCheckins({ db });
    const old = tokens.create('gone', { description: undefined, now: 0 });
    tokens.create('kept', { description: undefined, now: 0 });
    checkins.record('gone', { revision: 'r1', instance: 'a' }, { address: null, now: 0, fallbackInstance: 'x' });
    checkins.record('kept', { revision: 'r1', instance: 'a' }, { address: null, now: 0, fallbackInstance: 'x' });
    expect(tokens.forgetOtherTargets(['kept'])).toBe(1);
    expect(checkins.forgetOtherTargets(['kept'])).toBe(1);
    expect(tokens.verify('gone', old.token, 1)).toEqual({ ok: false });
    expect(tokens.list('kept')).toHaveLength(1);
    expect([...checkins.byTarget().keys()]).toEqual(['kept']);
  });
});
