// The chart's containers against the CLI: every flag the rendered Deployment passes to `meshgate proxy` and
// `meshgate controller` must be one the command documents in its --help, so a renamed flag breaks this test
// rather than the pods.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { GATEWAY_CHART, REPO, only, template } from './helm.ts';
import type { Workload } from './k8s-types.ts';

const deploy = only<Workload>(
  template(GATEWAY_CHART, 'istio-ingressgateway', {
    // Every optional flag the chart can pass.
    set: { 'proxy.concurrency': 2 },
    setJson: { 'controller.watchNamespaces': ['default'] },
  }),
  'Deployment',
);

describe('chart containers and the meshgate CLI', () => {
  for (const c of deploy.spec.template.spec.containers) {
    const [subcommand = '', ...flags] = c.args ?? [];
    test(`${c.name}: \`meshgate ${subcommand} --help\` documents every flag the chart passes`, () => {
      const r = spawnSync(join(REPO, 'bin/meshgate'), [subcommand, '--help'], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 0, `meshgate ${subcommand} --help failed: ${r.stderr}`);
      for (const flag of flags) {
        const name = flag.split('=')[0] ?? flag;
        assert.ok(r.stdout.includes(name), `meshgate ${subcommand} --help does not mention ${name}`);
      }
    });
  }
});
