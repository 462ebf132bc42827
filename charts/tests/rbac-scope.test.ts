// charts/gateway with rbac.scope=namespace: the controller's rules in Roles of the namespaces it watches instead
// of a ClusterRole, so that a deployer with rights in those namespaces only can install (as Istio's chart needs no
// cluster-scoped object), and the controller watches exactly those namespaces.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GATEWAY_CHART, helm, ofKind, only, renderArgs, template, type K8sObject, type RenderOptions } from './helm.ts';
import type { Role, RoleBinding, Workload } from './k8s-types.ts';

const INGRESS = 'istio-ingressgateway';
const NS = 'edge';

const render = (o: RenderOptions = {}): K8sObject[] => template(GATEWAY_CHART, INGRESS, { namespace: NS, ...o });

const controllerArgs = (objects: K8sObject[]): string[] =>
  only<Workload>(objects, 'Deployment').spec.template.spec.containers.find((c) => c.name === 'controller')?.args ?? [];

const CLUSTER_SCOPED = ['ClusterRole', 'ClusterRoleBinding', 'Namespace', 'CustomResourceDefinition'];

describe('rbac.scope=namespace', () => {
  const clusterRules = only<Role>(render(), 'ClusterRole').rules;

  test('renders no cluster-scoped object; the Role in the release namespace has the ClusterRole rules, the secrets Role stays', () => {
    const o = render({ set: { 'rbac.scope': 'namespace' } });
    assert.deepEqual(
      o.filter((x) => CLUSTER_SCOPED.includes(x.kind)).map((x) => x.kind),
      [],
    );
    for (const x of o) assert.equal(x.metadata.namespace, NS, `${x.kind} ${x.metadata.name} is in the release namespace`);
    const roles = ofKind<Role>(o, 'Role');
    assert.deepEqual(roles.map((r) => r.metadata.name).sort(), [INGRESS, `meshgate-${NS}-${INGRESS}`]);
    assert.deepEqual(roles.find((r) => r.metadata.name === `meshgate-${NS}-${INGRESS}`)?.rules, clusterRules);
    assert.deepEqual(roles.find((r) => r.metadata.name === INGRESS)?.rules, [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'] }]);
  });

  test('the controller watches the release namespace only', () => {
    assert.ok(controllerArgs(render({ set: { 'rbac.scope': 'namespace' } })).includes(`--watch-namespaces=${NS}`));
    assert.ok(!controllerArgs(render()).some((a) => a.startsWith('--watch-namespaces')), 'cluster scope: every namespace');
  });

  test('controller.watchNamespaces adds a Role and RoleBinding in each listed namespace, for the release ServiceAccount', () => {
    const o = render({ set: { 'rbac.scope': 'namespace', 'controller.watchNamespaces': '{apps,edge,team-b}' } });
    assert.ok(controllerArgs(o).includes('--watch-namespaces=edge,apps,team-b'));
    const name = `meshgate-${NS}-${INGRESS}`;
    const roles = ofKind<Role>(o, 'Role').filter((r) => r.metadata.name === name);
    assert.deepEqual(
      roles.map((r) => r.metadata.namespace),
      [NS, 'apps', 'team-b'],
    );
    for (const r of roles) assert.deepEqual(r.rules, clusterRules);
    const bindings = ofKind<RoleBinding>(o, 'RoleBinding').filter((b) => b.metadata.name === name);
    assert.deepEqual(
      bindings.map((b) => b.metadata.namespace),
      [NS, 'apps', 'team-b'],
    );
    for (const b of bindings) {
      assert.deepEqual(b.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name });
      assert.deepEqual(b.subjects, [{ kind: 'ServiceAccount', name: INGRESS, namespace: NS }]);
    }
  });

  test('rbac.scope=cluster (the default) with controller.watchNamespaces keeps the ClusterRole and passes the list as given', () => {
    const o = render({ set: { 'controller.watchNamespaces': '{apps}' } });
    assert.equal(ofKind(o, 'ClusterRole').length, 1);
    assert.ok(controllerArgs(o).includes('--watch-namespaces=apps'));
  });

  test('NOTES.txt names the watched namespaces', () => {
    const r = helm(['install', '--dry-run=client', ...renderArgs(GATEWAY_CHART, INGRESS, { namespace: NS, set: { 'rbac.scope': 'namespace' } })]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /rbac.scope=namespace: the controller watches only the namespaces edge/);
  });

  test('the schema rejects another scope', () => {
    const r = helm(['template', ...renderArgs(GATEWAY_CHART, INGRESS, { set: { 'rbac.scope': 'namespaces' } })]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /at '\/rbac\/scope'/);
  });
});
