// Local mode's source: Kubernetes/Istio YAML (or JSON) files in a directory, as `kubectl apply -f DIR -R`
// would read them, watched for changes. Each reload replaces everything this directory contributed in one
// store change, so the translator never sees a half-loaded directory.
import { constants, type FSWatcher, type Stats, watch } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { parseAllDocuments } from 'yaml';
import type { ObjectStore } from '../model/store.ts';
import { isKind, KINDS, NOT_HONOURED_KINDS, type KubeObject, type StoredObject, storeKind } from '../model/objects.ts';
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

/** The files the local source reads (and `meshgate validate` with it): YAML or JSON by extension. */
export const CONFIG_FILE = /\.(ya?ml|json)$/i;

interface ParsedFile {
  objects: StoredObject[];
  errors: ValidationError[];
  /** Documents that are not valid YAML (or JSON): where and why, without what is done about it. */
  malformed: { doc?: number; text: string }[];
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
  const kind = storeKind(o.apiVersion, o.kind);
  if (!isKind(kind)) {
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
  out.objects.push({ kind, obj, origin: { file: doc === 0 ? file : `${file}#${doc}` } });
}

export function parseConfigFile(text: string, file: string): ParsedFile {
  const out: ParsedFile = { objects: [], errors: [], malformed: [] };
  if (/\.json$/i.test(file)) {
    try {
      addDocument(JSON.parse(text), file, 0, out);
    } catch (err) {
      out.malformed.push({ text: `invalid JSON: ${(err as Error).message}` });
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
      const why = `malformed YAML${where}: ${(e?.message.split('\n')[0] ?? 'parse error').replace(/:$/, '')}`;
      out.malformed.push({ doc: i, text: why });
      out.errors.push(fileError(file, `${why}: document skipped`, i));
      return;
    }
    addDocument(d.toJS(), file, i, out);
  });
  return out;
}

/**
 * What a file contributes, given its new text and the last version of it that parsed (`good`). As
 * `kubectl apply` rejects an update that does not parse and the cluster keeps the objects it had, a file
 * whose new text is malformed keeps contributing its last good objects. A file truncated to nothing is
 * most likely being saved in place (truncate, then write), so its last good objects stay until content
 * arrives; deleting the file is how its objects are removed. Without a good version, what parsed is used.
 */
function effectiveContent(file: string, text: string, good: ParsedFile | undefined): { parsed: ParsedFile; good: ParsedFile | undefined } {
  const empty = text.trim() === '';
  if (good && good.objects.length > 0 && empty) {
    const held = `file is empty (a save in progress?): its last good version (${good.objects.length} objects) stays in effect until it has content again; delete the file to remove those objects`;
    return { parsed: { ...good, errors: [...good.errors, fileError(file, held)], malformed: [] }, good };
  }
  const parsed = parseConfigFile(text, file);
  if (parsed.malformed.length === 0) return { parsed, good: parsed };
  if (!good) return { parsed, good };
  const errors = parsed.malformed.map((m) =>
    fileError(
      file,
      `${m.text}: the file is not applied and its last good version (${good.objects.length} objects) stays in effect; fix the file, or delete it to remove those objects`,
      m.doc,
    ),
  );
  return { parsed: { objects: good.objects, errors: [...good.errors, ...errors], malformed: parsed.malformed }, good };
}

/**
 * The config files under dir, the directories walked to find them (dir first), and entries with a config
 * file's name that are not regular files (a FIFO, socket or device named `*.yaml`): never opened, since
 * reading a FIFO blocks until a writer comes.
 */
async function listFiles(dir: string): Promise<{ files: string[]; dirs: string[]; special: Map<string, string> }> {
  const out: string[] = [];
  const dirs: string[] = [];
  const special = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    dirs.push(d);
    const entries = await readdir(d, { withFileTypes: true });
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.name.startsWith('.')) continue; // editor swap files, ..data symlinks of ConfigMap mounts
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isSymbolicLink()) {
        const st = await stat(p).catch(() => undefined);
        if (st?.isDirectory()) await walk(p);
        else if (st && CONFIG_FILE.test(e.name)) {
          if (st.isFile()) out.push(p);
          else special.set(p, fileType(st));
        }
      } else if (CONFIG_FILE.test(e.name)) {
        if (e.isFile()) out.push(p);
        else special.set(p, e.isFIFO() ? 'a FIFO' : e.isSocket() ? 'a socket' : 'a device');
      }
    }
  };
  await walk(dir);
  return { files: out, dirs, special };
}

function fileType(st: Stats): string {
  return st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : st.isFile() ? 'a regular file' : 'a device';
}

/**
 * Reads a regular file's text without ever blocking: opened non-blocking (a FIFO put in its place since
 * it was listed opens at once instead of waiting for a writer), then checked on the open descriptor.
 */
async function readRegularFile(p: string): Promise<{ text: string; st: Stats } | { notRegular: string } | undefined> {
  const fh = await open(p, constants.O_RDONLY | constants.O_NONBLOCK).catch(() => undefined);
  if (!fh) return undefined;
  try {
    const st = await fh.stat();
    if (!st.isFile()) return { notRegular: fileType(st) };
    return { text: await fh.readFile('utf8'), st };
  } catch {
    return undefined;
  } finally {
    await fh.close();
  }
}

/** A config file as last read: its identity (to skip unchanged files), text, and what it parsed to. */
interface FileEntry {
  ino: number;
  mtimeMs: number;
  size: number;
  text: string;
  /** What the file contributes now; undefined until the next collectObjects parses the new text. */
  parsed?: ParsedFile;
  /** The last version of the file that parsed (see effectiveContent). */
  good?: ParsedFile;
}

/**
 * One non-recursive watch per directory walked. Not fs.watch's recursive mode: on Linux, Node emulates it
 * with a watch per file, which goes deaf to a file once it has been replaced by a rename (an atomic save,
 * `kubectl cp`, a ConfigMap update), leaving such edits to the periodic rescan (up to rescanMs late). A
 * directory's own watch reports creations, renames into it, writes and deletions of its entries.
 */
function directoryWatches(log: Logger, onEvent: () => void): { watch(dirs: readonly string[]): void; close(): void } {
  const watchers = new Map<string, FSWatcher>();
  let closed = false;
  return {
    /** Watches exactly these directories: new ones are added, those no longer walked are closed. */
    watch(dirs) {
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
    },
    close() {
      closed = true;
      for (const w of watchers.values()) w.close();
      watchers.clear();
    },
  };
}

/**
 * Brings `files` up to date with the listed paths: reads the files whose inode, mtime or size changed,
 * moves entries that turned out not to be regular files to `special`, and forgets files no longer there.
 * Returns whether any file's text changed or a file went away.
 */
async function refreshFiles(paths: readonly string[], files: Map<string, FileEntry>, special: Map<string, string>): Promise<boolean> {
  const seen = new Set<string>();
  let changed = false;
  for (const p of paths) {
    const st = await stat(p).catch(() => undefined);
    if (!st) continue;
    if (!st.isFile()) {
      special.set(p, fileType(st));
      continue;
    }
    seen.add(p);
    const prev = files.get(p);
    // The inode too: a same-size file renamed over this one within the file system's timestamp
    // granularity keeps both mtime and size, but not the inode.
    if (prev && prev.ino === st.ino && prev.mtimeMs === st.mtimeMs && prev.size === st.size) continue;
    const read = await readRegularFile(p);
    if (read === undefined) continue; // gone since listed: the next rescan sees what replaced it
    if ('notRegular' in read) {
      seen.delete(p);
      special.set(p, read.notRegular);
      continue;
    }
    const { text, st: rst } = read;
    if (prev?.text !== text) {
      changed = true;
      files.set(p, { ino: rst.ino, mtimeMs: rst.mtimeMs, size: rst.size, text, good: prev?.good });
    } else files.set(p, { ...prev, ino: rst.ino, mtimeMs: rst.mtimeMs, size: rst.size });
  }
  for (const p of [...files.keys()]) {
    if (!seen.has(p)) {
      files.delete(p);
      changed = true;
    }
  }
  return changed;
}

/** Warns about each config-named entry that is not a regular file, once while it stays so. */
function warnSkippedEntries(log: Logger, special: ReadonlyMap<string, string>, warned: ReadonlyMap<string, string>): void {
  for (const [p, what] of special) {
    if (warned.get(p) !== what)
      log.warn({ file: p, type: what }, `${p} is ${what}, not a regular file: skipped (only regular files are read; remove it or give it another name)`);
  }
}

const notHonoured: ReadonlySet<string> = new Set(NOT_HONOURED_KINDS);

/**
 * Every file's objects, in path order (parsing the files whose text changed), with the files' errors and
 * one for each object defined again in a later file (the later definition wins, as a later
 * `kubectl apply` would). Objects of the Istio kinds meshgate does not implement are reported and left out.
 */
function collectObjects(files: ReadonlyMap<string, FileEntry>): { objects: StoredObject[]; errors: ValidationError[] } {
  const objects: StoredObject[] = [];
  const errors: ValidationError[] = [];
  const keys = new Map<string, string>();
  for (const p of [...files.keys()].sort()) {
    const f = files.get(p);
    if (!f) continue;
    if (!f.parsed) {
      const r = effectiveContent(p, f.text, f.good);
      f.parsed = r.parsed;
      f.good = r.good;
    }
    const parsed = f.parsed;
    errors.push(...parsed.errors);
    for (const s of parsed.objects) {
      // Parsed (meshgate validate reports them its own way) but not loaded: there is no status to mark them with here.
      if (notHonoured.has(s.kind)) {
        errors.push({
          kind: s.kind,
          namespace: s.obj.metadata.namespace ?? '',
          name: s.obj.metadata.name,
          origin: s.origin,
          message: `${s.kind} is not implemented by meshgate: this gateway ignores it (docs/install.md#crds)`,
        });
        continue;
      }
      const key = `${s.kind}/${s.obj.metadata.namespace}/${s.obj.metadata.name}`;
      const first = keys.get(key);
      if (first) {
        errors.push({
          kind: s.kind,
          namespace: s.obj.metadata.namespace ?? '',
          name: s.obj.metadata.name,
          origin: s.origin,
          message: `also defined in ${first}: this later definition wins (remove one of them)`,
        });
      }
      keys.set(key, s.origin.file ?? p);
      objects.push(s);
    }
  }
  return { objects, errors };
}

/**
 * Runs `load` one at a time: a reload asked for while one runs makes it run once more when it ends (so
 * the last change is always seen), and a failed load is logged, keeping what the store holds.
 */
function serializedReloads(load: () => Promise<void>, log: Logger, isClosed: () => boolean): { reload: () => Promise<void>; idle: () => Promise<void> } {
  let loading: Promise<void> | undefined;
  let again = false;
  const reload = async (): Promise<void> => {
    if (isClosed()) return;
    if (loading) {
      again = true;
      return loading;
    }
    loading = (async () => {
      try {
        do {
          again = false;
          await load();
        } while (again && !isClosed());
      } catch (err) {
        log.error({ err: (err as Error).message }, 'cannot read the config directory: keeping the last loaded configuration');
      } finally {
        loading = undefined;
      }
    })();
    return loading;
  };
  return { reload, idle: async () => await loading };
}

export async function startLocalDirSource(opts: LocalDirSourceOptions): Promise<LocalDirSource> {
  const o = { ...opts, dir: resolve(opts.dir) };
  const log = o.log.child({ component: 'local-dir', dir: o.dir });
  // Each file's text and what it parsed to: a reload re-parses only the files whose text changed, and the
  // objects of unchanged files are the same objects as before (the store skips them by identity).
  const files = new Map<string, FileEntry>();
  // Config-named entries that are not regular files, reported once each while they stay so.
  let skipped = new Map<string, string>();
  let lastSignature = '';
  let reported = new Set<string>();
  let closed = false;

  const owns = (s: StoredObject): boolean => s.origin.file !== undefined && (s.origin.file === o.dir || s.origin.file.startsWith(`${o.dir}/`));

  let settle: NodeJS.Timeout | undefined;
  const watches = directoryWatches(log, () => {
    clearTimeout(settle);
    settle = setTimeout(() => void reloads.reload(), o.settleMs ?? 20);
  });

  const loadOnce = async (): Promise<void> => {
    const { files: paths, dirs, special } = await listFiles(o.dir);
    watches.watch(dirs);
    const changed = await refreshFiles(paths, files, special);
    warnSkippedEntries(log, special, skipped);
    skipped = special;
    const signature = [...files.keys()].sort().join('\n');
    if (!changed && signature === lastSignature) return;
    lastSignature = signature;
    const { objects, errors } = collectObjects(files);
    // Report each problem once while it lasts.
    const fresh = errors.filter((e) => !reported.has(JSON.stringify(e)));
    reported = new Set(errors.map((e) => JSON.stringify(e)));
    if (fresh.length > 0) o.reporter.report(fresh);
    const didChange = o.store.replace(owns, objects);
    log.info({ files: files.size, objects: objects.length, errors: errors.length, changed: didChange }, 'config directory loaded');
  };
  const reloads = serializedReloads(loadOnce, log, () => closed);

  // The first full load must succeed (a missing directory is the caller's error to report).
  const st = await stat(o.dir);
  if (!st.isDirectory()) throw new Error(`${o.dir} is not a directory: pass the directory that holds the YAML files`);
  await loadOnce();

  const rescan = setInterval(() => void reloads.reload(), o.rescanMs ?? 1000);
  rescan.unref();

  return {
    reload: reloads.reload,
    async close() {
      closed = true;
      clearInterval(rescan);
      clearTimeout(settle);
      watches.close();
      await reloads.idle();
    },
  };
}
