// istiod's validating webhook on every Istio object (IST0106 SchemaValidationError, one per problem, as
// `istioctl analyze` reports each error of the webhook's multierror), with the messages and field paths of
// the validation the controller itself applies: an object reported here is one the gateway skips.
import type { StoredObject } from '../model/objects.ts';
import { type FieldError, validateDestinationRule, validateGateway, validateServiceEntry, validateVirtualService } from '../model/istio-validation.ts';
import { validateAuthorizationPolicy } from '../model/authorization-policy-validation.ts';
import { validateRequestAuthentication } from '../model/request-authentication-validation.ts';
import { validateTelemetry } from '../model/telemetry-validation.ts';
import { ISTIO_API_GROUP, ISTIO_API_VERSIONS } from '../model/istio-types.ts';
import { SECURITY_API_GROUP, SECURITY_API_VERSIONS } from '../model/security-types.ts';
import { TELEMETRY_API_GROUP, TELEMETRY_API_VERSIONS } from '../model/telemetry-types.ts';
import { metaOf } from '../model/config.ts';
import { NOT_HONOURED_KINDS } from '../model/objects.ts';
import { type Finding, finding } from './messages.ts';

interface KindRules {
  group: string;
  versions: readonly string[];
  validate(o: StoredObject): FieldError[];
}

const meta = (o: StoredObject): { name: string; namespace: string; annotations: Readonly<Record<string, string>> } => metaOf(o);

const networking = (validate: (o: StoredObject) => FieldError[]): KindRules => ({ group: ISTIO_API_GROUP, versions: ISTIO_API_VERSIONS, validate });

const RULES: Readonly<Partial<Record<string, KindRules>>> = {
  Gateway: networking((o) => validateGateway(o.obj.metadata.name, o.obj.spec)),
  VirtualService: networking((o) => validateVirtualService(o.obj.spec)),
  DestinationRule: networking((o) => validateDestinationRule(o.obj.spec)),
  ServiceEntry: networking((o) => validateServiceEntry(o.obj.spec)),
  AuthorizationPolicy: { group: SECURITY_API_GROUP, versions: SECURITY_API_VERSIONS, validate: (o) => validateAuthorizationPolicy(meta(o), o.obj.spec).errors },
  RequestAuthentication: {
    group: SECURITY_API_GROUP,
    versions: SECURITY_API_VERSIONS,
    validate: (o) => validateRequestAuthentication(meta(o), o.obj.spec).errors,
  },
  Telemetry: { group: TELEMETRY_API_GROUP, versions: TELEMETRY_API_VERSIONS, validate: (o) => validateTelemetry(meta(o), o.obj.spec).errors },
};

const notHonoured: ReadonlySet<string> = new Set(NOT_HONOURED_KINDS);

/**
 * What istiod's webhook (and the controller) says about `o`; for an Istio kind meshgate does not implement, that
 * the gateway ignores it (the controller's Unsupported status condition); empty for a valid object or a Kubernetes kind.
 */
export function schemaFindings(o: StoredObject): Finding[] {
  const m = metaOf(o);
  const at = { kind: o.kind, namespace: m.namespace, name: m.name };
  if (notHonoured.has(o.kind)) {
    return [
      finding('NotImplementedKind', {
        ...at,
        message: `${o.kind} is not implemented by meshgate: this gateway ignores it`,
        hint: `what this ${o.kind} would change at an Envoy gateway does not happen here; see docs/install.md#crds for what meshgate implements`,
      }),
    ];
  }
  const rules = RULES[o.kind];
  if (!rules) return [];
  const [group, version] = o.obj.apiVersion.split('/');
  if (group !== rules.group || !rules.versions.includes(version ?? '')) {
    return [
      finding('UnsupportedApiVersion', {
        ...at,
        field: 'apiVersion',
        message: `unsupported apiVersion ${JSON.stringify(o.obj.apiVersion)} for ${o.kind}`,
        hint: `use ${rules.group}/${rules.versions[0] ?? ''} (${rules.versions.slice(1).join(', ')} also served); meshgate skips the object until then`,
      }),
    ];
  }
  return rules.validate(o).map((e) =>
    finding('SchemaValidationError', {
      ...at,
      field: e.field,
      message: `Schema validation error: ${e.message}`,
      hint: `fix ${e.field}: istiod's webhook refuses this ${o.kind}, and meshgate skips it (everything else is still served)`,
    }),
  );
}
