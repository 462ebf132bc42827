import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../../cli/logger.ts';
import { gatewayIdentity, parseLabelsEnv } from './identity.ts';

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
});
