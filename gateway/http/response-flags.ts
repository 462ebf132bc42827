// Envoy response flags (StreamInfo CoreResponseFlag) as a bitmask, printed in Envoy's table order as
// short codes joined by ',' (`UF,URX`), or `-` when none.
export const DC = 1 << 0; // DownstreamConnectionTermination
const LH = 1 << 1;
export const UH = 1 << 2; // NoHealthyUpstream
export const UT = 1 << 3; // UpstreamRequestTimeout
const LR = 1 << 4; // LocalReset
export const UR = 1 << 5; // UpstreamRemoteReset
export const UF = 1 << 6; // UpstreamConnectionFailure
export const UC = 1 << 7; // UpstreamConnectionTermination
export const UO = 1 << 8; // UpstreamOverflow
export const NR = 1 << 9; // NoRouteFound
export const DI = 1 << 10;
export const FI = 1 << 11;
const RL = 1 << 12;
export const URX = 1 << 13; // UpstreamRetryLimitExceeded
const SI = 1 << 14;
const IH = 1 << 15;
export const DPE = 1 << 16; // DownstreamProtocolError
const UMSDR = 1 << 17;
const DT = 1 << 18;
export const UPE = 1 << 19; // UpstreamProtocolError
export const NC = 1 << 20; // NoClusterFound
const OM = 1 << 21;
const DR = 1 << 22;
export const UAEX = 1 << 23; // UnauthorizedExternalService (ext_authz denied or failed)

// Order of Envoy's CORE_RESPONSE_FLAGS string table (stream_info/utility.h).
const ORDER: [number, string][] = [
  [DC, 'DC'],
  [LH, 'LH'],
  [UH, 'UH'],
  [UT, 'UT'],
  [LR, 'LR'],
  [UR, 'UR'],
  [UF, 'UF'],
  [UC, 'UC'],
  [UO, 'UO'],
  [NR, 'NR'],
  [DI, 'DI'],
  [FI, 'FI'],
  [RL, 'RL'],
  [UAEX, 'UAEX'],
  [URX, 'URX'],
  [SI, 'SI'],
  [IH, 'IH'],
  [DPE, 'DPE'],
  [UMSDR, 'UMSDR'],
  [DT, 'DT'],
  [UPE, 'UPE'],
  [NC, 'NC'],
  [OM, 'OM'],
  [DR, 'DR'],
];

export function formatResponseFlags(flags: number): string {
  if (flags === 0) return '-';
  let out = '';
  for (const [bit, code] of ORDER) {
    if (flags & bit) out = out ? `${out},${code}` : code;
  }
  return out;
}

/** The bit of a short flag code (`UF`), undefined for a code Envoy does not define. */
export function responseFlagBit(code: string): number | undefined {
  return ORDER.find(([, c]) => c === code)?.[0];
}
