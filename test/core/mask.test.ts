import { describe, expect, it } from 'vitest';
import { MASK, maskText } from '../../src/core/mask.js';
import { firstLines } from '../../src/reload/reload-actions.js';

describe('masking secrets in free text', () => {
  it('when a secret occurs, then every occurrence is masked, the longest secret first', () => {
    expect(maskText('a hunter22 b hunter22', ['hunter22'])).toBe(`a ${MASK} b ${MASK}`);
    expect(maskText('x hunter22x', ['hunter22x', 'hunter22'])).toBe(`x ${MASK}`);
  });

  it('when output is cut short in the middle of a secret, then the beginning of the secret before the cut is masked too', () => {
    const secret = 'Pa55word-very-long-secret';
    const output = `${'x'.repeat(1009)}password=${secret}\nmore`;
    const cut = firstLines(output);
    expect(cut.endsWith('…')).toBe(true);
    expect(cut).toContain('password=Pa55wo…');
    const masked = maskText(cut, [secret]);
    expect(masked.endsWith(`password=${MASK}…`)).toBe(true);
    expect(masked).not.toContain('Pa5');
  });

  it('when text ends in a cut that holds no beginning of a secret, or is not cut, then it is left as it is', () => {
    expect(maskText('ends in nothing…', ['Pa55word'])).toBe('ends in nothing…');
    expect(maskText('ends in Pa55', ['Pa55word'])).toBe('ends in Pa55');
    // Too short a beginning to hide anything.
    expect(maskText('x Pa…', ['Pa55word'])).toBe('x Pa…');
  });
});
