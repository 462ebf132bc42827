// AuthorizationPolicy as istiod reads and validates it: its JSON decoding (wrong types refuse the object,
// unknown fields are ignored, a null list item is an empty message, a null string an empty string), the
// webhook's metadata check of the `istio.io/dry-run` annotation (pkg/config/validation validateMetadata),
// then ValidateAuthorizationPolicy's rules, with its messages. An invalid policy is skipped as a whole, as
// the webhook would have refused it. Warnings (a selector without labels, a DENY rule of HTTP-only fields)
// are left out, as for the other kinds.
import type { FieldError } from './istio-validation.ts';
import { parseAddr, parsePrefix } from './netip.ts';
import {
  type AuthorizationPolicySpec,
  type PolicyAttachment,
  type Condition,
  type Operation,
  type PolicyTargetReference,
  type Rule,
  type Source,
  AUTHORIZATION_ACTIONS,
  DRY_RUN_ANNOTATION,
  actionOf,
} from './security-types.ts';

export type Json = Record<string, unknown>;
const isMap = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Decodes proto3 JSON into the typed spec, collecting what istiod's decoder would refuse. */
export class Decoder {
  readonly errors: FieldError[] = [];
  private fail(field: string, message: string): undefined {
    this.errors.push({ field, message });
    return undefined;
  }

  map(v: unknown, field: string): Json | undefined {
    if (v === undefined || v === null) return undefined;
    return isMap(v) ? v : this.fail(field, 'must be a map');
  }

  string(v: unknown, field: string): string | undefined {
    if (v === undefined || v === null) return undefined;
    return typeof v === 'string' ? v : this.fail(field, 'must be a string');
  }

  /** A list of strings; a null item decodes as "" (which validation then refuses as empty). */
  strings(v: unknown, field: string): string[] | undefined {
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) return this.fail(field, 'must be a list of strings');
    const out = v.map((s, i) => (s === null ? '' : (this.string(s, `${field}[${i}]`) ?? '')));
    // An empty list decodes as no list at all (istiod tells `rules: []` from a missing field nowhere).
    return out.length ? out : undefined;
  }

  /** A list of messages; a null item decodes as an empty message. */
  messages<T>(v: unknown, field: string, item: (m: Json, f: string) => T): T[] | undefined {
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) return this.fail(field, 'must be a list');
    const out: T[] = [];
    v.forEach((m, i) => {
      const f = `${field}[${i}]`;
      const obj = m === null ? {} : this.map(m, f);
      if (obj) out.push(item(obj, f));
    });
    return out.length ? out : undefined;
  }

  /**
   * A field by its JSON name, or by its proto name (`notPaths` or `not_paths`), which istiod's decoder takes too;
   * the JSON name wins when both are there.
   */
  field(m: Json, jsonName: string): unknown {
    const v = m[jsonName];
    return v !== undefined ? v : m[jsonName.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)];
  }

  /** Copies the listed string-list fields that are set. */
  lists<T>(m: Json, field: string, keys: readonly (keyof T & string)[]): T {
    const out: Record<string, string[]> = {};
    for (const k of keys) {
      const l = this.strings(this.field(m, k), `${field}.${k}`);
      if (l) out[k] = l;
    }
    return out as T;
  }
}

const SOURCE_FIELDS = [
  'principals',
  'notPrincipals',
  'requestPrincipals',
  'notRequestPrincipals',
  'namespaces',
  'notNamespaces',
  'serviceAccounts',
  'notServiceAccounts',
  'ipBlocks',
  'notIpBlocks',
  'remoteIpBlocks',
  'notRemoteIpBlocks',
  'trustDomains',
  'notTrustDomains',
] as const satisfies readonly (keyof Source)[];

const OPERATION_FIELDS = [
  'hosts',
  'notHosts',
  'ports',
  'notPorts',
  'methods',
  'notMethods',
  'paths',
  'notPaths',
] as const satisfies readonly (keyof Operation)[];

function decodeTargetRef(d: Decoder, m: Json, f: string): PolicyTargetReference {
  const out: PolicyTargetReference = {};
  for (const k of ['group', 'kind', 'name', 'namespace'] as const) {
    const s = d.string(m[k], `${f}.${k}`);
    if (s !== undefined) out[k] = s;
  }
  return out;
}

function decodeRule(d: Decoder, m: Json, f: string): Rule {
  const rule: Rule = {};
  const from = d.messages(m.from, `${f}.from`, (x, g) => {
    const s = d.map(x.source, `${g}.source`);
    return s ? { source: d.lists<Source>(s, `${g}.source`, SOURCE_FIELDS) } : {};
  });
  if (from) rule.from = from;
  const to = d.messages(m.to, `${f}.to`, (x, g) => {
    const o = d.map(x.operation, `${g}.operation`);
    return o ? { operation: d.lists<Operation>(o, `${g}.operation`, OPERATION_FIELDS) } : {};
  });
  if (to) rule.to = to;
  const when = d.messages(m.when, `${f}.when`, (x, g): Condition => {
    const c: Condition = d.lists<Condition>(x, g, ['values', 'notValues']);
    const key = d.string(x.key, `${g}.key`);
    if (key !== undefined) c.key = key;
    return c;
  });
  if (when) rule.when = when;
  return rule;
}

/** The fields every security policy attaches with: selector, targetRef, targetRefs (the spec's own map `m`). */
export function decodeAttachment(d: Decoder, m: Json, spec: PolicyAttachment): void {
  const selector = d.map(m.selector, 'spec.selector');
  if (selector) {
    spec.selector = {};
    const labels = d.map(d.field(selector, 'matchLabels'), 'spec.selector.matchLabels');
    if (labels) {
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(labels)) out[k] = d.string(v, `spec.selector.matchLabels.${k}`) ?? '';
      spec.selector.matchLabels = out;
    }
  }
  const targetRef = d.map(m.targetRef, 'spec.targetRef');
  if (targetRef) spec.targetRef = decodeTargetRef(d, targetRef, 'spec.targetRef');
  const targetRefs = d.messages(m.targetRefs, 'spec.targetRefs', (x, f) => decodeTargetRef(d, x, f));
  if (targetRefs) spec.targetRefs = targetRefs;
}

/** The spec as istiod's decoder reads it, or the reasons it cannot. */
function decodeAuthorizationPolicy(raw: unknown): { spec: AuthorizationPolicySpec; errors: FieldError[] } {
  const d = new Decoder();
  const spec: AuthorizationPolicySpec = {};
  const m = d.map(raw, 'spec') ?? {};
  decodeAttachment(d, m, spec);
  const rules = d.messages(m.rules, 'spec.rules', (x, f) => decodeRule(d, x, f));
  if (rules) spec.rules = rules;
  const action = m.action;
  if (typeof action === 'string' && (AUTHORIZATION_ACTIONS as readonly string[]).includes(action)) spec.action = action as AuthorizationPolicySpec['action'];
  else if (typeof action === 'number' && Number.isInteger(action)) spec.action = action;
  else if (action !== undefined && action !== null) {
    d.errors.push({
      field: 'spec.action',
      message: `unknown value ${JSON.stringify(action)} for enum istio.security.v1beta1.AuthorizationPolicy.Action (use ${AUTHORIZATION_ACTIONS.join(', ')})`,
    });
  }
  const provider = d.map(m.provider, 'spec.provider');
  if (provider) {
    spec.provider = {};
    const name = d.string(provider.name, 'spec.provider.name');
    if (name !== undefined) spec.provider.name = name;
  }
  return { spec, errors: d.errors };
}

// ---- pkg/config/security checks ---------------------------------------------------------------------

/** CheckEmptyValues. */
function emptyValue(key: string, values: readonly string[] | undefined): string | undefined {
  return values?.includes('') ? `empty value not allowed, found in ${key}` : undefined;
}

/** CheckWildcardValues: at most one `*`, at the start or the end. */
function wildcardValue(key: string, values: readonly string[] | undefined): string | undefined {
  const empty = emptyValue(key, values);
  if (empty) return empty;
  for (const v of values ?? []) {
    const n = v.split('*').length - 1;
    if (n > 1) return `at most one wildcard is allowed, found in ${key}: ${JSON.stringify(v)}`;
    if (n === 1 && v !== '*' && !v.startsWith('*') && !v.endsWith('*'))
      return `wildcard is only allowed at the start or end, found in ${key}: ${JSON.stringify(v)}`;
  }
  return undefined;
}

/** CheckTrustDomainValues. */
function trustDomainValue(key: string, values: readonly string[] | undefined): string | undefined {
  const w = wildcardValue(key, values);
  if (w) return w;
  const bad = values?.find((v) => v.includes('/'));
  return bad === undefined ? undefined : `trust domain must not contain '/', found in ${key}: ${JSON.stringify(bad)}`;
}

/** CheckServiceAccount: `sa` or `ns/sa`, no wildcard, at most 16 values of 320 characters. */
function serviceAccountValue(key: string, values: readonly string[] | undefined): string | undefined {
  if ((values?.length ?? 0) > 16) return 'may not have more than 16 values';
  const format = "expected format 'serviceAccount' or 'namespace/serviceAccount'";
  for (const v of values ?? []) {
    if (v === '') return `empty value not allowed, found in ${key}`;
    if (v.includes('*')) return `wildcard not allowed, found in ${key}`;
    const slashes = v.split('/').length - 1;
    if (slashes > 1) return `${format}, found ${JSON.stringify(v)} in ${key}`;
    if (v.length > 320) return `value cannot exceed 320 characters, found ${JSON.stringify(v)} in ${key}`;
    const [ns = '', sa = ''] = v.split('/');
    if (slashes === 1 && ns === '') return `${format}, found empty namespace ${JSON.stringify(v)} in ${key}`;
    if (slashes === 1 && sa === '') return `${format}, found empty serviceAccount ${JSON.stringify(v)} in ${key}`;
  }
  return undefined;
}

/** ValidateIPs: each value an address or a prefix, Go's netip syntax. */
function ipErrors(values: readonly string[] | undefined): string[] {
  const out: string[] = [];
  for (const v of values ?? []) {
    if (v.includes('/')) {
      const p = parsePrefix(v);
      if (!p.ok) out.push(`bad CIDR range (${v}): ${p.error}`);
    } else if (!parseAddr(v).ok) out.push(`bad IP address (${v})`);
  }
  return out;
}

/** strconv.ParseUint(v, 10, 32): digits only (leading zeros allowed), below 2^32. */
function parseUint32(v: string): { value: number } | { error: string } {
  if (!/^\d+$/.test(v)) return { error: `strconv.ParseUint: parsing ${JSON.stringify(v)}: invalid syntax` };
  const n = Number(v);
  return n > 0xffffffff ? { error: `strconv.ParseUint: parsing ${JSON.stringify(v)}: value out of range` } : { value: n };
}

/** convertToPort / ValidatePorts: a port number 0-65535; undefined when it is not one. */
export function portNumber(v: string): number | undefined {
  const p = parseUint32(v);
  return 'value' in p && p.value <= 65535 ? p.value : undefined;
}

function portErrors(values: readonly string[] | undefined): string[] {
  const out: string[] = [];
  for (const v of values ?? []) {
    const p = parseUint32(v);
    if ('error' in p) out.push(`bad port (${v}): ${p.error}`);
    else if (p.value > 65535) out.push(`bad port (${v}): <nil>`);
  }
  return out;
}

/** `{*}` and `{**}` path templates (security.ContainsPathTemplate). */
export function containsPathTemplate(path: string): boolean {
  return path.includes('{*}') || path.includes('{**}');
}

/** RFC 3986 pchar, without `/` (Envoy's valid template literal). */
const VALID_LITERAL = /^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$/;

/** CheckValidPathTemplate: `{**}` last, no other braces, literal segments of a template are pchars. */
function pathTemplateError(key: string, paths: readonly string[] | undefined): string | undefined {
  for (const raw of paths ?? []) {
    const template = containsPathTemplate(raw);
    const path = raw.replace(/^\/+|\/+$/g, '');
    let any = false;
    for (const glob of path.split('/')) {
      if ((glob === '{*}' || glob === '{**}') && any) return `invalid or unsupported path ${path}, found in ${key}. {**} is not the last operator`;
      if (glob === '{*}') continue;
      if (glob === '{**}') {
        any = true;
        continue;
      }
      if (/[{}]/.test(glob)) return `invalid or unsupported path ${path}, found in ${key}. Contains '{' or '}' beyond a supported path template`;
      if (template && !VALID_LITERAL.test(glob))
        return `invalid or unsupported path ${path}, found in ${key}. Contains segment ${glob} with invalid string literal`;
    }
  }
  return undefined;
}

/** validateMapKey: `a[b]` with a non-empty `b`. */
function mapKeyError(key: string): string | undefined {
  const open = key.indexOf('[');
  return key.endsWith(']') && open > 0 && open < key.length - 2 ? undefined : `bad key (${key}): should have format a[b]`;
}

/** security.ValidateAttribute: the `when` keys istiod knows, and their values. */
function attributeError(key: string, values: readonly string[]): string | undefined {
  const empty = emptyValue(key, values);
  if (empty) return empty;
  const ips = (): string | undefined => ipErrors(values).join('; ') || undefined;
  if (key.startsWith('request.headers')) return mapKeyError(key);
  switch (key) {
    case 'source.ip':
    case 'remote.ip':
    case 'destination.ip':
      return ips();
    case 'source.serviceAccount':
      return serviceAccountValue(key, values);
    case 'source.trustDomain':
      return wildcardValue(key, values);
    case 'destination.port':
      return portErrors(values).join('; ') || undefined;
    case 'source.namespace':
    case 'source.principal':
    case 'request.auth.principal':
    case 'request.auth.audiences':
    case 'request.auth.presenter':
    case 'connection.sni':
      return undefined;
    case 'destination.namespace':
      return `attribute ${key} is replaced by the metadata.namespace`;
    case 'destination.name':
    case 'destination.user':
      return `deprecated attribute ${key}: only supported in v1alpha1`;
  }
  if (key.startsWith('request.auth.claims') || key.startsWith('experimental.envoy.filters.')) return mapKeyError(key);
  if (key.startsWith('destination.labels')) return `attribute ${key} is replaced by the workload selector`;
  return `unknown attribute: ${key}`;
}

// ---- ValidateAuthorizationPolicy ----------------------------------------------------------------------

/** The kinds a targetRef may name, as istiod prints them. */
const TARGET_KINDS = [
  ['core', 'Service'],
  ['networking.istio.io', 'ServiceEntry'],
  ['gateway.networking.k8s.io', 'Gateway'],
  ['gateway.networking.k8s.io', 'GatewayClass'],
] as const;
const TARGET_KINDS_TEXT = `[core/v1/Service networking.istio.io/v1/ServiceEntry gateway.networking.k8s.io/v1/Gateway gateway.networking.k8s.io/v1/GatewayClass]`;

function targetRefErrors(r: PolicyTargetReference, field: string, add: (f: string, m: string) => void): void {
  if (!r.name) add(`${field}.name`, 'targetRef name must be set');
  if (r.namespace) add(`${field}.namespace`, 'targetRef namespace must not be set; cross namespace referencing is not supported');
  const group = r.group || 'core';
  if (!TARGET_KINDS.some(([g, k]) => g === group && k === r.kind))
    add(field, `targetRef must be to one of ${TARGET_KINDS_TEXT} but was ${r.group ?? ''}/${r.kind ?? ''}`);
}

const len = (l: readonly unknown[] | undefined): number => l?.length ?? 0;

function sourceErrors(src: Source, i: number, f: string, add: (f: string, m: string) => void): void {
  if (
    len(src.principals) + len(src.notPrincipals) + len(src.namespaces) + len(src.notNamespaces) > 0 &&
    len(src.serviceAccounts) + len(src.notServiceAccounts) > 0
  )
    add(f, `cannot set serviceAccounts with namespaces or principals, found at rule ${i}`);
  if (SOURCE_FIELDS.every((k) => len(src[k]) === 0)) add(f, `\`from.source\` must not be empty, found at rule ${i}`);
  for (const k of ['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks'] as const) for (const e of ipErrors(src[k])) add(`${f}.${k}`, e);
  const checks: [keyof Source, (key: string, v: readonly string[] | undefined) => string | undefined][] = [
    ['principals', emptyValue],
    ['requestPrincipals', emptyValue],
    ['namespaces', emptyValue],
    ['serviceAccounts', serviceAccountValue],
    ['trustDomains', trustDomainValue],
    ['ipBlocks', emptyValue],
    ['remoteIpBlocks', emptyValue],
    ['notPrincipals', emptyValue],
    ['notRequestPrincipals', emptyValue],
    ['notNamespaces', emptyValue],
    ['notServiceAccounts', serviceAccountValue],
    ['notTrustDomains', trustDomainValue],
    ['notIpBlocks', emptyValue],
    ['notRemoteIpBlocks', emptyValue],
  ];
  for (const [k, check] of checks) {
    // istiod names the field in Go's spelling: IpBlocks, NotRequestPrincipals.
    const e = check(k[0]?.toUpperCase() + k.slice(1), src[k]);
    if (e) add(`${f}.${k}`, e);
  }
}

function operationErrors(op: Operation, i: number, f: string, add: (f: string, m: string) => void): void {
  if (OPERATION_FIELDS.every((k) => len(op[k]) === 0)) add(f, `\`to.operation\` must not be empty, found at rule ${i}`);
  for (const e of portErrors(op.ports)) add(`${f}.ports`, e);
  for (const e of portErrors(op.notPorts)) add(`${f}.notPorts`, e);
  for (const k of ['ports', 'methods', 'paths', 'hosts', 'notPorts', 'notMethods', 'notPaths', 'notHosts'] as const) {
    const e = emptyValue(k[0]?.toUpperCase() + k.slice(1), op[k]);
    if (e) add(`${f}.${k}`, e);
  }
  const paths = pathTemplateError('Paths', op.paths);
  if (paths) add(`${f}.paths`, paths);
  const notPaths = pathTemplateError('NotPaths', op.notPaths);
  if (notPaths) add(`${f}.notPaths`, notPaths);
}

/** The source fields and `when` keys a CUSTOM policy cannot use (they need the peer identity or a JWT). */
function customErrors(rules: readonly Rule[], add: (f: string, m: string) => void): void {
  const unsupported = (name: string): string => `${name} is currently not supported with CUSTOM action`;
  rules.forEach((rule, i) => {
    rule.from?.forEach((from, j) => {
      const src = from.source;
      if (!src) return;
      for (const k of [
        'namespaces',
        'notNamespaces',
        'serviceAccounts',
        'notServiceAccounts',
        'trustDomains',
        'notTrustDomains',
        'principals',
        'notPrincipals',
        'requestPrincipals',
        'notRequestPrincipals',
      ] as const) {
        if (len(src[k]) > 0) add(`spec.rules[${i}].from[${j}].source.${k}`, unsupported(`From.${k[0]?.toUpperCase()}${k.slice(1)}`));
      }
    });
    rule.when?.forEach((w, j) => {
      const key = w.key ?? '';
      const identity = ['source.namespace', 'source.serviceAccount', 'source.trustDomain', 'source.principal'].includes(key);
      if (identity || key.startsWith('request.auth.')) add(`spec.rules[${i}].when[${j}].key`, unsupported(key));
    });
  });
}

function ruleErrors(rule: Rule, i: number, add: (f: string, m: string) => void): void {
  const f = `spec.rules[${i}]`;
  rule.from?.forEach((from, j) => {
    if (!from.source) add(`${f}.from[${j}].source`, `\`from.source\` must not be nil, found at rule ${i}`);
    else sourceErrors(from.source, i, `${f}.from[${j}].source`, add);
  });
  rule.to?.forEach((to, j) => {
    if (!to.operation) add(`${f}.to[${j}].operation`, `\`to.operation\` must not be nil, found at rule ${i}`);
    else operationErrors(to.operation, i, `${f}.to[${j}].operation`, add);
  });
  rule.when?.forEach((c, j) => {
    const key = c.key ?? '';
    const g = `${f}.when[${j}]`;
    if (key === '') return add(`${g}.key`, '`key` must not be empty');
    if (len(c.values) === 0 && len(c.notValues) === 0) return add(g, `at least one of \`values\` or \`notValues\` must be set for key ${key}`);
    const v = attributeError(key, c.values ?? []);
    if (v) add(`${g}.values`, `invalid \`value\` for \`key\` ${key}: ${v}`);
    const nv = attributeError(key, c.notValues ?? []);
    if (nv) add(`${g}.notValues`, `invalid \`notValue\` for \`key\` ${key}: ${nv}`);
  });
}

/** strconv.ParseBool. */
export function parseGoBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}

/**
 * validateMetadata, which istiod's webhook runs before any kind's own validation: the dry-run annotation (only an
 * AuthorizationPolicy may carry it, for ALLOW or DENY, as a Go boolean), and the internal annotations only istiod
 * itself may set. `authorizationAction` is the policy's action for an AuthorizationPolicy, undefined for other kinds.
 */
export function metadataError(
  name: string,
  namespace: string,
  annotations: Readonly<Record<string, string>>,
  authorizationAction?: string,
): FieldError | undefined {
  const dryRun = annotations[DRY_RUN_ANNOTATION];
  const field = `metadata.annotations[${DRY_RUN_ANNOTATION}]`;
  if (dryRun !== undefined) {
    if (authorizationAction === undefined)
      return { field, message: `${namespace}/${name} has unsupported annotation ${DRY_RUN_ANNOTATION}, please remove the annotation` };
    if (authorizationAction !== 'ALLOW' && authorizationAction !== 'DENY') {
      return {
        field,
        message: `the annotation ${DRY_RUN_ANNOTATION} currently only supports action ALLOW/DENY, found action ${authorizationAction} in ${namespace}/${name}`,
      };
    }
    if (parseGoBool(dryRun) === undefined) {
      return {
        field,
        message: `${namespace}/${name} has annotation ${DRY_RUN_ANNOTATION} with invalid value (${dryRun}): strconv.ParseBool: parsing ${JSON.stringify(dryRun)}: invalid syntax`,
      };
    }
  }
  // constants.AlwaysReject, InternalParentNamespace, InternalParentNames, in istiod's order.
  const ALWAYS_REJECT = 'internal.istio.io/webhook-always-reject';
  if (ALWAYS_REJECT in annotations) return { field: `metadata.annotations[${ALWAYS_REJECT}]`, message: `"${ALWAYS_REJECT}" annotation found, rejecting` };
  const internal = ['internal.istio.io/parent-namespace', 'internal.istio.io/parents'].find((a) => a in annotations);
  if (internal) return { field: `metadata.annotations[${internal}]`, message: `"${internal}" annotation found, this may not be set by users` };
  return undefined;
}

/** validateOneOfSelectorType, validateWorkloadSelector, validatePolicyTargetReference(s): shared by the security kinds. */
export function attachmentErrors(spec: PolicyAttachment, add: (f: string, m: string) => void): void {
  const selectorKinds = (spec.selector ? 1 : 0) + (spec.targetRef ? 1 : 0) + (len(spec.targetRefs) > 0 ? 1 : 0);
  if (selectorKinds > 1) add('spec', 'only one of targetRefs or workloadSelector can be set');
  for (const [k, v] of Object.entries(spec.selector?.matchLabels ?? {})) {
    if (k === '') add('spec.selector.matchLabels', `empty key is not supported in selector: ${JSON.stringify(`${k}=${v}`)}`);
    if (k.includes('*') || v.includes('*')) add(`spec.selector.matchLabels.${k}`, `wildcard is not supported in selector: ${JSON.stringify(`${k}=${v}`)}`);
  }
  if (spec.targetRef) targetRefErrors(spec.targetRef, 'spec.targetRef', add);
  spec.targetRefs?.forEach((r, i) => targetRefErrors(r, `spec.targetRefs[${i}]`, add));
}

/** ValidateAuthorizationPolicy on a decoded spec. */
function authorizationPolicyErrors(spec: AuthorizationPolicySpec): FieldError[] {
  const out: FieldError[] = [];
  const add = (field: string, message: string): void => {
    out.push({ field, message });
  };
  attachmentErrors(spec, add);

  const action = actionOf(spec);
  const never = (a: string): string =>
    `${a} action without \`rules\` is meaningless as it will never be triggered, add an empty rule \`{}\` if you want it be triggered for every request`;
  if (action === 'CUSTOM') {
    if (!spec.rules) add('spec.rules', never('CUSTOM'));
    else if (!spec.provider?.name) add('spec.provider.name', '`provider.name` must not be empty');
    customErrors(spec.rules ?? [], add);
  }
  if (spec.provider && action !== 'CUSTOM') add('spec.provider', `\`provider\` must not be with non CUSTOM action, found ${action ?? String(spec.action)}`);
  if (action === 'DENY' && !spec.rules) add('spec.rules', never('DENY'));
  spec.rules?.forEach((r, i) => ruleErrors(r, i, add));
  return out;
}

/**
 * Everything that keeps an AuthorizationPolicy from being served, in istiod's order: what its decoder refuses,
 * then the metadata check (which stops there, as the webhook's does), then the spec rules.
 */
export function validateAuthorizationPolicy(
  meta: { name: string; namespace: string; annotations?: Readonly<Record<string, string>> },
  raw: unknown,
): { spec: AuthorizationPolicySpec; errors: FieldError[]; decoded: boolean } {
  const { spec, errors } = decodeAuthorizationPolicy(raw);
  if (errors.length) return { spec, errors, decoded: false };
  const m = metadataError(meta.name, meta.namespace, meta.annotations ?? {}, actionOf(spec) ?? String(spec.action));
  if (m) return { spec, errors: [m], decoded: true };
  return { spec, errors: authorizationPolicyErrors(spec), decoded: true };
}
