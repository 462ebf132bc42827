// One store of objects, filled by a source (local YAML directory or Kubernetes informers) and read as an
// immutable snapshot by the model/translate stages. Sources never talk to the translator directly.
import { EventEmitter } from 'node:events';
import { type Kind, type KubeObject, type Origin, type StoredObject, objectKey } from './objects.ts';

export interface StoreSnapshot {
  /** Monotonic revision: bumps on every effective change. */
  revision: number;
  objects: readonly StoredObject[];
  byKind(kind: Kind): readonly StoredObject[];
}

export class ObjectStore extends EventEmitter<{ change: [kinds: ReadonlySet<Kind>] }> {
  private readonly objects = new Map<string, StoredObject>();
  private revision = 0;

  /** Inserts or replaces one object. Returns false when nothing changed (same resourceVersion/content). */
  upsert(kind: Kind, obj: KubeObject, origin: Origin = {}): boolean {
    const key = objectKey(kind, obj.metadata.namespace, obj.metadata.name);
    const prev = this.objects.get(key);
    if (prev && sameObject(prev.obj, obj)) return false;
    this.objects.set(key, { kind, obj, origin });
    this.changed(new Set([kind]));
    return true;
  }

  delete(kind: Kind, namespace: string | undefined, name: string): boolean {
    if (!this.objects.delete(objectKey(kind, namespace, name))) return false;
    this.changed(new Set([kind]));
    return true;
  }

  /**
   * Replaces every object matching `owns` with `next` in one change (a relist of a kind, or a reload of
   * a directory): one event, no window in which the objects are missing.
   */
  replace(owns: (o: StoredObject) => boolean, next: readonly StoredObject[]): boolean {
    const kinds = new Set<Kind>();
    const keep = new Map<string, StoredObject>();
    for (const n of next) keep.set(objectKey(n.kind, n.obj.metadata.namespace, n.obj.metadata.name), n);
    for (const [key, cur] of this.objects) {
      if (!owns(cur)) continue;
      const n = keep.get(key);
      if (!n) {
        this.objects.delete(key);
        kinds.add(cur.kind);
      }
    }
    for (const [key, n] of keep) {
      const cur = this.objects.get(key);
      if (cur && sameObject(cur.obj, n.obj) && cur.origin.file === n.origin.file) continue;
      this.objects.set(key, n);
      kinds.add(n.kind);
    }
    if (kinds.size === 0) return false;
    this.changed(kinds);
    return true;
  }

  snapshot(): StoreSnapshot {
    const objects = [...this.objects.values()];
    const index = new Map<Kind, StoredObject[]>();
    for (const o of objects) {
      let list = index.get(o.kind);
      if (!list) index.set(o.kind, (list = []));
      list.push(o);
    }
    return { revision: this.revision, objects, byKind: (k) => index.get(k) ?? [] };
  }

  private changed(kinds: ReadonlySet<Kind>): void {
    this.revision++;
    this.emit('change', kinds);
  }
}

function sameObject(a: KubeObject, b: KubeObject): boolean {
  // A source that hands back the object it stored before (local-dir for files it did not re-parse).
  if (a === b) return true;
  const ra = a.metadata.resourceVersion;
  if (ra !== undefined && ra === b.metadata.resourceVersion) return true;
  return JSON.stringify(a) === JSON.stringify(b);
}
