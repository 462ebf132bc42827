// Local mode's source: Kubernetes/Istio YAML (or JSON) files in a directory, as `kubectl apply -f DIR -R`
// would read them, watched for changes. Each reload replaces everything this directory contributed in one
// store change, so the translator never sees a half-loaded directory.
import { type FSWatcher, watch } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { parseAllDocuments } from 'yaml';
import type { ObjectStore } from '../model/store.ts';
import { isKind, KINDS, type KubeObject, type StoredObject } from '../model/objects.ts';
import type { ErrorReporter, ValidationError } from '../model/validation.ts';

export interface LocalDirSourceOptions {
  dir: string;
  store: ObjectStore;
  log: Logger;
  reporter: ErrorReporter;
  /** Rescan period, the fallback for file systems where fs.watch misses events (default 1000 ms). */
  rescanMs?: number;
  /** Quiet time after a watch event before reloading (default 20 ms). */
  settleMs?: number;
}

export interface LocalDirSource {
  close(): Promise<void>;
  /** Reloads now (tests). */
  reload(): Promise<void>;
}

const CONFIG_FILE = /\.(ya?ml|json)$/i;

interface ParsedFile {
  objects: StoredObject[];
  errors: ValidationError[];
}

function fileError(file: string, message: string, doc?: number, obj?: Partial<KubeObject>): ValidationError {
  return {
    kind: typeof obj?.kind === 'string' ? obj.kind : '(unknown kind)',
    namespace: obj?.metadata?.namespace ?? (obj?.metadata?.name ? 'default' : ''),
    name: obj?.metadata?.name ?? (doc === undefined ? '' : `(document ${doc})`),
    origin: { file: doc === undefined ? file : `${file}#${doc}` },
    message,
  };
}

/** Turns one parsed document (an object or a `List`) into stored objects, or errors. */
function addDocument(value: unknown, file: string, doc: number, out: ParsedFile): void {
  if (value === null || value === undefined) return;
  if (typeof value !== 'object' || Array.isArray(value)) {
    out.errors.push(fileError(file, 'a document must be a Kubernetes object (a map with apiVersion, kind and metadata): skipped', doc));
    return;
  }
  const o = value as Partial<KubeObject> & { items?: unknown };
  if (o.kind === 'List' || (typeof o.kind === 'string' && o.kind.endsWith('List') && Array.isArray(o.items))) {
    if (!Array.isArray(o.items)) {
      out.errors.push(fileError(file, 'a List must have items: skipped', doc, o));
      return;
    }
    for (const item of o.items) addDocument(item, file, doc, out);
    return;
  }
  if (!isKind(o.kind)) {
    out.errors.push(fileError(file, `unknown kind ${JSON.stringify(o.kind)}: skipped (meshgate reads ${KINDS.join(', ')})`, doc, o));
    return;
  }
  if (typeof o.metadata !== 'object' || o.metadata === null || typeof o.metadata.name !== 'string' || o.metadata.name === '') {
    out.errors.push(fileError(file, 'metadata.name is required: skipped', doc, o));
    return;
  }
  if (typeof o.apiVersion !== 'string') {
    out.errors.push(fileError(file, 'apiVersion is required: skipped', doc, o));
    return;
  }
  // As `kubectl apply` without -n: objects without a namespace land in `default`.
  const obj = { ...o, metadata: { ...o.metadata, namespace: o.metadata.namespace ?? 'default' } } as KubeObject;
  out.objects.push({ kind: o.kind, obj, origin: { file: doc === 0 ? file : `${file}#${doc}` } });
}

export function parseConfigFile(text: string, file: string): ParsedFile {
  const out: ParsedFile = { objects: [], errors: [] };
  if (/\.json$/i.test(file)) {
    try {
      addDocument(JSON.parse(text), file, 0, out);
    } catch (err) {
      out.errors.push(fileError(file, `invalid JSON: ${(err as Error).message}: file skipped`));
    }
    return out;
  }
  const docs = parseAllDocuments(text);
  const list = Array.isArray(docs) ? docs : [docs];
  list.forEach((d, i) => {
    if (d.errors.length > 0) {
      const e = d.errors[0];
      const where = e?.linePos?.[0] ? ` (line ${e.linePos[0].line}, column ${e.linePos[0].col})` : '';
      out.errors.push(fileError(file, `malformed YAML${where}: ${(e?.message.split('\n')[0] ?? 'parse error').replace(/:$/, '')}: document skipped`, i));
      return;
    }
    addDocument(d.toJS(), file, i, out);
  });
  return out;
}

/** The config files under dir, and the directories walked to find them (dir first). */
async function listFiles(dir: string): Promise<{ files: string[]; dirs: string[] }> {
  const out: string[] = [];
  const dirs: string[] = [];
  const walk = async (d: string): Promise<void> => {
    dirs.push(d);
    const entries = await readdir(d, { withFileTypes: true });
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.name.startsWith('.')) continue; // editor swap files, ..data symlinks of ConfigMap mounts
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (CONFIG_FILE.test(e.name)) out.push(p);
      else if (e.isSymbolicLink()) {
        const st = await stat(p).catch(() => undefined);
        if (st?.isDirectory()) await walk(p);
        else if (st?.isFile() && CONFIG_FILE.test(e.name)) out.push(p);
      }
    }
  };
  await walk(dir);
  return { files: out, dirs };
}

export async function startLocalDirSource(opts: LocalDirSourceOptions): Promise<LocalDirSource> {
  const o = { ...opts, dir: resolve(opts.dir) };
  const log = o.log.child({ component: 'local-dir', dir: o.dir });
  // Each file's text and what it parsed to: a reload re-parses only the files whose text changed, and the
  // objects of unchanged files are the same objects as before (the store skips them by identity).
  const files = new Map<string, { ino: number; mtimeMs: number; size: number; text: string; parsed?: ParsedFile }>();
  let lastSignature = '';
  let reported = new Set<string>();
  let loading: Promise<void> | undefined;
  let again = false;
  let closed = false;

  const owns = (s: StoredObject): boolean => s.origin.file !== undefined && (s.origin.file === o.dir || s.origin.file.startsWith(`${o.dir}/`));

  // One non-recursive watch per directory walked. Not fs.watch's recursive mode: on Linux, Node emulates
  // it with a watch per file, which goes deaf to a file once it has been replaced by a rename (an atomic
  // save, `kubectl cp`, a ConfigMap update), leaving such edits to the periodic rescan (up to rescanMs
  // late). A directory's own watch reports creations, renames into it, writes and deletions of its entries.
  const watchers = new Map<string, FSWatcher>();
  let settle: NodeJS.Timeout | undefined;
  const onEvent = (): void => {
    clearTimeout(settle);
    settle = setTimeout(() => void reload(), o.settleMs ?? 20);
  };
  const watchDirs = (dirs: readonly string[]): void => {
    if (closed) return;
    const want = new Set(dirs);
    for (const [d, w] of watchers) {
      if (want.has(d)) continue;
      w.close();
      watchers.delete(d);
    }
    for (const d of want) {
      if (watchers.has(d)) continue;
      try {
        const w = watch(d, onEvent);
        w.on('error', (err) => {
          // The directory went away (or the watch broke): the next rescan adds it back if it is still there.
          log.debug({ watched: d, err: err.message }, 'watch ended');
          w.close();
          if (watchers.get(d) === w) watchers.delete(d);
        });
        watchers.set(d, w);
      } catch (err) {
        log.warn({ watched: d, err: (err as Error).message }, 'cannot watch a config directory: relying on the periodic rescan');
      }
    }
  };

  const loadOnce = async (): Promise<void> => {
    const { files: paths, dirs } = await listFiles(o.dir);
    watchDirs(dirs);
    const seen = new Set<string>();
    let changed = false;
    for (const p of paths) {
      seen.add(p);
      const st = await stat(p).catch(() => undefined);
      if (!st) continue;
      const prev = files.get(p);
      // The inode too: a same-size file renamed over this one within the file system's timestamp
      // granularity keeps both mtime and size, but not the inode.
      if (prev && prev.ino === st.ino && prev.mtimeMs === st.mtimeMs && prev.size === st.size) continue;
      const text = await readFile(p, 'utf8').catch(() => undefined);
      if (text === undefined) continue;
      if (prev?.text !== text) {
        changed = true;
        files.set(p, { ino: st.ino, mtimeMs: st.mtimeMs, size: st.size, text });
      } else files.set(p, { ...prev, ino: st.ino, mtimeMs: st.mtimeMs, size: st.size });
    }
    for (const p of [...files.keys()]) {
      if (!seen.has(p)) {
        files.delete(p);
        changed = true;
      }
    }
    const signature = [...files.keys()].sort().join('\n');
    if (!changed && signature === lastSignature) return;
    lastSignature = signature;
    const objects: StoredObject[] = [];
    const errors: ValidationError[] = [];
    const keys = new Map<string, string>();
    for (const p of [...files.keys()].sort()) {
      const f = files.get(p);
      if (!f) continue;
      f.parsed ??= parseConfigFile(f.text, p);
      const parsed = f.parsed;
      errors.push(...parsed.errors);
      for (const s of parsed.objects) {
        const key = `${s.kind}/${s.obj.metadata.namespace}/${s.obj.metadata.name}`;
        const first = keys.get(key);
        if (first) {
          errors.push({ kind: s.kind, namespace: s.obj.metadata.namespace ?? '', name: s.obj.metadata.name, origin: s.origin, message: `also defined in ${first}: this later definition wins (remove one of them)` });
        }
        keys.set(key, s.origin.file ?? p);
        objects.push(s);
      }
    }
    // Report each problem once while it lasts.
    const fresh = errors.filter((e) => !reported.has(JSON.stringify(e)));
    reported = new Set(errors.map((e) => JSON.stringify(e)));
    if (fresh.length > 0) o.reporter.report(fresh);
    const didChange = o.store.replace(owns, objects);
    log.info({ files: files.size, objects: objects.length, errors: errors.length, changed: didChange }, 'config directory loaded');
  };

  const reload = async (): Promise<void> => {
    if (closed) return;
    if (loading) {
      again = true;
      return loading;
    }
    loading = (async () => {
      try {
        do {
          again = false;
          await loadOnce();
        } while (again && !closed);
      } catch (err) {
        log.error({ err: (err as Error).message }, 'cannot read the config directory: keeping the last loaded configuration');
      } finally {
        loading = undefined;
      }
    })();
    return loading;
  };

  // The first full load must succeed (a missing directory is the caller's error to report).
  const st = await stat(o.dir);
  if (!st.isDirectory()) throw new Error(`${o.dir} is not a directory: pass the directory that holds the YAML files`);
  await loadOnce();

  const rescan = setInterval(() => void reload(), o.rescanMs ?? 1000);
  rescan.unref();

  return {
    reload,
    async close() {
      closed = true;
      clearInterval(rescan);
      clearTimeout(settle);
      for (const w of watchers.values()) w.close();
      watchers.clear();
      await loading;
      for (const w of watchers.values()) w.close();
    },
  };
}
