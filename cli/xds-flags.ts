// How `meshgate controller` and `meshgate proxy` find each other: a Unix socket by default (SDS carries
// private keys, so only the pod's containers may open it), TCP only when asked for.
import { UsageError } from './usage-error.ts';

/** Where Istio's pilot-agent serves xDS to Envoy (an emptyDir both containers mount), and meshgate's controller too. */
export const DEFAULT_XDS_SOCKET = '/etc/istio/proxy/XDS';

/** The gRPC target of the ADS server: the Unix socket, unless TCP is asked for with --xds-address. */
export function xdsTarget(socket: string | undefined, address: string | undefined): string {
  if (socket !== undefined && address !== undefined) throw new UsageError('--xds-socket and --xds-address name two ways to reach the controller: give one');
  if (address !== undefined) {
    if (!/^.+:\d+$/.test(address)) throw new UsageError(`--xds-address must be HOST:PORT, got '${address}'`);
    return address;
  }
  const path = socket ?? DEFAULT_XDS_SOCKET;
  if (path === '') throw new UsageError('--xds-socket must name a file');
  return `unix:${path}`;
}
