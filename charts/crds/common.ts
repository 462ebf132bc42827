// Building blocks several Istio kinds share (istio.type.v1beta1 WorkloadSelector and PolicyTargetReference,
// networking's WorkloadSelector, IstioStatus), with the limits and CEL rules Istio's CRDs give them.
import { enumOf, intOrString, list, map, object, rule, string, strings, type Schema } from './openapi.ts';

const labelValue = (message: string): Schema => string(undefined, { maxLength: 63, 'x-kubernetes-validations': [rule('!self.contains("*")', message)] });

/** istio.type.v1beta1.WorkloadSelector: matchLabels without wildcards (security, telemetry, extensions kinds). */
export function matchLabelsSelector(description: string): Schema {
  return object(
    {
      matchLabels: {
        ...map(labelValue('wildcard not allowed in label value match'), 'Labels of the selected workloads.'),
        maxProperties: 4096,
        'x-kubernetes-validations': [
          rule('self.all(key, !key.contains("*"))', 'wildcard not allowed in label key match'),
          rule('self.all(key, key.size() != 0)', 'key must not be empty'),
        ],
      },
    },
    { description },
  );
}

/** networking.v1alpha3 WorkloadSelector: `labels` (Sidecar, ServiceEntry). */
export function labelsSelector(description: string): Schema {
  return object(
    { labels: { ...map(labelValue('wildcard is not supported in selector'), 'Labels of the selected workloads.'), maxProperties: 256 } },
    { description },
  );
}

const targetRefFields = {
  group: string('Group of the target resource ("" for core).', {
    maxLength: 253,
    pattern: '^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
  }),
  kind: string('Kind of the target resource.', { minLength: 1, maxLength: 63, pattern: '^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$' }),
  name: string('Name of the target resource.', { minLength: 1, maxLength: 253 }),
  namespace: string('Namespace of the referent; must be empty (cross-namespace references are not supported).', {
    'x-kubernetes-validations': [rule('self.size() == 0', 'cross namespace referencing is not currently supported')],
  }),
};

/** istio.type.v1beta1.PolicyTargetReference. */
export const targetRef = object(targetRefFields, {
  description: 'A resource the policy attaches to (Gateway API gateways, waypoints, services); Istio gateways use a selector.',
  required: ['kind', 'name'],
});

export const targetRefs = list(targetRef, 'Resources the policy attaches to.', { maxItems: 16 });

export const exportTo = strings('Namespaces to which this resource is exported: "." (its own namespace), "*" (all, the default) or names.');

/**
 * istio.meta.v1alpha1.IstioStatus as Istio's CRDs declare it, left open: istiod writes its conditions and
 * validationMessages, meshgate's controller its own condition types (docs/security-policy.md#status), each keeping
 * the others'.
 */
export const istioStatus: Schema = {
  ...object({
    conditions: list(
      object({
        lastProbeTime: string('Last time the condition was probed.', { format: 'date-time' }),
        lastTransitionTime: string('Last time the condition changed status.', { format: 'date-time' }),
        message: string('Human-readable details.'),
        observedGeneration: intOrString('The generation the condition was set for.'),
        reason: string('Machine-readable reason of the last transition.'),
        status: string('True, False or Unknown.'),
        type: string('Type of the condition.'),
      }),
      'Current state of the resource.',
    ),
    observedGeneration: intOrString('The generation of the resource the status describes.'),
    validationMessages: list(
      object({
        documentationUrl: string('Where to read more.'),
        level: enumOf(['UNKNOWN', 'ERROR', 'WARNING', 'INFO'], 'Severity.'),
        type: object({ code: string('Analyzer code, e.g. IST0101.'), name: string('Analyzer name.') }),
      }),
      'Messages from Istio analyzers.',
    ),
  }),
  'x-kubernetes-preserve-unknown-fields': true,
};
