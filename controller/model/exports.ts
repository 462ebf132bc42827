// exportTo visibility (pkg/config/visibility): "*" everyone, "." own namespace, "~" nobody, or namespaces.

export interface ExportTo {
  all: boolean;
  namespaces: ReadonlySet<string>;
}

export function parseExportTo(list: readonly string[] | undefined, ownNamespace: string, defaults: readonly string[] = ['*']): ExportTo {
  const entries = list && list.length > 0 ? list : defaults;
  const namespaces = new Set<string>();
  let all = false;
  for (const e of entries) {
    if (e === '*') all = true;
    else if (e === '.') namespaces.add(ownNamespace);
    else if (e !== '~') namespaces.add(e);
  }
  return { all, namespaces };
}

export function visibleTo(e: ExportTo, namespace: string): boolean {
  return e.all || e.namespaces.has(namespace);
}
