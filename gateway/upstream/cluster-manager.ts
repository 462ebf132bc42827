// The cluster manager: static clusters (Istio's bootstrap ones) plus CDS clusters, with Envoy's warming
// (an EDS cluster becomes active when its first ClusterLoadAssignment arrives; a modified cluster keeps
// serving the old version until the new one is warm) and Envoy's cluster_manager.* stats.
import type { Logger } from 'pino';
import type { envoy } from '../../xds/envoy.ts';
import { ConfigError } from '../xds/json.ts';
import type { StatsStore } from '../stats/store.ts';
import { Cluster, parseCluster, parseLoadAssignment, type ClusterSpec } from './cluster.ts';
import type { SecretStore } from '../tls/secrets.ts';
import type { WorkerSharing } from './worker-sharing.ts';

type EnvoyCluster = envoy.config.cluster.v3.Cluster;
type ClusterLoadAssignment = envoy.config.endpoint.v3.ClusterLoadAssignment;

export interface ClusterUpdateResult {
  errors: string[];
  changed: boolean;
}

export class ClusterManager {
  /** Active clusters by name (static and dynamic). */
  readonly active = new Map<string, Cluster>();
  readonly warming = new Map<string, Cluster>();
  readonly staticNames = new Set<string>();
  /** Bumped whenever the active set changes: routes cache their cluster lookups against it. */
  generation = 0;
  /** Last ClusterLoadAssignment per EDS service name (Envoy's EDS resource cache). */
  private readonly assignments = new Map<string, ClusterLoadAssignment>();
  /** Canonical JSON per dynamic cluster, to skip identical updates as Envoy does (by hash). */
  private readonly hashes = new Map<string, string>();
  private readonly store: StatsStore;
  private readonly log: Logger;
  private readonly s: { added: number; modified: number; removed: number; updateOutOfMerge: number };
  /** Called when a cluster finishes warming (the init manager waits for this). */
  onWarm: () => void = () => undefined;
  /** Certificates for clusters with upstream TLS (set by the proxy). */
  secrets: SecretStore | undefined;
  /** Outlier detection across workers (set by the data plane when there are several). */
  sharing: WorkerSharing | undefined;

  constructor(store: StatsStore, log: Logger) {
    this.store = store;
    this.log = log;
    this.s = {
      added: store.counter('cluster_manager.cluster_added'),
      modified: store.counter('cluster_manager.cluster_modified'),
      removed: store.counter('cluster_manager.cluster_removed'),
      updateOutOfMerge: store.counter('cluster_manager.update_out_of_merge_window'),
    };
    store.computedGauge('cluster_manager.active_clusters', () => this.active.size);
    store.computedGauge('cluster_manager.warming_clusters', () => this.warming.size);
    store.counter('cluster_manager.cluster_updated');
    store.counter('cluster_manager.update_merge_cancelled');
  }

  get(name: string): Cluster | undefined {
    return this.active.get(name);
  }

  /** Bootstrap (static) clusters: not removable by CDS, `added_via_api: false`. */
  addStatic(json: EnvoyCluster): void {
    const name = json.name ?? '';
    let spec: ClusterSpec = parseCluster(json);
    try {
      if (spec.loadAssignment) parseLoadAssignment(spec.loadAssignment, `cluster '${name}'`);
    } catch {
      // Pipe (UDS) addresses of Istio's sds-grpc: shown in admin output, never used for traffic.
      spec = { ...spec, loadAssignment: undefined };
    }
    const c = new Cluster(spec, json, this.store, { versionInfo: '', addedViaApi: false, log: this.log, secrets: this.secrets });
    c.warm = true;
    this.active.set(name, c);
    this.staticNames.add(name);
    this.generation++;
  }

  /** State-of-the-world CDS update. Valid clusters apply; invalid ones keep their previous version. */
  applyCds(resources: EnvoyCluster[], version: string): ClusterUpdateResult {
    const errors: string[] = [];
    let changed = false;
    const names = new Set<string>();
    for (const r of resources) names.add(r.name ?? '');
    // Removals first (Envoy removes clusters missing from the update before adding).
    for (const name of [...this.active.keys(), ...this.warming.keys()]) {
      if (this.staticNames.has(name) || names.has(name)) continue;
      const a = this.active.get(name);
      const w = this.warming.get(name);
      if (a) {
        this.active.delete(name);
        a.close();
        this.store.inc(this.s.removed);
        changed = true;
      }
      if (w) {
        this.warming.delete(name);
        w.close();
      }
      this.hashes.delete(name);
    }
    for (const r of resources) {
      const name = r.name ?? '';
      if (this.staticNames.has(name)) {
        errors.push(`cluster '${name}': a static cluster of the same name exists`);
        continue;
      }
      const hash = JSON.stringify(r);
      if (this.hashes.get(name) === hash) continue;
      let spec: ClusterSpec;
      try {
        spec = parseCluster(r);
      } catch (e) {
        errors.push(e instanceof ConfigError ? e.message : `cluster '${name}': ${(e as Error).message}`);
        continue;
      }
      let c: Cluster;
      try {
        c = new Cluster(spec, r, this.store, { versionInfo: version, addedViaApi: true, log: this.log, secrets: this.secrets, sharing: this.sharing });
      } catch (e) {
        errors.push(e instanceof ConfigError ? e.message : `cluster '${name}': ${(e as Error).message}`);
        continue;
      }
      this.hashes.set(name, hash);
      changed = true;
      const previousWarming = this.warming.get(name);
      if (previousWarming) {
        this.warming.delete(name);
        previousWarming.close();
      }
      const old = this.active.get(name);
      if (old) c.inheritFrom(old);
      if (!c.warm && spec.edsServiceName !== undefined) {
        const cached = this.assignments.get(spec.edsServiceName);
        if (cached) this.applyAssignmentTo(c, cached);
      }
      if (old) this.store.inc(this.s.modified);
      else this.store.inc(this.s.added);
      if (c.warm) this.activate(c);
      else this.warming.set(name, c);
    }
    return { errors, changed };
  }

  private activate(c: Cluster): void {
    const old = this.active.get(c.name);
    this.active.set(c.name, c);
    this.generation++;
    if (old && old !== c) old.close();
  }

  private applyAssignmentTo(c: Cluster, cla: ClusterLoadAssignment): void {
    c.applyAssignment(cla, parseLoadAssignment(cla, `cluster load assignment '${c.spec.edsServiceName ?? c.name}'`));
  }

  /**
   * EDS update: the named assignments apply to every cluster that uses them; warming clusters activate.
   * A response may carry only some assignments (the controller sends the changed ones): clusters whose
   * assignment it leaves out keep their hosts, as in Envoy's SotW EDS.
   */
  applyEds(resources: ClusterLoadAssignment[]): ClusterUpdateResult {
    const errors: string[] = [];
    let changed = false;
    if (resources.length === 0) return { errors, changed };
    // Clusters by EDS service name, once per response (not a scan of every cluster per assignment).
    const byService = new Map<string, Cluster[]>();
    for (const c of [...this.active.values(), ...this.warming.values()]) {
      const n = c.spec.edsServiceName;
      if (n === undefined) continue;
      const l = byService.get(n);
      if (l) l.push(c);
      else byService.set(n, [c]);
    }
    for (const cla of resources) {
      const name = cla.cluster_name ?? '';
      let specs: ReturnType<typeof parseLoadAssignment>;
      try {
        // Parsed (and validated) once before touching any cluster; the host specs are read-only.
        specs = parseLoadAssignment(cla, `cluster load assignment '${name}'`);
      } catch (e) {
        errors.push(e instanceof ConfigError ? e.message : `cluster load assignment '${name}': ${(e as Error).message}`);
        continue;
      }
      this.assignments.set(name, cla);
      for (const c of byService.get(name) ?? []) {
        c.applyAssignment(cla, specs);
        changed = true;
        if (this.warming.get(c.name) === c) {
          this.warming.delete(c.name);
          this.activate(c);
          this.onWarm();
        }
      }
    }
    return { errors, changed };
  }

  /** EDS resource names the proxy must subscribe to (active and warming EDS clusters). */
  edsNames(): string[] {
    const out = new Set<string>();
    for (const c of [...this.active.values(), ...this.warming.values()]) if (c.spec.edsServiceName !== undefined) out.add(c.spec.edsServiceName);
    for (const n of [...this.assignments.keys()]) if (!out.has(n)) this.assignments.delete(n);
    return [...out].sort();
  }

  /** The ClusterLoadAssignments in use, as received. */
  assignmentResources(): ClusterLoadAssignment[] {
    return [...this.assignments.values()];
  }

  /** Dynamic clusters, for config_dump. */
  dynamicActive(): Cluster[] {
    return [...this.active.values()].filter((c) => c.addedViaApi);
  }

  staticClusters(): Cluster[] {
    return [...this.active.values()].filter((c) => !c.addedViaApi);
  }

  close(): void {
    for (const c of [...this.active.values(), ...this.warming.values()]) c.close();
    this.active.clear();
    this.warming.clear();
  }
}
