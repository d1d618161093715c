/**
 * Events for the notification tests: one of each type, worst-case bursts, and fast-check
 * arbitraries whose strings are built to break chat formats (mention and link syntax of every
 * service, markdown, controls, bidi overrides, emoji, lone surrogates, long unicode names).
 */
import fc from 'fast-check';
import type { KnownNotifyEvent, NotifyEvent, NotifyTargetOutcome } from '../../src/notify/notify-event.js';

export const AT = Date.UTC(2024, 2, 1, 12, 0, 0);
export const API_ACTOR = { type: 'api', id: 'key:ab12cd34ef56' } as const;
export const FILE_ACTOR = { type: 'file', id: 'file' } as const;

export function outcome(target: string, overrides: Partial<NotifyTargetOutcome> = {}): NotifyTargetOutcome {
  return { target, changed: true, writeMode: 'rename', reloaded: true, healthy: true, durationMs: 120, error: null, state: 'in_sync', ...overrides };
}

/** One event of every type confhub logs, ids 1..12. */
export function sampleEvents(): KnownNotifyEvent[] {
  const revision = '3f9a1c2b7d4e5f60718293a4b5c6d7e8f9012345';
  const failed = { code: 'RELOAD_FAILED', message: 'container websoft9-nginx did not restart' };
  const list: Omit<KnownNotifyEvent, 'id' | 'at'>[] = [
    { type: 'settings.changed', data: { revision, actor: API_ACTOR, source: 'api', keys: ['gitea.user_pwd', 'gitea.domain'] } },
    { type: 'env.changed', data: { revision, actor: FILE_ACTOR, source: 'file', variables: ['global.TZ', 'gitea.DB_HOST'], scopes: ['global', 'gitea'] } },
    {
      type: 'sync.applied',
      data: {
        revision,
        source: 'change',
        actor: API_ACTOR,
        targets: [outcome('gitea'), outcome('cockpit', { changed: false, reloaded: false, writeMode: null })],
      },
    },
    {
      type: 'sync.failed',
      data: {
        revision,
        source: 'change',
        actor: FILE_ACTOR,
        targets: [outcome('gitea'), outcome('nginx', { reloaded: false, healthy: false, error: failed, state: 'failed' })],
        error: { code: 'SYNC_FAILED', message: 'one target failed' },
      },
    },
    {
      type: 'sync.rolled_back',
      data: { revision, source: 'change', actor: API_ACTOR, targets: [outcome('nginx', { error: failed, state: 'rolled_back' })] },
    },
    { type: 'sync.rollback_failed', data: { failedRevision: revision, toRevision: 'aa11bb22cc33', error: { code: 'WRITE_FAILED', message: 'disk full' } } },
    { type: 'service.reloaded', data: { revision, target: 'gitea', reload: 'docker:restart:websoft9-git' } },
    { type: 'service.unhealthy', data: { revision, target: 'gitea', code: 'HEALTH_FAILED', reason: 'health check timed out after 30 s' } },
    { type: 'source.invalid', data: { revision, code: 'INI_SYNTAX', reason: 'a key outside any section', line: 12 } },
    { type: 'worker.state', data: { state: 'stopped', restarts: 2 } },
    {
      type: 'webhook.disabled',
      data: { webhook: 'wh_7', url: 'https://hooks.slack.com/services/T000/B000/XXXX', reason: 'Slack answered HTTP 410 channel_is_archived' },
    },
    { type: 'webhook.test', data: { webhook: 'wh_7' } },
  ];
  return list.map((event, index) => ({ ...event, id: index + 1, at: AT + index * 1000 }) as KnownNotifyEvent);
}

/** Strings that mean something to at least one chat service. */
export const HOSTILE_FRAGMENTS = [
  '<!channel>',
  '<!here|here>',
  '<@U024BE7LH>',
  '<#C024BE7LR>',
  '<https://evil.example|click me>',
  '@everyone',
  '@here',
  '@all',
  '@13800138000',
  '<@&123456789>',
  '<at user_id="all">所有人</at>',
  '<at user_id="ou_123">Tom</at>',
  '<@wecom_user>',
  '<font color="warning">red</font>',
  '[click](https://evil.example)',
  '![pixel](https://evil.example/p.png)',
  '*bold*',
  '**strong**',
  '_it_',
  '~strike~',
  '`code`',
  '```block```',
  '||spoiler||',
  '> quote',
  '# heading',
  '&amp;',
  '&lt;!channel&gt;',
  '\\',
  '\\<',
  '\n',
  '\r\n',
  '\t',
  '\u0000',
  '\u001b[31m',
  '\u202e',
  '\u2066',
  '\u2028',
  '\u200b',
  '🚀',
  '👩‍👩‍👧‍👦',
  '🇨🇳',
  '名前',
  'é',
  'e\u0301',
  '\ud800',
  '\udc00',
  '"',
  "'",
  '%s',
  '.',
] as const;

const fragment = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...HOSTILE_FRAGMENTS) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code)), maxLength: 3 }) },
);

/** A name, key, reason…: hostile fragments, sometimes very long. */
export const hostileText = fc.oneof(
  { weight: 5, arbitrary: fc.array(fragment, { maxLength: 8 }).map((parts) => parts.join('')) },
  { weight: 1, arbitrary: fc.constantFrom('x'.repeat(400), '名'.repeat(400), '🚀'.repeat(400), '<@U1>'.repeat(100), '@everyone '.repeat(80)) },
);

const actor = fc.oneof(
  fc.constant(API_ACTOR),
  fc.constant(FILE_ACTOR),
  hostileText.map((id) => ({ type: 'system' as const, id })),
  hostileText.map((id) => ({ type: 'api' as const, id })),
);
const revision = fc.oneof(fc.stringMatching(/^[0-9a-f]{40}$/), hostileText);
const texts = (maxLength: number) => fc.array(hostileText, { maxLength });
const error = fc.record({ code: hostileText, message: hostileText });
const target = fc.record({
  target: hostileText,
  changed: fc.boolean(),
  writeMode: fc.constantFrom('rename', 'inplace', null),
  reloaded: fc.boolean(),
  healthy: fc.constantFrom(true, false, null),
  durationMs: fc.nat(),
  error: fc.option(error, { nil: null }),
  state: fc.oneof(fc.constantFrom('in_sync', 'pending_reload', 'pending_write', 'failed', 'rolled_back'), hostileText),
});
const syncRun = fc.record(
  { revision, source: fc.constantFrom('change', 'reload', 'retry', 'startup', 'once'), actor, targets: fc.array(target, { maxLength: 30 }), error },
  { requiredKeys: ['revision', 'source', 'actor', 'targets'] },
);

const eventBody: fc.Arbitrary<{ type: string; data: object }> = fc.oneof(
  fc.record({
    type: fc.constant('settings.changed'),
    data: fc.record({ revision, actor, source: fc.constantFrom('api', 'file', 'rollback', 'cli'), keys: texts(60) }),
  }),
  fc.record({ type: fc.constant('env.changed'), data: fc.record({ revision, actor, source: fc.constant('api'), variables: texts(60), scopes: texts(5) }) }),
  fc.record({ type: fc.constantFrom('sync.applied', 'sync.failed', 'sync.rolled_back'), data: syncRun }),
  fc.record({ type: fc.constant('sync.rollback_failed'), data: fc.record({ failedRevision: revision, toRevision: revision, error }) }),
  fc.record({ type: fc.constant('service.reloaded'), data: fc.record({ revision, target: hostileText, reload: hostileText }) }),
  fc.record({ type: fc.constant('service.unhealthy'), data: fc.record({ revision, target: hostileText, code: hostileText, reason: hostileText }) }),
  fc.record({
    type: fc.constant('source.invalid'),
    data: fc.record({ revision, code: hostileText, reason: hostileText, line: fc.nat() }, { requiredKeys: ['revision', 'code', 'reason'] }),
  }),
  fc.record({ type: fc.constant('worker.state'), data: fc.record({ state: fc.constantFrom('ready', 'stopped'), restarts: fc.nat(50) }) }),
  fc.record({ type: fc.constant('webhook.disabled'), data: fc.record({ webhook: hostileText, url: fc.oneof(fc.webUrl(), hostileText), reason: hostileText }) }),
  fc.record({ type: fc.constant('webhook.test'), data: fc.record({ webhook: hostileText }) }),
  // A type added to the log later, with data nobody here knows.
  fc.record({ type: hostileText, data: fc.object() }),
);

/** A burst of 1..N events with distinct, increasing log ids from 1000. */
export function arbitraryBurst(maxEvents: number): fc.Arbitrary<NotifyEvent[]> {
  return fc
    .array(eventBody, { minLength: 1, maxLength: maxEvents })
    .map((bodies) => bodies.map((body, index) => ({ ...body, id: 1000 + index, at: AT + index * 1000 })));
}

/** A long unicode name: mixed scripts, emoji, markup, about `length` code points. */
export function longUnicodeName(seed: number, length = 120): string {
  const key = `${seed}:${length}`;
  const known = names.get(key);
  if (known !== undefined) return known;
  let name = '';
  for (let index = 0; index < length; index += 1) name += NAME_ALPHABET[(seed * 31 + index * 7) % NAME_ALPHABET.length];
  names.set(key, name);
  return name;
}

const NAME_ALPHABET = ['名', 'é', '🚀', 'ж', 'ğ', '<', '@', '*', '_', '[', ']', '(', ')', '👩‍👩‍👧', 'x', '.', 'ق', '한'];
const names = new Map<string, string>();

/** The worst burst a formatter must still fit: many events, each with a huge list of long unicode keys. */
export function worstCaseBurst(events = 200, keysPerEvent = 500): NotifyEvent[] {
  return Array.from({ length: events }, (_, index) => {
    const keys = Array.from({ length: keysPerEvent }, (__, key) => `${longUnicodeName(index + key, 60)}.${longUnicodeName(key, 60)}`);
    const id = 5000 + index;
    const at = AT + index;
    if (index % 3 === 1) {
      const targets = keys
        .slice(0, 60)
        .map((name, position) =>
          outcome(name, position % 2 === 0 ? {} : { error: { code: longUnicodeName(position, 40), message: longUnicodeName(position, 300) }, state: 'failed' }),
        );
      return {
        id,
        at,
        type: 'sync.failed',
        data: { revision: 'f'.repeat(40), source: 'change', actor: API_ACTOR, targets, error: { code: 'SYNC_FAILED', message: longUnicodeName(index, 500) } },
      };
    }
    if (index % 3 === 2) {
      return {
        id,
        at,
        type: 'env.changed',
        data: {
          revision: 'e'.repeat(40),
          actor: { type: 'system', id: longUnicodeName(index, 200) },
          source: 'api',
          variables: keys,
          scopes: keys.slice(0, 50),
        },
      };
    }
    return { id, at, type: 'settings.changed', data: { revision: 'd'.repeat(40), actor: API_ACTOR, source: 'api', keys } };
  });
}

/** Characters that grow most when escaped or encoded: entities, backslashes, zero-width spaces, JSON escapes, 3-4 byte UTF-8. */
const EXPANDING = ['<', '&', '>', '@', ']', '*', '_', '\\', '"', '\u0001', '名', '🚀'];

export function expandingText(seed: number, length: number): string {
  let text = '';
  for (let index = 0; index < length; index += 1) text += EXPANDING[(seed + index) % EXPANDING.length];
  return text;
}

/** Events whose every name, key, code and reason is made of the most expanding characters, as long as allowed. */
export function expandingBurst(events: number): NotifyEvent[] {
  return Array.from({ length: events }, (_, index) => {
    const names = Array.from({ length: 500 }, (__, key) => expandingText(index + key, 200));
    const error = { code: expandingText(index, 200), message: expandingText(index + 1, 1000) };
    const actor = { type: 'system', id: expandingText(index, 300) } as const;
    const common = { id: 7000 + index, at: AT + index };
    switch (index % 4) {
      case 0:
        return { ...common, type: 'settings.changed', data: { revision: expandingText(index, 60), actor, source: 'api', keys: names } };
      case 1: {
        const targets = names.map((name) => outcome(name, { error, state: 'failed', healthy: false }));
        return { ...common, type: 'sync.failed', data: { revision: expandingText(index, 60), source: 'reload', actor, targets, error } };
      }
      case 2:
        return {
          ...common,
          type: 'webhook.disabled',
          data: { webhook: expandingText(index, 300), url: `https://${expandingText(index, 50)}`, reason: expandingText(index, 1000) },
        };
      default:
        return { ...common, type: expandingText(index, 300), data: {} };
    }
  });
}
