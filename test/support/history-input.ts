/** A history commit's input as the worker's recorder makes one: an API write of `text`. */
import type { HistoryCommitInput } from '../../src/history/history-repo.js';
import { revisionOf } from '../../src/settings/revision.js';

export function commitInput(text: string, extra: Partial<HistoryCommitInput> = {}): HistoryCommitInput {
  return {
    text,
    revision: revisionOf(text),
    actor: { type: 'api', id: 'admin-key' },
    source: 'api',
    summary: 'settings changed',
    changes: [],
    at: Date.UTC(2024, 4, 1, 12, 0, 0),
    ...extra,
  };
}
