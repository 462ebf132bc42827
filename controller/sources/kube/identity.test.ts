import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../../cli/logger.ts';
import { gatewayIdentity, parseLabelsEnv, readPodAnnotations } from './identity.ts';

describe('gateway identity', () => {
  test('POD_LABELS: k=v pairs separated by commas; a pair without = is an error', () => {
    assert.deepEqual(parseLabelsEnv('istio=ingressgateway, app=gw ,'), { istio: 'ingressgateway', app: 'gw' });
    assert.deepEqual(parseLabelsEnv(''), {});
    assert.throws(() => parseLabelsEnv('istio'), /POD_LABELS takes key=value pairs/);
  });

  test('labels: the registry pod wins; otherwise the labels file over POD_LABELS; the file is re-read when the kubelet rewrites it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgate-identity-'));
    try {
      const file = join(dir, 'labels');
      writeFileSync(file, 'istio="ingressgateway"\n');
      let registry: Record<string, string> | undefined;
      const identity = gatewayIdentity({
        podName: 'gw-1',
        podNamespace: 'istio-system',
        labelsFile: file,
        envLabels: { istio: 'from-env', team: 'edge' },
        registryLabels: () => registry,
        log: silentLogger(),
      });
      assert.deepEqual(identity(), { namespace: 'istio-system', podName: 'gw-1', labels: { istio: 'ingressgateway', team: 'edge' } });
      // The kubelet updates Downward API files by swapping in a new file.
      writeFileSync(join(dir, 'labels.new'), 'istio="ingressgateway"\nversion="v2"\n');
      renameSync(join(dir, 'labels.new'), file);
      assert.deepEqual(identity().labels, { istio: 'ingressgateway', version: 'v2', team: 'edge' });
      registry = { istio: 'from-registry' };
      assert.deepEqual(identity().labels, { istio: 'from-registry' }, 'registry labels replace the agent-provided ones, as in istiod');
      registry = undefined;
      rmSync(file);
      assert.deepEqual(identity().labels, { istio: 'ingressgateway', version: 'v2', team: 'edge' }, 'an unreadable file keeps the last labels read');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('without a labels file, POD_LABELS is used', () => {
    const identity = gatewayIdentity({ podName: 'p', podNamespace: 'ns', envLabels: { istio: 'egressgateway' }, log: silentLogger() });
    assert.deepEqual(identity().labels, { istio: 'egressgateway' });
  });

  test('annotations: proxy.istio.io/config from the Downward API file (Go-quoted values); other annotations are not kept', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgate-identity-'));
    try {
      const file = join(dir, 'annotations');
      const value = 'gatewayTopology:\n  numTrustedProxies: 2\n';
      writeFileSync(file, `kubectl.kubernetes.io/restartedAt="2026-01-01T00:00:00Z"\nproxy.istio.io/config=${JSON.stringify(value)}\n`);
      const annotations = readPodAnnotations(file, silentLogger());
      assert.deepEqual(annotations, { 'proxy.istio.io/config': value });
      const identity = gatewayIdentity({ podName: 'p', podNamespace: 'ns', annotations, log: silentLogger() });
      assert.deepEqual(identity().annotations, { 'proxy.istio.io/config': value });
      writeFileSync(file, 'prometheus.io/scrape="true"\n');
      assert.deepEqual(readPodAnnotations(file, silentLogger()), {});
      assert.equal(gatewayIdentity({ podName: 'p', podNamespace: 'ns', annotations: {}, log: silentLogger() })().annotations, undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('annotations: a missing or malformed file is no annotations (the agent warns and goes on)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgate-identity-'));
    try {
      assert.deepEqual(readPodAnnotations(join(dir, 'missing'), silentLogger()), {});
      writeFileSync(join(dir, 'bad'), 'proxy.istio.io/config=unquoted\n');
      assert.deepEqual(readPodAnnotations(join(dir, 'bad'), silentLogger()), {});
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
