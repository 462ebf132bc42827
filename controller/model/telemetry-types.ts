// telemetry.istio.io Telemetry (istio.telemetry.v1alpha1.Telemetry, served as v1 and v1alpha1), as its JSON decodes:
// wrapper fields (BoolValue, DoubleValue) are plain values, set or not; enums are their names.
import type { PolicyAttachment } from './security-types.ts';

export const TELEMETRY_API_GROUP = 'telemetry.istio.io';
/** Newest first: the versions Istio's Telemetry CRD serves. */
export const TELEMETRY_API_VERSIONS = ['v1', 'v1alpha1'] as const;

/** WorkloadMode: which side of a call a setting applies to; a gateway's listeners are CLIENT (workloadMode). */
export const WORKLOAD_MODES = ['CLIENT_AND_SERVER', 'CLIENT', 'SERVER'] as const;
type WorkloadMode = (typeof WORKLOAD_MODES)[number];

/** MetricSelector.IstioMetric. */
export const ISTIO_METRICS = [
  'ALL_METRICS',
  'REQUEST_COUNT',
  'REQUEST_DURATION',
  'REQUEST_SIZE',
  'RESPONSE_SIZE',
  'TCP_OPENED_CONNECTIONS',
  'TCP_CLOSED_CONNECTIONS',
  'TCP_SENT_BYTES',
  'TCP_RECEIVED_BYTES',
  'GRPC_REQUEST_MESSAGES',
  'GRPC_RESPONSE_MESSAGES',
] as const;
type IstioMetric = (typeof ISTIO_METRICS)[number];

export interface ProviderRef {
  name?: string;
}

export interface TracingCustomTag {
  literal?: { value?: string };
  environment?: { name?: string; defaultValue?: string };
  header?: { name?: string; defaultValue?: string };
}

export interface Tracing {
  match?: { mode?: WorkloadMode };
  providers?: ProviderRef[];
  randomSamplingPercentage?: number;
  disableSpanReporting?: boolean;
  customTags?: Record<string, TracingCustomTag | null>;
  useRequestIdForTraceSampling?: boolean;
  enableIstioTags?: boolean;
  disableContextPropagation?: boolean;
}

export interface TagOverride {
  operation?: 'UPSERT' | 'REMOVE';
  value?: string;
}

interface MetricSelector {
  /** At most one of metric and customMetric (a oneof); neither: all metrics. */
  metric?: IstioMetric;
  customMetric?: string;
  mode?: WorkloadMode;
}

export interface MetricsOverrides {
  match?: MetricSelector;
  disabled?: boolean;
  tagOverrides?: Record<string, TagOverride | null>;
}

export interface Metrics {
  providers?: ProviderRef[];
  overrides?: MetricsOverrides[];
  /** A proto Duration as JSON writes it ("10s"). */
  reportingInterval?: string;
}

export interface AccessLogging {
  match?: { mode?: WorkloadMode };
  providers?: ProviderRef[];
  disabled?: boolean;
  filter?: { expression?: string };
}

export interface TelemetrySpec extends PolicyAttachment {
  tracing?: Tracing[];
  metrics?: Metrics[];
  accessLogging?: AccessLogging[];
}
