// The checks of the Kubernetes "restricted" Pod Security Standard
// (kubernetes.io/docs/concepts/security/pod-security-standards/) that a pod template can fail.
import type { Container, PodSpec } from './k8s-types.ts';

const ALLOWED_VOLUME_SOURCES = new Set(['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret']);

/** The sysctls the baseline (and so restricted) standard allows. */
const SAFE_SYSCTLS = new Set([
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
]);

export function restrictedPodSecurityViolations(pod: PodSpec): string[] {
  const out: string[] = [];
  if (pod.hostNetwork || pod.hostPID || pod.hostIPC) out.push('host namespaces');
  for (const v of pod.volumes ?? []) {
    for (const source of Object.keys(v)) {
      if (source !== 'name' && !ALLOWED_VOLUME_SOURCES.has(source)) out.push(`volume ${v.name}: ${source}`);
    }
  }
  const podCtx = pod.securityContext ?? {};
  if (podCtx.runAsUser === 0) out.push('pod runAsUser 0');
  for (const s of podCtx.sysctls ?? []) if (!SAFE_SYSCTLS.has(s.name)) out.push(`sysctl ${s.name}`);
  const containers: Container[] = [...(pod.initContainers ?? []), ...pod.containers];
  for (const c of containers) {
    const ctx = c.securityContext ?? {};
    if (ctx.privileged) out.push(`${c.name}: privileged`);
    if (ctx.allowPrivilegeEscalation !== false) out.push(`${c.name}: allowPrivilegeEscalation is not false`);
    if (!(ctx.runAsNonRoot ?? podCtx.runAsNonRoot)) out.push(`${c.name}: runAsNonRoot is not true`);
    if (ctx.runAsUser === 0) out.push(`${c.name}: runAsUser 0`);
    const seccomp = (ctx.seccompProfile ?? podCtx.seccompProfile)?.type;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') out.push(`${c.name}: seccompProfile ${seccomp ?? 'unset'}`);
    if (!ctx.capabilities?.drop?.includes('ALL')) out.push(`${c.name}: capabilities not dropped`);
    for (const cap of ctx.capabilities?.add ?? []) {
      if (cap !== 'NET_BIND_SERVICE') out.push(`${c.name}: adds capability ${cap}`);
    }
  }
  return out;
}
