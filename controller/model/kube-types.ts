// The parts of core/v1 Service, Pod, Endpoints and discovery.k8s.io/v1 EndpointSlice that the gateway reads.

export interface KubeServicePort {
  name?: string;
  protocol?: string;
  appProtocol?: string;
  port: number;
  targetPort?: number | string;
}

export interface KubeServiceSpec {
  type?: string;
  selector?: Record<string, string>;
  ports?: KubeServicePort[];
  clusterIP?: string;
  externalName?: string;
}

interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: string;
}

export interface PodSpec {
  nodeName?: string;
  containers?: { name?: string; ports?: ContainerPort[] }[];
}

export interface PodStatus {
  podIP?: string;
  podIPs?: { ip: string }[];
  phase?: string;
}

interface EndpointSlicePort {
  name?: string | null;
  port?: number | null;
  protocol?: string;
  appProtocol?: string;
}

interface EndpointSliceEndpoint {
  addresses: string[];
  conditions?: { ready?: boolean | null; serving?: boolean | null; terminating?: boolean | null };
  targetRef?: { kind?: string; name?: string; namespace?: string };
  nodeName?: string;
  zone?: string;
}

export interface EndpointSliceBody {
  addressType?: string;
  endpoints?: EndpointSliceEndpoint[] | null;
  ports?: EndpointSlicePort[] | null;
}

interface EndpointAddress {
  ip: string;
  hostname?: string;
  nodeName?: string;
  targetRef?: { kind?: string; name?: string; namespace?: string };
}

export interface EndpointSubset {
  addresses?: EndpointAddress[];
  notReadyAddresses?: EndpointAddress[];
  ports?: { name?: string; port: number; protocol?: string }[];
}
