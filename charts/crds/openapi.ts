// Building blocks for the structural OpenAPI v3 schemas of the CRDs in charts/base (apiextensions.k8s.io/v1
// JSONSchemaProps, the subset we use). Every node has a type; value-only rules (oneOf/not with `required`) are
// the only logical junctors, as Kubernetes requires of structural schemas, except int-or-string (anyOf of the two
// types). Constraints follow Istio's generated CRDs (protoc-gen-crd): the proto type decides min/max/format, and
// Istio's `+cue-gen`/`+kubebuilder:validation` annotations become CEL rules (x-kubernetes-validations).

type SchemaType = 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';

/** A CEL validation rule (apiextensions.k8s.io/v1 ValidationRule), as Istio's CRDs carry them. */
export interface Rule {
  message: string;
  rule: string;
}

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
  minProperties?: number;
  maxProperties?: number;
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
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-validations'?: Rule[];
}

type Extra = Omit<Schema, 'type' | 'properties' | 'items' | 'additionalProperties'>;

const UINT32_MAX = 4294967295;

export function rule(rule: string, message: string): Rule {
  return { message, rule };
}

/** Istio's rule on google.protobuf.Duration fields: CEL's duration() parses it ("5s", "1.5s", "1h30m", "250ms"). */
const MIN_DURATION = rule("duration(self) >= duration('1ms')", 'must be a valid duration greater than 1ms');

/** Istio's rule on port numbers it declares as uint32 with a range check. */
const PORT_RANGE = rule('0 < self && self <= 65535', 'port must be between 1-65535');

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

/** int32 and google.protobuf.Int32Value: Istio's CRDs give the format only. */
export function int32(description?: string, extra: Extra = {}): Schema {
  return { ...(description ? { description } : {}), type: 'integer', format: 'int32', ...extra };
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

/** A port number Istio range-checks (uint32 with a CEL rule: 1 to 65535). */
export function port(description?: string): Schema {
  return uint32(description, { 'x-kubernetes-validations': [PORT_RANGE] });
}

/** google.protobuf.Duration as Istio's CRDs check it. */
export function duration(description?: string): Schema {
  return string(description, { 'x-kubernetes-validations': [MIN_DURATION] });
}

/** A google.protobuf.Duration Istio's CRDs leave unchecked (a string, checked by istiod alone). */
export function looseDuration(description?: string): Schema {
  return string(description);
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
  /** Groups of fields of which at most one may be set: a proto `oneof`, as Istio's CRDs write it (oneOf). */
  exclusive?: string[][];
  /** CEL rules on the object (Istio's `+cue-gen` validations). */
  rules?: Rule[];
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
  if (options.rules?.length) s['x-kubernetes-validations'] = options.rules;
  for (const name of [...(options.required ?? []), ...(options.exclusive ?? []).flat()]) {
    if (!(name in properties)) throw new Error(`schema: '${name}' is required or exclusive but not a property`);
  }
  return s;
}

/** CEL: at most one of `fields` (Istio's rule for fields outside a proto oneof). */
export function atMostOneOf(fields: string[], message: string): Rule {
  return rule(`${fields.map((f) => `(has(self.${f}) ? 1 : 0)`).join(' + ')} <= 1`, message);
}

/** int-or-string, as Istio's status declares observedGeneration. */
export function intOrString(description?: string): Schema {
  return { ...(description ? { description } : {}), anyOf: [{ type: 'integer' }, { type: 'string' }], 'x-kubernetes-int-or-string': true };
}

/** With a description (for `kubectl explain`) on a shared building block. */
export function describe(schema: Schema, description: string): Schema {
  const { description: _old, ...rest } = schema;
  return { description, ...rest };
}
