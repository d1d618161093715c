import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/core/errors.js';
import { CHAT_ADAPTERS, CHAT_KINDS, type ChatKind } from '../../src/notify/chat-formats.js';
import type { NotifyEvent } from '../../src/notify/notify-event.js';
import { checkChatBody } from '../support/chat-receivers.js';
import { API_ACTOR, arbitraryBurst, AT, outcome, sampleEvents, worstCaseBurst } from './event-fixtures.js';

type Json = Record<string, unknown>;
const ZWSP = '\u200b';

function body(kind: ChatKind, events: readonly NotifyEvent[], instance?: string): Json {
  return JSON.parse(CHAT_ADAPTERS[kind].format(events, instance === undefined ? undefined : { instance })) as Json;
}

/** Every text a person reads in the message, in order (Slack: fallback first, then sections). */
function texts(kind: ChatKind, message: Json): string[] {
  switch (kind) {
    case 'slack':
      return [message.text as string, ...(message.blocks as { text: { text: string } }[]).map((block) => block.text.text)];
    case 'discord': {
      const embeds = message.embeds as { title: string; description?: string; footer: { text: string } }[];
      return [message.content as string, ...embeds.flatMap((embed) => [embed.title, embed.description ?? '', embed.footer.text])];
    }
    case 'wecom':
      return [(message.markdown as Json).content as string];
    case 'dingtalk':
      return [(message.markdown as Json).title as string, (message.markdown as Json).text as string];
    case 'feishu':
      return [(message.content as Json).text as string];
  }
}

/** Text without the escapes and defusing characters, as the service shows it. */
function shown(kind: ChatKind, text: string): string {
  const unescaped =
    kind === 'discord' ? text.replace(/\\(.)/gu, '$1') : kind === 'slack' ? text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&') : text;
  return unescaped.replaceAll(ZWSP, '');
}

function allStrings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(allStrings);
  if (typeof value === 'object' && value !== null) return Object.values(value).flatMap(allStrings);
  return [];
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
// Controls other than our own line breaks, and bidi overrides: none may reach a message.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what it is for.
const FORBIDDEN = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/;

/** The failures of the "no value can ping, link or tag" rule for one kind; empty when it holds. */
function markupLeaks(kind: ChatKind, message: Json): string[] {
  const leaks: string[] = [];
  const strings = texts(kind, message);
  const defused = (text: string, char: string) => [...text.matchAll(new RegExp(`\\${char}(?!${ZWSP})`, 'g'))].length === 0;
  for (const text of strings) {
    if (!defused(text, '@')) leaks.push(`undefused @ in ${JSON.stringify(text.slice(0, 80))}`);
  }
  switch (kind) {
    case 'slack': {
      const blocks = message.blocks as { text: { verbatim?: boolean } }[];
      if (!blocks.every((block) => block.text.verbatim === true)) leaks.push('a section is not verbatim');
      for (const text of strings) {
        if (/[<>]/.test(text)) leaks.push('raw < or > in Slack text');
        if (/&(?!amp;|lt;|gt;)/.test(text)) leaks.push('bare & in Slack text');
      }
      break;
    }
    case 'discord': {
      if (JSON.stringify(message.allowed_mentions) !== '{"parse":[]}') leaks.push('allowed_mentions is not {parse: []}');
      const embeds = message.embeds as { title: string; description?: string }[];
      const markdown = [(message.content as string).replace(/^\*\*confhub\*\*/, ''), ...embeds.flatMap((embed) => [embed.title, embed.description ?? ''])];
      for (const text of markdown) {
        // Walk escapes: a backslash takes the next character with it.
        const bare = text.replace(/\\[\s\S]/g, '');
        if (/[<>[\]()*_~`|\\]/.test(bare)) leaks.push(`unescaped markdown in ${JSON.stringify(text.slice(0, 80))}`);
      }
      break;
    }
    case 'wecom':
    case 'dingtalk':
    case 'feishu': {
      for (const text of strings) {
        const own = text.replace(/<font color="(?:info|warning|comment)">|<\/font>/g, '');
        if (!defused(own, '<')) leaks.push(`undefused < in ${JSON.stringify(text.slice(0, 80))}`);
        if (kind !== 'feishu' && !defused(own, ']')) leaks.push('undefused ] (link) in markdown');
      }
      if (kind === 'dingtalk' && 'at' in message) leaks.push('DingTalk message has an at field');
      break;
    }
  }
  return leaks;
}

/** Which events the message shows (by `event #id`) and how many it says it left out. */
function accounting(kind: ChatKind, message: Json): { ids: number[]; more: number } {
  const all = texts(kind, message).join('\n');
  const ids = [...all.matchAll(/event #(\d+)/g)].map((match) => Number(match[1]));
  const more = /… and (\d+) more events?/.exec(shown(kind, all));
  return { ids, more: more === null ? 0 : Number(more[1]) };
}

describe('chat messages: content', () => {
  it('when a settings change by an API key is formatted, then every kind names who, which keys, the short revision and the event', () => {
    const [event] = sampleEvents();
    for (const kind of CHAT_KINDS) {
      const text = shown(kind, texts(kind, body(kind, [event!])).join('\n'));
      expect(text, kind).toContain('Settings changed by API key key:ab12…');
      expect(text, kind).toContain('keys: gitea.user_pwd, gitea.domain');
      expect(text, kind).toContain('revision 3f9a1c2');
      expect(text, kind).toContain('event #1');
      expect(text, kind).not.toContain('3f9a1c2b');
    }
  });

  it('when a sync fails, then the message names the failed service with its code, the applied one, and the run error', () => {
    const failed = sampleEvents()[3]!;
    for (const kind of CHAT_KINDS) {
      const text = shown(kind, texts(kind, body(kind, [failed])).join('\n'));
      expect(text, kind).toContain('Revision 3f9a1c2 by hand edit failed');
      expect(text, kind).toContain('services: gitea reloaded, nginx failed (RELOAD_FAILED, unhealthy)');
      expect(text, kind).toContain('error SYNC_FAILED: one target failed');
    }
  });

  it('when each event type is formatted, then its title says what happened in words', () => {
    const titles = [
      'Settings changed by API key key:ab12…',
      'Environment variables changed by hand edit',
      'Revision 3f9a1c2 by API key key:ab12… applied to 1 service',
      'Revision 3f9a1c2 by hand edit failed',
      'Revision 3f9a1c2 by API key key:ab12… rolled back',
      'Rollback to revision aa11bb2 failed: config.ini still holds revision 3f9a1c2',
      'Service gitea reloaded',
      'Service gitea unhealthy: HEALTH_FAILED',
      'config.ini is invalid at line 12: INI_SYNTAX; the last valid revision stays in use',
      'Sync worker stopped',
      'Webhook wh_7 disabled: Slack answered HTTP 410 channel_is_archived',
      'Test notification from confhub',
    ];
    const text = shown('feishu', texts('feishu', body('feishu', sampleEvents())).join('\n'));
    for (const title of titles) expect(text).toContain(title);
    expect(text).toContain('1 service unchanged');
    expect(text).toContain('reload: docker:restart:websoft9-git');
    // A chat webhook's URL path is its credential: only the origin is shown.
    expect(text).toContain('endpoint https://hooks.slack.com');
    expect(text).not.toContain('T000');
  });

  it('when an event type is unknown, then it is still delivered with a generic line', () => {
    for (const kind of CHAT_KINDS) {
      const text = shown(kind, texts(kind, body(kind, [{ id: 9, type: 'backup.finished', at: AT, data: { size: 1 } }])).join('\n'));
      expect(text, kind).toContain('Event backup.finished');
    }
  });

  it('when there is no event, then formatting refuses', () => {
    for (const kind of CHAT_KINDS) expect(() => CHAT_ADAPTERS[kind].format([]), kind).toThrow(AppError);
  });

  it('when an instance is named, then the header shows it', () => {
    for (const kind of CHAT_KINDS) {
      const text = shown(kind, texts(kind, body(kind, sampleEvents().slice(0, 2), 'prod-eu-1')).join('\n'));
      expect(text, kind).toMatch(/confhub\**\s·\sprod-eu-1: 2 events/);
    }
  });
});

describe('chat messages: limits and truncation', () => {
  it('when 500 keys changed, then the list shows the first ones and says how many more', () => {
    const keys = Array.from({ length: 500 }, (_, index) => `section${index}.key`);
    const event = { id: 1, type: 'settings.changed', at: AT, data: { revision: 'abc1234', actor: API_ACTOR, source: 'api', keys } };
    for (const kind of CHAT_KINDS) {
      const text = shown(kind, texts(kind, body(kind, [event])).join('\n'));
      const match = /keys \(500\): ((?:section\d+\.key, )*section\d+\.key) and (\d+) more/.exec(text);
      expect(match, kind).not.toBeNull();
      const listed = match![1]!.split(', ');
      expect(listed[0], kind).toBe('section0.key');
      expect(listed.length + Number(match![2]), kind).toBe(500);
    }
  });

  it('when 200 events come in one burst, then the message lists the first ones in order and counts the rest', () => {
    const events = Array.from({ length: 200 }, (_, index) => ({ ...sampleEvents()[index % 12]!, id: 100 + index }));
    for (const kind of CHAT_KINDS) {
      const message = body(kind, events);
      expect(checkChatBody(kind, JSON.stringify(message)), kind).toBeUndefined();
      const { ids, more } = accounting(kind, message);
      expect(ids.length, kind).toBeGreaterThan(0);
      expect(ids, kind).toEqual(events.slice(0, ids.length).map((event) => event.id));
      expect(ids.length + more, kind).toBe(200);
    }
  });

  it('when names are long emoji and CJK strings, then cuts fall between code points and end with …', () => {
    const keys = ['🚀'.repeat(300), `${'名'.repeat(150)}.key`, '👩‍👩‍👧'.repeat(100)];
    const event = { id: 1, type: 'settings.changed', at: AT, data: { revision: 'abc1234', actor: API_ACTOR, source: 'api', keys } };
    for (const kind of CHAT_KINDS) {
      const message = body(kind, [event]);
      for (const text of allStrings(message)) expect(LONE_SURROGATE.test(text), kind).toBe(false);
      const text = shown(kind, texts(kind, message).join('\n'));
      expect(text, kind).toContain(`${'🚀'.repeat(79)}…`);
      expect(text, kind).not.toContain('🚀'.repeat(80));
    }
  });

  it('when the worst-case burst is formatted (200 events, 500 long unicode keys each), then every kind stays within its limits', () => {
    const events = worstCaseBurst();
    for (const kind of CHAT_KINDS) {
      const raw = CHAT_ADAPTERS[kind].format(events, { instance: `${'名'.repeat(200)}<@U1>` });
      expect(checkChatBody(kind, raw), kind).toBeUndefined();
      const { ids, more } = accounting(kind, JSON.parse(raw) as Json);
      expect(ids.length + more, kind).toBe(200);
    }
  });
});

describe('chat messages: values cannot ping, link or tag', () => {
  it('when keys carry each service mention and link syntax, then every kind shows them as text', () => {
    const keys = ['a.<!channel>', 'b.<@U024BE7LH>', 'c.@everyone', 'd.<at user_id="all">all</at>', 'e.[x](https://evil.example)', 'f.<@wecom>', 'g.a&b'];
    const event = { id: 1, type: 'settings.changed', at: AT, data: { revision: 'abc1234', actor: API_ACTOR, source: 'api', keys } };
    for (const kind of CHAT_KINDS) {
      const message = body(kind, [event]);
      expect(markupLeaks(kind, message), kind).toEqual([]);
      // Defused, not removed: people still read the key as it is.
      expect(shown(kind, texts(kind, message).join('\n')), kind).toContain(`keys: ${keys.join(', ')}`);
    }
  });

  it('Slack: & < > are entities and every section is verbatim', () => {
    const message = body('slack', [{ id: 1, type: 'webhook.test', at: AT, data: { webhook: '<!channel> & <http://x|y>' } }]);
    expect(JSON.stringify(message)).toContain('&lt;!channel&gt; &amp; &lt;http://x|y&gt;');
    expect(message).toMatchObject({ unfurl_links: false, unfurl_media: false });
  });

  it('Discord: allowed_mentions parses nothing, even for a plain test event', () => {
    expect(body('discord', [sampleEvents()[11]!]).allowed_mentions).toEqual({ parse: [] });
  });

  it('DingTalk: no at field, and "confhub" in title and text for keyword-protected robots', () => {
    const message = body('dingtalk', sampleEvents());
    expect(message).not.toHaveProperty('at');
    expect((message.markdown as Json).title).toContain('confhub');
    expect((message.markdown as Json).text).toContain('confhub');
  });
});

describe('chat messages: properties over hostile events', () => {
  for (const kind of CHAT_KINDS) {
    it(`${kind}: when any burst of hostile events is formatted, then the service would accept it, no value leaks markup, strings are well formed and every event is shown or counted`, () => {
      fc.assert(
        fc.property(arbitraryBurst(30), fc.option(fc.string({ unit: 'binary', maxLength: 120 }), { nil: undefined }), (events, instance) => {
          const raw = CHAT_ADAPTERS[kind].format(events, instance === undefined ? undefined : { instance });
          expect(checkChatBody(kind, raw)).toBeUndefined();
          const message = JSON.parse(raw) as Json;
          expect(markupLeaks(kind, message)).toEqual([]);
          for (const text of allStrings(message)) {
            expect(LONE_SURROGATE.test(text)).toBe(false);
            expect(FORBIDDEN.test(text)).toBe(false);
          }
          const { ids, more } = accounting(kind, message);
          expect(ids).toEqual(events.slice(0, ids.length).map((event) => event.id));
          expect(ids.length + more).toBe(events.length);
        }),
        { numRuns: 150 },
      );
    });
  }

  it('when targets list many services with outcomes, then Discord embeds keep their per-field and total limits', () => {
    const targets = Array.from({ length: 200 }, (_, index) => outcome(`${'t'.repeat(70)}${index}`));
    const events = Array.from({ length: 12 }, (_, index) => ({
      id: index + 1,
      type: 'sync.applied',
      at: AT,
      data: { revision: 'abc', source: 'change', actor: API_ACTOR, targets },
    }));
    const message = body('discord', events);
    expect(checkChatBody('discord', JSON.stringify(message))).toBeUndefined();
    expect((message.embeds as unknown[]).length).toBe(10);
    expect(message.content).toContain('… and 2 more events');
  });
});
