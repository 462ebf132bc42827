// The mesh config from a file (`--mesh-config FILE`), re-read when it changes, as istiod watches its mesh file
// (meshwatcher.NewFileSource). A Kubernetes ConfigMap volume updates by swapping a `..data` symlink in the file's
// directory, so the directory is watched, not the file, with a periodic re-read as the fallback for file systems
// where fs.watch misses events. An invalid file is reported (what, where, how to fix it) and the last good mesh
// config keeps serving (istiod: "invalid mesh config, using last known state"); at start, with none yet, istiod's
// defaults serve.
import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { DEFAULT_MESH_CONFIG, type MeshConfig, parseMeshConfig } from '../model/mesh-config.ts';

export interface MeshConfigFileOptions {
  file: string;
  log: Logger;
  /** Re-read period, the fallback when fs.watch misses an event (default 1000 ms). */
  rescanMs?: number;
  /** Quiet time after a watch event before re-reading (default 20 ms). */
  settleMs?: number;
}

/** What the controller reads: the current mesh config, and a 'change' event when another one is in force. */
export interface MeshConfigSource {
  current(): MeshConfig;
  on(event: 'change', listener: () => void): unknown;
  off(event: 'change', listener: () => void): unknown;
}

export class MeshConfigFile extends EventEmitter implements MeshConfigSource {
  private mesh: MeshConfig = DEFAULT_MESH_CONFIG;
  /** The text of the last read, valid or not: an unchanged file is neither parsed nor reported again. */
  private lastText: string | undefined;
  private watcher: FSWatcher | undefined;
  private rescan: NodeJS.Timeout | undefined;
  private settle: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private readonly file: string;
  private readonly log: Logger;
  private readonly o: MeshConfigFileOptions;

  private constructor(o: MeshConfigFileOptions) {
    super();
    this.o = o;
    this.file = resolve(o.file);
    this.log = o.log.child({ component: 'mesh-config', file: this.file });
  }

  /** Reads the file once (its mesh config, or the defaults when invalid), then watches it. */
  static async start(o: MeshConfigFileOptions): Promise<MeshConfigFile> {
    const s = new MeshConfigFile(o);
    await s.reload();
    s.watch();
    return s;
  }

  current(): MeshConfig {
    return this.mesh;
  }

  /** Re-reads now (tests, and every watch event or rescan tick); concurrent calls coalesce. */
  async reload(): Promise<void> {
    if (this.reading) {
      this.again = true;
      return this.reading;
    }
    this.reading = (async () => {
      do {
        this.again = false;
        await this.readOnce();
      } while (this.again && !this.closed);
    })();
    try {
      await this.reading;
    } finally {
      this.reading = undefined;
    }
  }

  private async readOnce(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      if (this.lastText === `\0${code}`) return;
      this.lastText = `\0${code}`;
      this.log.error(
        { err: code },
        `cannot read the mesh config file: ${code}; keeping the ${this.mesh === DEFAULT_MESH_CONFIG ? 'default' : 'last good'} mesh config (fix: make ${this.file} readable; in Kubernetes, check the ConfigMap <release>-mesh and its volume)`,
      );
      return;
    }
    if (text === this.lastText || this.closed) return;
    this.lastText = text;
    const parsed = parseMeshConfig(text, this.file);
    if (!parsed.ok) {
      this.log.error(
        { errors: parsed.errors },
        `invalid mesh config, keeping the ${this.mesh === DEFAULT_MESH_CONFIG ? 'default' : 'last good'} one: ${parsed.errors.join('; ')} (fix: correct the file; it holds what istiod's ConfigMap istio holds under the key mesh, the meshConfig of Istio's Helm values; see docs/mesh-config.md)`,
      );
      return;
    }
    for (const w of parsed.warnings) this.log.warn(w);
    this.mesh = parsed.mesh;
    this.log.info(
      { rootNamespace: parsed.mesh.rootNamespace, trustDomain: parsed.mesh.trustDomain, extensionProviders: parsed.mesh.extensionProviders.map((p) => p.name) },
      'mesh config loaded',
    );
    this.emit('change');
  }

  private watch(): void {
    const name = basename(this.file);
    const onEvent = (_event: string, changed: string | Buffer | null): void => {
      // A ConfigMap volume swaps `..data`; an editor may rename over the file: any of those re-reads.
      const f = changed?.toString();
      if (f !== undefined && f !== name && !f.startsWith('..')) return;
      clearTimeout(this.settle);
      this.settle = setTimeout(() => void this.reload(), this.o.settleMs ?? 20);
    };
    try {
      this.watcher = watch(dirname(this.file), { persistent: false }, onEvent);
      this.watcher.on('error', (err) =>
        this.log.warn({ err: err.message }, 'watching the mesh config directory failed: falling back to re-reading it every second'),
      );
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot watch the mesh config directory: re-reading it every second instead');
    }
    this.rescan = setInterval(() => void this.reload(), this.o.rescanMs ?? 1000);
    this.rescan.unref();
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
    clearInterval(this.rescan);
    clearTimeout(this.settle);
  }
}
