// The contract between the halves: every Envoy resource the controller's golden translation cases produce
// (controller/translate/testdata/*.out.yaml) must be accepted by the proxy's parsers, as the proxy's ADS
// client hands them over (encoded with the protos and decoded back to proto3 JSON). No refusal is expected
// (a gap must be fixed, not listed) except where Envoy itself refuses what istiod sends: ENVOY_REFUSES.
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

/** Goldens with a resource Envoy NACKs, as istiod generates it: the proxy must refuse exactly that, for Envoy's reason. */
const ENVOY_REFUSES: Readonly<Record<string, RegExp>> = {
  // A VirtualService header match `"@request.auth.claims.role": {}` becomes an empty StringMatcher in a route's
  // dynamic_metadata matcher; StringMatcher.match_pattern is required (validate.required), so Envoy rejects the
  // RouteConfiguration and keeps the last good one.
  'authn-claim-routes.out.yaml':
    /^route configuration 'http\.8080'.*\.dynamic_metadata\[0\]\.value\.or_match\.value_matchers\[0\]\.list_match\.one_of\.string_match: a string matcher needs one of/,
};

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
      const refused = ENVOY_REFUSES[file];
      if (refused) {
        assert.equal(errors.length, 1, errors.join('\n'));
        assert.match(errors[0] ?? '', refused);
      } else assert.deepEqual(errors, []);
    });
  }
});
