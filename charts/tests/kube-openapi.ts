// Validates rendered objects against the OpenAPI spec of one Kubernetes release, as kubeconform does:
// the kind must exist in that release, unknown fields are errors (what `kubectl apply --validate=strict`
// reports), and so are wrong types, missing required fields and values outside an enum. The spec is
// api/openapi-spec/swagger.json of the k8s.io/kubernetes module; the enums come from its
// zz_generated.openapi.go, because swagger.json leaves them out. scripts/fetch-k8s-openapi.sh fetches both.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { K8sObject } from './helm.ts';

interface Definition {
  type?: string;
  format?: string;
  $ref?: string;
  properties?: Record<string, Definition>;
  additionalProperties?: Definition | boolean;
  items?: Definition;
  required?: string[];
  enum?: unknown[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-group-version-kind'?: { group: string; version: string; kind: string }[];
}

export interface KubeSpec {
  /** e.g. v1.27.16 */
  version: string;
  definitions: Record<string, Definition>;
  /** "apps/v1 Deployment" -> definition name */
  kinds: Map<string, string>;
}

const QUANTITY = 'io.k8s.apimachinery.pkg.api.resource.Quantity';
// resource.ParseQuantity's grammar: a signed decimal number, then a binary-SI, decimal-SI or exponent suffix.
const QUANTITY_PATTERN = /^[+-]?(\d+\.?\d*|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;

/** Go type name (k8s.io/api/core/v1.Container) -> swagger.json definition name (io.k8s.api.core.v1.Container). */
function definitionName(goName: string): string {
  const [domain = '', ...rest] = goName.split('/');
  return [...domain.split('.').reverse(), ...rest].join('.').replace(/\//g, '.');
}

/**
 * The enums of zz_generated.openapi.go: each `Enum: []interface{}{...}` belongs to the nearest property
 * declared before it in its schema_ function (to that property's items when an Items schema comes between).
 */
function applyEnums(goSource: string, definitions: Record<string, Definition>): number {
  const functions = new Map<string, string>();
  for (const m of goSource.matchAll(/^\t\t"([^"]+)":\s+(schema_\w+)\(ref\),$/gm)) functions.set(m[2] as string, m[1] as string);
  let applied = 0;
  for (const m of goSource.matchAll(/Enum:\s+\[\]interface\{\}\{([^}]*)\}/g)) {
    const start = goSource.lastIndexOf('\nfunc schema_', m.index);
    const fn = goSource.slice(start + 6, goSource.indexOf('(', start));
    const goName = functions.get(fn);
    if (!goName) throw new Error(`zz_generated.openapi.go: ${fn} is not in the definitions map`);
    const body = goSource.slice(start, m.index);
    const prop = [...body.matchAll(/\n\t+"([^"]+)": \{\n/g)].at(-1);
    if (!prop) throw new Error(`zz_generated.openapi.go: an enum in ${fn} outside any property`);
    const values = JSON.parse(`[${m[1]}]`) as unknown[];
    const def = definitions[definitionName(goName)]?.properties?.[prop[1] as string];
    // Types that swagger.json does not publish (internal or alpha) have no definition: nothing to apply.
    if (!def) continue;
    const target = body.slice(prop.index).includes('Items: &spec.SchemaOrArray{') ? def.items : def;
    if (!target) throw new Error(`swagger.json: ${goName}.${prop[1]} has no items for its enum`);
    target.enum = values;
    applied++;
  }
  return applied;
}

export function loadKubeSpec(version: string, dir: string): KubeSpec {
  const swagger = JSON.parse(readFileSync(join(dir, 'swagger.json'), 'utf8')) as { definitions: Record<string, Definition> };
  const definitions = swagger.definitions;
  if (applyEnums(readFileSync(join(dir, 'zz_generated.openapi.go'), 'utf8'), definitions) === 0) {
    throw new Error(`${dir}/zz_generated.openapi.go declares no enums: not the file scripts/fetch-k8s-openapi.sh copies`);
  }
  const kinds = new Map<string, string>();
  for (const [name, def] of Object.entries(definitions)) {
    for (const gvk of def['x-kubernetes-group-version-kind'] ?? []) {
      kinds.set(`${gvk.group ? `${gvk.group}/` : ''}${gvk.version} ${gvk.kind}`, name);
    }
  }
  return { version, definitions, kinds };
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function child(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function resolve(spec: KubeSpec, def: Definition): [Definition, string | undefined] {
  if (!def.$ref) return [def, undefined];
  const name = def.$ref.replace('#/definitions/', '');
  const target = spec.definitions[name];
  if (!target) throw new Error(`Kubernetes ${spec.version} swagger.json: ${def.$ref} is not defined`);
  return [target, name];
}

function validateValue(spec: KubeSpec, value: unknown, schema: Definition, path: string): string[] {
  // null is "unset" to the API server for every optional field.
  if (value === null || value === undefined) return [];
  const [def, name] = resolve(spec, schema);
  const t = typeOf(value);
  if (name === QUANTITY) {
    if (t === 'string' ? !QUANTITY_PATTERN.test(value as string) : t !== 'integer' && t !== 'number') {
      return [`${path}: ${JSON.stringify(value)} is not a quantity`];
    }
    return [];
  }
  if (def.format === 'int-or-string' || def['x-kubernetes-int-or-string']) {
    return t === 'integer' || t === 'string' ? [] : [`${path}: must be an integer or a string, got ${t}`];
  }
  const type = def.type;
  if (type && !(t === type || (type === 'number' && t === 'integer'))) return [`${path}: must be of type ${type}, got ${t}`];
  const out: string[] = [];
  if (def.enum && !def.enum.includes(value)) out.push(`${path}: unsupported value ${JSON.stringify(value)}: must be one of ${def.enum.join(', ')}`);
  if (type === 'integer' && def.format === 'int32' && Math.abs(value as number) > 2 ** 31 - 1) out.push(`${path}: out of the int32 range`);
  if (Array.isArray(value)) {
    const items = def.items;
    if (items) value.forEach((v, i) => out.push(...validateValue(spec, v, items, `${path}[${i}]`)));
  } else if (t === 'object') {
    const record = value as Record<string, unknown>;
    for (const r of def.required ?? []) if (!(r in record)) out.push(`${child(path, r)}: required value`);
    const extra = def.additionalProperties;
    // No properties and no additionalProperties: free-form (RawExtension, apiextensions JSON).
    const freeForm = !def.properties && extra === undefined;
    for (const [k, v] of Object.entries(record)) {
      const p = def.properties?.[k] ?? (typeof extra === 'object' ? extra : undefined);
      if (p) out.push(...validateValue(spec, v, p, child(path, k)));
      else if (!freeForm && extra !== true && !def['x-kubernetes-preserve-unknown-fields']) out.push(`${child(path, k)}: unknown field`);
    }
  }
  return out;
}

/** Errors of one object, each prefixed with Kind/name; an unknown apiVersion/kind is one error. */
export function validateObject(spec: KubeSpec, object: K8sObject): string[] {
  const where = `${object.kind}/${object.metadata?.name ?? '?'}`;
  const name = spec.kinds.get(`${object.apiVersion} ${object.kind}`);
  if (!name) return [`${where}: ${object.apiVersion} ${object.kind} is not served by Kubernetes ${spec.version}`];
  return validateValue(spec, object, { $ref: `#/definitions/${name}` }, '').map((e) => `${where}: ${e}`);
}
