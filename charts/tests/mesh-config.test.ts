// charts/gateway: values meshConfig -> the ConfigMap <name>-mesh (key mesh), mounted into the controller only and
// given to it with --mesh-config, and read back by the controller's own parser as the mesh config meant.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GATEWAY_CHART, only, template, templateError, type K8sObject } from './helm.ts';
import type { Workload } from './k8s-types.ts';
import { INSTALLED_MESH_CONFIG, parseMeshConfig } from '../../controller/model/mesh-config.ts';

interface ConfigMap extends K8sObject {
  data: Record<string, string>;
}

const INGRESS = 'istio-ingressgateway';

function meshOf(objects: K8sObject[]): ReturnType<typeof parseMeshConfig> {
  const cm = only<ConfigMap>(objects, 'ConfigMap');
  assert.deepEqual(Object.keys(cm.data), ['mesh']);
  return parseMeshConfig(cm.data.mesh ?? '', 'ConfigMap data.mesh');
}

describe('charts/gateway meshConfig', () => {
  test("default values render an Istio install's mesh config: istiod's defaults with Istio's standard metrics on (as without --mesh-config)", () => {
    const objects = template(GATEWAY_CHART, INGRESS);
    const cm = only<ConfigMap>(objects, 'ConfigMap');
    assert.equal(cm.metadata.name, `${INGRESS}-mesh`);
    assert.equal(cm.metadata.labels?.app, INGRESS);
    const mesh = meshOf(objects);
    assert.ok(mesh.ok);
    assert.deepEqual(mesh.mesh, INSTALLED_MESH_CONFIG);
    assert.deepEqual(mesh.mesh.defaultMetrics, ['prometheus']);
  });

  test("meshConfig.defaultProviders replaces the default metrics provider, as in istiod's chart", () => {
    const off = meshOf(template(GATEWAY_CHART, INGRESS, { setJson: { meshConfig: { defaultProviders: {} } } }));
    assert.ok(off.ok);
    assert.deepEqual(off.mesh.defaultMetrics, []);
    const logging = meshOf(template(GATEWAY_CHART, INGRESS, { setJson: { meshConfig: { defaultProviders: { accessLogging: ['envoy'] } } } }));
    assert.ok(logging.ok);
    assert.deepEqual([logging.mesh.defaultMetrics, logging.mesh.defaultAccessLogging], [[], ['envoy']]);
  });

  test('meshConfig values reach the controller as the MeshConfig they describe', () => {
    const objects = template(GATEWAY_CHART, INGRESS, {
      setJson: {
        meshConfig: {
          rootNamespace: 'mesh-root',
          extensionProviders: [
            {
              name: 'ext-authz-http',
              envoyExtAuthzHttp: { service: 'ext-authz.foo.svc.cluster.local', port: 8000, includeRequestHeadersInCheck: ['x-ext-authz'] },
            },
          ],
          defaultConfig: { gatewayTopology: { numTrustedProxies: 1 } },
        },
      },
    });
    const mesh = meshOf(objects);
    assert.ok(mesh.ok, mesh.ok ? '' : mesh.errors.join('; '));
    assert.equal(mesh.mesh.rootNamespace, 'mesh-root');
    assert.equal(mesh.mesh.defaultConfig.gatewayTopology?.numTrustedProxies, 1);
    const p = mesh.mesh.extensionProviders.find((x) => x.name === 'ext-authz-http');
    assert.ok(p?.kind === 'envoyExtAuthzHttp');
    assert.equal(p.envoyExtAuthzHttp.port, 8000);
    assert.deepEqual(p.envoyExtAuthzHttp.includeRequestHeadersInCheck, ['x-ext-authz']);
  });

  test('the controller and the proxy mount the ConfigMap read-only and read its key mesh with --mesh-config', () => {
    const objects = template(GATEWAY_CHART, INGRESS, { set: { name: 'my-gw' } });
    const deploy = only<Workload>(objects, 'Deployment');
    const pod = deploy.spec.template.spec;
    const volume = pod.volumes?.find((v) => v.configMap !== undefined);
    assert.deepEqual(volume, { name: 'config-volume', configMap: { name: 'my-gw-mesh' } });
    assert.equal(only<ConfigMap>(objects, 'ConfigMap').metadata.name, 'my-gw-mesh');
    const controller = pod.containers.find((c) => c.name === 'controller');
    const proxy = pod.containers.find((c) => c.name === 'istio-proxy');
    const mount = controller?.volumeMounts?.find((m) => m.name === 'config-volume');
    assert.deepEqual(mount, { name: 'config-volume', mountPath: '/etc/istio/config', readOnly: true });
    assert.ok(controller?.args?.includes(`--mesh-config=${mount.mountPath}/mesh`));
    // The proxy reads it once at start, for defaultConfig.proxyStatsMatcher (the stats its metrics port exports).
    assert.deepEqual(
      proxy?.volumeMounts?.find((m) => m.name === 'config-volume'),
      mount,
    );
    assert.ok(proxy?.args?.includes(`--mesh-config=${mount.mountPath}/mesh`));
  });

  test('meshConfig must be a map', () => {
    assert.match(templateError(GATEWAY_CHART, INGRESS, { set: { meshConfig: 'rootNamespace: x' } }), /meshConfig/);
  });
});
