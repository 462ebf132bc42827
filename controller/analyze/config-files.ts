// Findings about the files themselves, from what the local source's parser says of each document
// (sources/local-dir.ts parseConfigFile): a document that cannot be read (MG0001), a kind meshgate does not
// read (MG0002, skipped: a Deployment beside the Istio objects is normal), an object defined twice (MG0003).
import type { StoredObject } from '../model/objects.ts';
import type { ValidationError } from '../model/validation.ts';
import { type Finding, finding } from './messages.ts';

/** `file#2` (the third document of file) -> file, document 2. */
function fileOf(origin: string | undefined): { file: string; doc: number } {
  const m = /^(.*)#(\d+)$/.exec(origin ?? '');
  return m ? { file: m[1] ?? '', doc: Number(m[2]) } : { file: origin ?? '', doc: 0 };
}

/** Each parse error as a finding, placed at its file (and its line, when the YAML parser gave one). */
export function fileFindings(errors: readonly ValidationError[]): Finding[] {
  return errors.map((e) => {
    const { file, doc } = fileOf(e.origin.file);
    const unknown = e.message.startsWith('unknown kind');
    const line = Number(/\(line (\d+), column \d+\)/.exec(e.message)?.[1] ?? 1);
    // A document without a usable kind and name is named by its place in the file (0-based, as local-dir counts).
    const named = e.kind !== '(unknown kind)' && e.name !== '' && !e.name.startsWith('(document');
    return finding(unknown ? 'UnknownKind' : 'ConfigFileError', {
      ...(named ? { kind: e.kind, namespace: e.namespace, name: e.name } : { kind: 'document', namespace: '', name: String(doc) }),
      message: e.message,
      hint: unknown ? 'nothing to do if the object is not for the gateway' : 'fix the document: meshgate local skips it',
      position: { file, line },
    });
  });
}

/** Objects defined again in a later file or document: the later definition wins, as a later `kubectl apply`. */
export function duplicateFindings(objects: readonly StoredObject[]): Finding[] {
  const first = new Map<string, string>();
  const out: Finding[] = [];
  for (const o of objects) {
    const ns = o.obj.metadata.namespace ?? 'default';
    const key = `${o.kind}/${ns}/${o.obj.metadata.name}`;
    const where = first.get(key);
    if (where === undefined) {
      first.set(key, o.origin.file ?? '');
      continue;
    }
    out.push(
      finding('DuplicateObject', {
        kind: o.kind,
        namespace: ns,
        name: o.obj.metadata.name,
        message: `also defined in ${where}: this later definition wins`,
        hint: 'remove one of them',
      }),
    );
  }
  return out;
}
