// The catalogue of what `meshgate validate` reports: Istio's analysis message types (code, level, text as
// pkg/config/analysis/msg/messages.yaml has them) and meshgate's own, with an `MG` code, for problems Istio
// has no message for. One place, so a code never has two texts.
export type Level = 'Error' | 'Warning' | 'Info';

/** Worse first, as istioctl sorts its messages. */
export const LEVELS: readonly Level[] = ['Error', 'Warning', 'Info'];

export interface MessageType {
  code: string;
  level: Level;
}

export const MESSAGES = {
  ReferencedResourceNotFound: { code: 'IST0101', level: 'Error' },
  SchemaValidationError: { code: 'IST0106', level: 'Error' },
  VirtualServiceDestinationPortSelectorRequired: { code: 'IST0112', level: 'Error' },
  NoServerCertificateVerificationDestinationLevel: { code: 'IST0128', level: 'Warning' },
  NoServerCertificateVerificationPortLevel: { code: 'IST0129', level: 'Warning' },
  VirtualServiceUnreachableRule: { code: 'IST0130', level: 'Warning' },
  VirtualServiceIneffectiveMatch: { code: 'IST0131', level: 'Info' },
  VirtualServiceHostNotFoundInGateway: { code: 'IST0132', level: 'Warning' },
  GatewayDuplicateCertificate: { code: 'IST0138', level: 'Warning' },
  ConflictingGateways: { code: 'IST0145', level: 'Error' },
  InvalidGatewayCredential: { code: 'IST0161', level: 'Error' },
  GatewayPortNotDefinedOnService: { code: 'IST0162', level: 'Warning' },
  // meshgate's own
  ConfigFileError: { code: 'MG0001', level: 'Error' },
  UnknownKind: { code: 'MG0002', level: 'Info' },
  DuplicateObject: { code: 'MG0003', level: 'Warning' },
  UnsupportedApiVersion: { code: 'MG0004', level: 'Error' },
  NotImplementedKind: { code: 'MG0005', level: 'Warning' },
  RouteShadowedByEarlierVirtualService: { code: 'MG0101', level: 'Warning' },
} as const satisfies Record<string, MessageType>;

export type MessageName = keyof typeof MESSAGES;

/** One problem found, on one object. */
export interface Finding {
  code: string;
  level: Level;
  /** The message type's name, e.g. ReferencedResourceNotFound. */
  type: MessageName;
  kind: string;
  namespace: string;
  name: string;
  /** The offending field, e.g. `spec.gateways[0]`; undefined when the finding is about the whole object. */
  field?: string;
  message: string;
  /** What to change. */
  hint: string;
  /** Where the field (or the object) is written, when it came from a file. */
  position?: { file: string; line: number };
}

/** What an analyzer says about one object: the rest (code, level) comes from the catalogue. */
export interface Report {
  kind: string;
  namespace: string;
  name: string;
  field?: string;
  message: string;
  hint: string;
  position?: { file: string; line: number };
}

export function finding(type: MessageName, r: Report): Finding {
  const t: MessageType = MESSAGES[type];
  return { code: t.code, level: t.level, type, ...r };
}

/** Go's %q for the strings these messages quote. */
export const goQuote = (s: string): string => JSON.stringify(s);

/** Go's %v of a []string: `[a b]`. */
export const goList = (l: readonly string[]): string => `[${l.join(' ')}]`;

/** A field path segment for a map key: `.key`, or `["key"]` when it has characters a path uses. */
export const fieldKey = (k: string): string => (/^[A-Za-z0-9_-]+$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`);

/** istio.io's page for an Istio code (istioctl's documentationUrl); undefined for meshgate's own codes. */
export function documentationUrl(code: string): string | undefined {
  return code.startsWith('IST') ? `https://istio.io/latest/docs/reference/config/analysis/${code.toLowerCase()}/` : undefined;
}
