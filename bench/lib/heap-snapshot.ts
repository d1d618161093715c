/** What a V8 heap snapshot holds, in short: its live size and the kinds of objects that take most of it. */
import { readFileSync } from 'node:fs';

interface RawSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] }; node_count: number };
  nodes: number[];
  strings: string[];
}

export interface HeapGroup {
  /** `object Foo` (constructor name), `closure name`, or a V8 kind such as `code`, `string`, `array`. */
  what: string;
  count: number;
  selfBytes: number;
}

export interface HeapSummary {
  /** Sum of every node's self size: the live heap after the GC the snapshot made. */
  selfBytes: number;
  nodes: number;
  top: HeapGroup[];
}

/** Types whose node name says what it is (a constructor or function name); others group by type alone. */
const NAMED_TYPES = new Set(['object', 'closure', 'native']);

export function summarizeHeapSnapshot(file: string, topCount = 15): HeapSummary {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as RawSnapshot;
  const fields = raw.snapshot.meta.node_fields;
  const types = raw.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const groups = new Map<string, HeapGroup>();
  let selfBytes = 0;
  for (let i = 0; i < raw.nodes.length; i += width) {
    const type = types[raw.nodes[i + typeAt]!] ?? 'unknown';
    const size = raw.nodes[i + sizeAt]!;
    selfBytes += size;
    const what = NAMED_TYPES.has(type) ? `${type} ${raw.strings[raw.nodes[i + nameAt]!] ?? '?'}` : type;
    const group = groups.get(what) ?? { what, count: 0, selfBytes: 0 };
    group.count++;
    group.selfBytes += size;
    groups.set(what, group);
  }
  const top = [...groups.values()].sort((a, b) => b.selfBytes - a.selfBytes).slice(0, topCount);
  return { selfBytes, nodes: raw.nodes.length / width, top };
}
