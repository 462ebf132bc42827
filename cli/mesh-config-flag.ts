// `--mesh-config FILE`, shared by `meshgate local` and `meshgate controller`: Istio's MeshConfig (what istiod's
// ConfigMap `istio` holds under the key `mesh`), watched for changes (controller/sources/mesh-config-file.ts).
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { MeshConfigFile } from '../controller/sources/mesh-config-file.ts';
import { UsageError } from './usage-error.ts';

const MESH_CONFIG_HELP = [
  "Istio's MeshConfig (the YAML under the key mesh of istiod's ConfigMap istio,",
  "i.e. meshConfig: in Istio's Helm values): rootNamespace, trustDomain,",
  'extensionProviders (ext_authz for CUSTOM AuthorizationPolicies), defaultConfig.',
  'Re-read when it changes; an invalid file is logged and the last good one kept',
  "(default: an Istio install's: istiod's defaults with Istio's standard metrics on;",
  'see docs/mesh-config.md)',
];

/** The flag's --help lines, its description starting at column `column` as the command's other flags do. */
export function meshConfigUsage(column: number): string {
  const flag = '  --mesh-config FILE';
  return MESH_CONFIG_HELP.map((l, i) => (i === 0 ? flag.padEnd(column) : ' '.repeat(column)) + l).join('\n');
}

/** The file, checked to exist now (a typo should not silently mean "istiod's defaults"). */
export function meshConfigPath(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value === '') throw new UsageError('--mesh-config must name a file');
  const file = resolve(value);
  try {
    if (!statSync(file).isFile()) throw new UsageError(`--mesh-config ${value}: not a file`);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(
      `--mesh-config ${value}: ${(err as NodeJS.ErrnoException).code ?? String(err)} (give the MeshConfig YAML file, see docs/mesh-config.md)`,
    );
  }
  return file;
}

export function startMeshConfig(file: string | undefined, log: Logger): Promise<MeshConfigFile> | undefined {
  return file === undefined ? undefined : MeshConfigFile.start({ file, log });
}
