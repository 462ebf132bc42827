// The parts of Kubernetes objects the chart tests read.
import type { K8sObject } from './helm.ts';

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string; apiVersion?: string };
    resourceFieldRef?: { containerName?: string; resource: string; divisor?: string };
  };
}

interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: string;
}

interface SecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  privileged?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
  seccompProfile?: { type: string };
  sysctls?: { name: string; value: string }[];
}

export interface Container {
  name: string;
  image: string;
  imagePullPolicy?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: ContainerPort[];
  readinessProbe?: {
    httpGet?: { path: string; port: number | string; scheme?: string };
    tcpSocket?: { port: number | string };
    periodSeconds?: number;
    timeoutSeconds?: number;
    failureThreshold?: number;
    initialDelaySeconds?: number;
  };
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  securityContext?: SecurityContext;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  lifecycle?: Record<string, unknown>;
}

interface Volume {
  name: string;
  emptyDir?: Record<string, unknown>;
  downwardAPI?: { items: { path: string; fieldRef?: { fieldPath: string } }[] };
  projected?: {
    sources: {
      serviceAccountToken?: { path: string; expirationSeconds?: number };
      configMap?: { name: string; items?: { key: string; path: string }[] };
      downwardAPI?: { items: { path: string; fieldRef?: { fieldPath: string } }[] };
    }[];
  };
  hostPath?: Record<string, unknown>;
  [source: string]: unknown;
}

export interface PodSpec {
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  securityContext?: SecurityContext;
  terminationGracePeriodSeconds?: number;
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  nodeSelector?: Record<string, string>;
  tolerations?: Record<string, unknown>[];
  affinity?: Record<string, unknown>;
  topologySpreadConstraints?: Record<string, unknown>[];
  imagePullSecrets?: { name: string }[];
  priorityClassName?: string;
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  dnsPolicy?: string;
  dnsConfig?: Record<string, unknown>;
}

export interface Workload extends K8sObject {
  spec: {
    replicas?: number;
    strategy?: Record<string, unknown>;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec };
  };
}

interface ServicePort {
  name: string;
  port: number;
  targetPort: number | string;
  protocol?: string;
}

export interface Service extends K8sObject {
  spec: {
    type: string;
    ports: ServicePort[];
    selector: Record<string, string>;
    externalTrafficPolicy?: string;
    loadBalancerIP?: string;
    loadBalancerSourceRanges?: string[];
    clusterIP?: string;
    loadBalancerClass?: string | null;
    allocateLoadBalancerNodePorts?: boolean;
    internalTrafficPolicy?: string;
    healthCheckNodePort?: number;
  };
}

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

export interface Role extends K8sObject {
  rules: PolicyRule[];
}

export interface RoleBinding extends K8sObject {
  roleRef: { apiGroup: string; kind: string; name: string };
  subjects: { kind: string; name: string; namespace?: string }[];
}

export interface HorizontalPodAutoscaler extends K8sObject {
  spec: {
    scaleTargetRef: { apiVersion: string; kind: string; name: string };
    minReplicas?: number;
    maxReplicas: number;
    metrics: {
      type: string;
      resource?: { name: string; target: { type: string; averageUtilization?: number } };
      containerResource?: { name: string; container: string; target: { type: string; averageUtilization?: number } };
    }[];
  };
}

export interface NetworkPolicy extends K8sObject {
  spec: {
    podSelector: { matchLabels: Record<string, string> };
    policyTypes: string[];
    ingress: { ports: { protocol: string; port: number }[] }[];
    egress: Record<string, unknown>[];
  };
}

export interface PodDisruptionBudget extends K8sObject {
  spec: { selector: { matchLabels: Record<string, string> }; minAvailable?: number | string; maxUnavailable?: number | string };
}
