// Building blocks for the structural OpenAPI v3 schemas of the CRDs in charts/base (apiextensions.k8s.io/v1
// JSONSchemaProps, the subset we use). Every node has a type; value-only rules (oneOf/not with `required`) are
// the only logical junctors, as Kubernetes requires of structural schemas.

type SchemaType = 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';

export interface Schema {
  description?: string;
  type?: SchemaType;
  format?: string;
  enum?: string[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  items?: Schema;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema;
  required?: string[];
  nullable?: boolean;
  oneOf?: Schema[];
  allOf?: Schema[];
  anyOf?: Schema[];
  not?: Schema;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
}

type Extra = Omit<Schema, 'type' | 'properties' | 'items' | 'additionalProperties'>;

const UINT32_MAX = 4294967295;
const INT32_MAX = 2147483647;

/** Go/CEL duration syntax, as Istio accepts it in CRDs ("5s", "1.5s", "1h30m", "250ms"). */
const DURATION_PATTERN = '^([0-9]+(\\.[0-9]+)?(h|m|s|ms|us|ns))+$';

export function string(description?: string, extra: Extra = {}): Schema {
  return { ...(description ? { description } : {}), type: 'string', ...extra };
}

export function boolean(description?: string, extra: Extra = {}): Schema {
  return { ...(description ? { description } : {}), type: 'boolean', ...extra };
}

/** google.protobuf.BoolValue: a boolean that may be null (unset). */
export function boolValue(description?: string): Schema {
  return boolean(description, { nullable: true });
}

export function int32(description?: string, extra: Extra = {}): Schema {
  return { ...(description ? { description } : {}), type: 'integer', format: 'int32', minimum: -INT32_MAX - 1, maximum: INT32_MAX, ...extra };
}

export function uint32(description?: string, extra: Extra = {}): Schema {
  return { ...(description ? { description } : {}), type: 'integer', minimum: 0, maximum: UINT32_MAX, ...extra };
}

/** google.protobuf.UInt32Value. */
export function uint32Value(description?: string): Schema {
  return uint32(description, { nullable: true });
}

export function uint64(description?: string, extra: Extra = {}): Schema {
  return { ...(description ? { description } : {}), type: 'integer', minimum: 0, ...extra };
}

export function double(description?: string, extra: Extra = {}): Schema {
  return { ...(description ? { description } : {}), type: 'number', format: 'double', ...extra };
}

/** A TCP/UDP port number; `min` 0 where 0 means "unset" (proto3 default). */
export function port(description?: string, min: 0 | 1 = 1): Schema {
  return { ...(description ? { description } : {}), type: 'integer', minimum: min, maximum: 65535 };
}

/** google.protobuf.Duration as Istio's CRDs accept it. */
export function duration(description?: string): Schema {
  return string(description, { pattern: DURATION_PATTERN });
}

export function enumOf(values: string[], description?: string): Schema {
  return string(description, { enum: values });
}

export function list(items: Schema, description?: string, extra: Extra = {}): Schema {
  return { ...(description ? { description } : {}), type: 'array', items, ...extra };
}

export function strings(description?: string, extra: Extra = {}): Schema {
  return list(string(), description, extra);
}

/** map<string, V>. */
export function map(values: Schema, description?: string): Schema {
  return { ...(description ? { description } : {}), type: 'object', additionalProperties: values };
}

export function stringMap(description?: string): Schema {
  return map(string(), description);
}

interface ObjectOptions {
  description?: string;
  required?: string[];
  /** Groups of fields of which at most one may be set (a proto `oneof`, or fields Istio rejects together). */
  exclusive?: string[][];
}

/** At most one of `fields`: none of them, or exactly one (the shape Istio's own CRDs give a proto oneof). */
function atMostOne(fields: string[]): Schema {
  return {
    oneOf: [{ not: { anyOf: fields.map((f) => ({ required: [f] })) } }, ...fields.map((f) => ({ required: [f] }))],
  };
}

export function object(properties: Record<string, Schema>, options: ObjectOptions = {}): Schema {
  const s: Schema = {};
  if (options.description) s.description = options.description;
  s.type = 'object';
  s.properties = properties;
  if (options.required?.length) s.required = options.required;
  const groups = (options.exclusive ?? []).map(atMostOne);
  if (groups.length === 1) s.oneOf = groups[0]?.oneOf;
  else if (groups.length > 1) s.allOf = groups;
  for (const name of [...(options.required ?? []), ...(options.exclusive ?? []).flat()]) {
    if (!(name in properties)) throw new Error(`schema: '${name}' is required or exclusive but not a property`);
  }
  return s;
}

/** With a description (for `kubectl explain`) on a shared building block. */
export function describe(schema: Schema, description: string): Schema {
  const { description: _old, ...rest } = schema;
  return { description, ...rest };
}
