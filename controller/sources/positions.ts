// Where each object of a set of YAML (or JSON) files is written, down to the line of one field: the
// "file:line" that `meshgate validate` prints and that other tools can use to point at an Istio object.
// Objects are keyed as the local source stores them (the store's kind, namespace with `default` when unset,
// name), `List` items included. Field paths are those of validation errors: `spec.http[0].match[1].uri.regex`.
import { LineCounter, type Node, isMap, isScalar, isSeq, parseAllDocuments } from 'yaml';
import { storeKind } from '../model/objects.ts';

interface Position {
  file: string;
  /** 1-based line. */
  line: number;
}

export interface PositionIndex {
  /**
   * The line of `fieldPath` inside object kind namespace/name (the line of its key, or of the item for a list
   * index); when the path goes further than the file (a missing field), the line of the deepest part that is
   * there; without a path, the object's first line. Undefined for an object not in the files.
   */
  locate(kind: string, namespace: string, name: string, fieldPath?: string): Position | undefined;
}

interface Located {
  file: string;
  node: Node;
  lines: LineCounter;
}

/** `spec.http[0].match["a.b"]` -> ['spec', 'http', 0, 'match', 'a.b']. */
export function parseFieldPath(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const m of path.matchAll(/\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]|([^.[\]]+)/g)) {
    if (m[1] !== undefined) out.push(Number(m[1]));
    else if (m[2] !== undefined) out.push(m[2].replace(/\\(.)/g, '$1'));
    else if (m[3] !== undefined) out.push(m[3]);
  }
  return out;
}

const lineOf = (lines: LineCounter, offset: number): number => lines.linePos(offset).line;

function objectKeyOf(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

/** The line of the path's deepest part found under `node`. */
function lineInside(node: Node, path: readonly (string | number)[], lines: LineCounter): number {
  let line = lineOf(lines, node.range?.[0] ?? 0);
  let cur: Node | null | undefined = node;
  for (const part of path) {
    if (typeof part === 'number' && isSeq(cur)) {
      const item = cur.items[part];
      if (!item || typeof item !== 'object' || !('range' in item) || !item.range) return line;
      cur = item as Node;
      line = lineOf(lines, cur.range?.[0] ?? 0);
    } else if (isMap(cur)) {
      const pair = cur.items.find((p) => isScalar(p.key) && String(p.key.value) === String(part));
      if (!pair) return line;
      const key = pair.key as Node;
      line = lineOf(lines, key.range?.[0] ?? 0);
      cur = pair.value as Node | null;
    } else return line;
  }
  return line;
}

/** The object's key as the store has it: its kind there (a Gateway API Gateway is a KubernetesGateway), namespace, name. */
function kubeIdentity(value: unknown): { kind: string; namespace: string; name: string } | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const o = value as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
  const kind = storeKind(o.apiVersion, o.kind);
  if (typeof kind !== 'string' || typeof o.metadata?.name !== 'string') return undefined;
  const ns = typeof o.metadata.namespace === 'string' ? o.metadata.namespace : 'default';
  return { kind, namespace: ns, name: o.metadata.name };
}

/** Indexes the objects of `files` (text as read, path as it should be printed). Malformed documents are skipped. */
export function indexPositions(files: readonly { file: string; text: string }[]): PositionIndex {
  const objects = new Map<string, Located>();
  for (const { file, text } of files) {
    const lines = new LineCounter();
    for (const doc of parseAllDocuments(text, { lineCounter: lines })) {
      if (doc.errors.length > 0 || !doc.contents) continue;
      const add = (node: Node, value: unknown): void => {
        const id = kubeIdentity(value);
        // A later definition wins, as it does when the directory is loaded.
        if (id) objects.set(objectKeyOf(id.kind, id.namespace, id.name), { file, node, lines });
      };
      const value = doc.toJS() as { kind?: unknown; items?: unknown } | null;
      const items = value?.items;
      const itemsNode = isMap(doc.contents) ? doc.contents.get('items', true) : undefined;
      const isList = typeof value?.kind === 'string' && value.kind.endsWith('List');
      if (isList && Array.isArray(items) && isSeq(itemsNode)) {
        items.forEach((item, i) => {
          const n = itemsNode.items[i];
          if (n && typeof n === 'object' && 'range' in n) add(n as Node, item);
        });
      } else add(doc.contents, value);
    }
  }
  return {
    locate(kind, namespace, name, fieldPath) {
      const o = objects.get(objectKeyOf(kind, namespace, name));
      if (!o) return undefined;
      return { file: o.file, line: lineInside(o.node, fieldPath ? parseFieldPath(fieldPath) : [], o.lines) };
    },
  };
}
