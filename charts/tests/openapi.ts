// Two checks on the CRD schemas, written after the Kubernetes rules they stand for:
// - structuralErrors: the "structural schema" rules an apiextensions.k8s.io/v1 CRD must follow
//   (kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema);
// - validate: what the API server does with a resource under such a schema: pruning of unknown fields
//   (reported here as errors, as `kubectl apply --validate=strict` does) and OpenAPI value validation.
import type { Schema } from '../crds/openapi.ts';

const FORBIDDEN_KEYWORDS = ['$ref', '$schema', 'id', 'definitions', 'dependencies', 'patternProperties', 'additionalItems', 'uniqueItems'];
/** What a node inside allOf/anyOf/oneOf/not may hold: value validations only, no types or structure. */
const JUNCTOR_KEYWORDS = new Set([
  'required',
  'oneOf',
  'anyOf',
  'allOf',
  'not',
  'enum',
  'pattern',
  'minimum',
  'maximum',
  'minItems',
  'maxItems',
  'minLength',
  'maxLength',
  'properties',
  'items',
]);

export function structuralErrors(schema: Schema, path = 'openAPIV3Schema'): string[] {
  const out: string[] = [];
  const raw = schema as Record<string, unknown>;
  for (const k of FORBIDDEN_KEYWORDS) if (k in raw) out.push(`${path}: ${k} is not allowed`);
  if ('additionalProperties' in raw && typeof raw.additionalProperties !== 'object') {
    out.push(`${path}: additionalProperties must be a schema`);
  }
  const preserve = schema['x-kubernetes-preserve-unknown-fields'] === true;
  // int-or-string is the one node without a type: anyOf its two types, exactly.
  const intOrString = schema['x-kubernetes-int-or-string'] === true;
  if (intOrString && JSON.stringify(schema.anyOf) !== JSON.stringify([{ type: 'integer' }, { type: 'string' }])) {
    out.push(`${path}: x-kubernetes-int-or-string needs anyOf [integer, string]`);
  }
  if (!schema.type && !preserve && !intOrString) out.push(`${path}: type is required`);
  if (schema.properties && schema.additionalProperties) out.push(`${path}: properties and additionalProperties are exclusive`);
  if (schema.type === 'array' && !schema.items) out.push(`${path}: an array needs items`);
  if (schema.type === 'object' && !schema.properties && !schema.additionalProperties && !preserve) {
    out.push(`${path}: an object without properties would be pruned to {}`);
  }
  if (schema.type !== 'object' && (schema.properties || schema.additionalProperties)) out.push(`${path}: properties on a ${schema.type}`);
  for (const r of schema.required ?? []) if (!schema.properties?.[r]) out.push(`${path}: required '${r}' is not a property`);
  for (const v of schema.enum ?? []) if (schema.type !== 'string' || typeof v !== 'string') out.push(`${path}: enum value ${v} is not a ${schema.type}`);
  for (const [name, p] of Object.entries(schema.properties ?? {})) out.push(...structuralErrors(p, `${path}.properties[${name}]`));
  if (schema.items) out.push(...structuralErrors(schema.items, `${path}.items`));
  if (schema.additionalProperties) out.push(...structuralErrors(schema.additionalProperties, `${path}.additionalProperties`));
  if (!intOrString) for (const [j, node] of junctors(schema)) out.push(...junctorErrors(node, schema, `${path}.${j}`));
  return out;
}

function junctors(schema: Schema): [string, Schema][] {
  const out: [string, Schema][] = [];
  for (const j of ['oneOf', 'anyOf', 'allOf'] as const) (schema[j] ?? []).forEach((s, i) => out.push([`${j}[${i}]`, s]));
  if (schema.not) out.push(['not', schema.not]);
  return out;
}

/** Inside a junctor: no type, description, nullable, defaults or structure; only fields the outer node declares. */
function junctorErrors(node: Schema, outer: Schema, path: string): string[] {
  const out: string[] = [];
  for (const k of Object.keys(node)) if (!JUNCTOR_KEYWORDS.has(k)) out.push(`${path}: ${k} is not allowed inside a logical junctor`);
  for (const r of node.required ?? []) if (!outer.properties?.[r]) out.push(`${path}: required '${r}' is not a property of the enclosing object`);
  for (const name of Object.keys(node.properties ?? {})) {
    if (!outer.properties?.[name]) out.push(`${path}: property '${name}' is not declared outside the junctor`);
  }
  for (const [j, inner] of junctors(node)) out.push(...junctorErrors(inner, outer, `${path}.${j}`));
  return out;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeOf(v) === 'object';
}

function child(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/** Errors for `value` under `schema`, with the API server's field paths (spec.servers[0].port.number). */
export function validate(value: unknown, schema: Schema, path = ''): string[] {
  if (value === null && schema.nullable) return [];
  if (value === undefined) return [];
  const t = typeOf(value);
  const type = schema.type;
  if (type && !(t === type || (type === 'number' && t === 'integer'))) return [`${path}: must be of type ${type}, got ${t}`];
  const out: string[] = [];
  if (schema.enum && !schema.enum.includes(value as string)) out.push(`${path}: must be one of ${schema.enum.join(', ')}`);
  if (typeof value === 'string') {
    if (schema.pattern && !new RegExp(schema.pattern, 'u').test(value)) out.push(`${path}: must match ${schema.pattern}`);
    if (schema.maxLength !== undefined && [...value].length > schema.maxLength) out.push(`${path}: longer than ${schema.maxLength}`);
    if (schema.minLength !== undefined && [...value].length < schema.minLength) out.push(`${path}: shorter than ${schema.minLength}`);
    if (schema.format === 'byte' && !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) out.push(`${path}: not base64`);
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) out.push(`${path}: less than ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) out.push(`${path}: greater than ${schema.maximum}`);
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) out.push(`${path}: fewer than ${schema.minItems} items`);
    if (schema.maxItems !== undefined && value.length > schema.maxItems) out.push(`${path}: more than ${schema.maxItems} items`);
    const items = schema.items;
    if (items) value.forEach((v, i) => out.push(...validate(v, items, `${path}[${i}]`)));
  }
  if (isRecord(value)) {
    for (const r of schema.required ?? []) if (!(r in value)) out.push(`${child(path, r)}: required`);
    for (const [k, v] of Object.entries(value)) {
      const p = schema.properties?.[k] ?? schema.additionalProperties;
      if (p) out.push(...validate(v, p, child(path, k)));
      else if (schema.type === 'object' && !schema['x-kubernetes-preserve-unknown-fields']) out.push(`${child(path, k)}: unknown field (pruned)`);
    }
  }
  const passes = (s: Schema): boolean => validate(value, s, path).length === 0;
  if (schema.oneOf && schema.oneOf.filter(passes).length !== 1) out.push(`${path}: must match exactly one schema in oneOf`);
  if (schema.anyOf && !schema.anyOf.some(passes)) out.push(`${path}: must match a schema in anyOf`);
  if (schema.allOf && !schema.allOf.every(passes)) out.push(`${path}: must match all schemas in allOf`);
  if (schema.not && passes(schema.not)) out.push(`${path}: must not match the schema in not`);
  return out;
}
