// The contract between the halves: every Envoy resource the controller's golden translation cases produce
// (controller/translate/testdata/*.out.yaml) must be accepted by the proxy's parsers, as the proxy's ADS
// client hands them over (encoded with the protos and decoded back to proto3 JSON). TLS, tcp_proxy,
// consistent hashing and outlier detection, once listed as known gaps, are implemented: only the refusals
// in KNOWN_GAPS are expected, each with its reason, and the test fails when one of them stops happening,
// so the list cannot go stale and hide a regression again.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { TypeUrls } from '../xds/envoy.ts';
import { normalizeJson } from '../xds/protos.ts';
import { parseListener } from './listener/listener-config.ts';
import { compileRouteConfig } from './router/route-config.ts';
import { parseCluster, parseLoadAssignment } from './upstream/cluster.ts';

const DIR = join(import.meta.dirname, '..', 'controller', 'translate', 'testdata');

// The refusals expected today, each with the goldens it appears in and why. A new entry needs a reason a
// reviewer accepts: a feature the proxy does not implement yet, NACKed with a message naming the resource.
const KNOWN_GAPS: { goldens: string[]; error: RegExp; why: string }[] = [
  {
    goldens: ['tls-upstream-variants.out.yaml'],
    error: /^cluster 'outbound\|8443\|\|(simple|skip|missing)\.example\.com': TLS to HTTP\/2 upstreams is not supported by this proxy yet/,
    why: 'a GRPC ServiceEntry port with DestinationRule TLS origination: the HTTP/2 upstream pool has no TLS yet, so the cluster is NACKed by name',
  },
];

describe('controller golden outputs are accepted by the proxy', () => {
  for (const file of readdirSync(DIR)
    .filter((f) => f.endsWith('.out.yaml'))
    .sort()) {
    test(file, () => {
      const d = parse(readFileSync(join(DIR, file), 'utf8')) as Record<'listeners' | 'routes' | 'clusters' | 'endpoints', unknown[] | undefined>;
      const errors: string[] = [];
      const check = <U extends keyof TypeUrls>(typeUrl: U, resource: unknown, accept: (m: TypeUrls[U]) => unknown): void => {
        try {
          accept(normalizeJson(typeUrl.replace('type.googleapis.com/', ''), resource));
        } catch (e) {
          errors.push((e as Error).message);
        }
      };
      for (const l of d.listeners ?? []) check('type.googleapis.com/envoy.config.listener.v3.Listener', l, parseListener);
      for (const r of d.routes ?? []) check('type.googleapis.com/envoy.config.route.v3.RouteConfiguration', r, compileRouteConfig);
      for (const c of d.clusters ?? []) check('type.googleapis.com/envoy.config.cluster.v3.Cluster', c, parseCluster);
      for (const e of d.endpoints ?? [])
        check('type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment', e, (m) => parseLoadAssignment(m, 'cluster load assignment'));
      const gaps = KNOWN_GAPS.filter((g) => g.goldens.includes(file));
      assert.deepEqual(
        errors.filter((m) => !gaps.some((g) => g.error.test(m))),
        [],
      );
      for (const g of gaps)
        assert.ok(
          errors.some((m) => g.error.test(m)),
          `known gap no longer happens, remove it from KNOWN_GAPS: ${g.why}`,
        );
    });
  }
});
