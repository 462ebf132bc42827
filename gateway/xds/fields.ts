// Which fields of each Envoy message the proxy honours, and which it accepts without effect (and why): one
// table per message, checked against the generated types at compile time. Any other field set on a resource
// makes it a ConfigError, so the update is NACKed with a message that names the field. The tables are also
// the source of docs/xds-support.md (gateway/xds/support-doc.ts).
import type { TypeUrls } from '../../xds/envoy.ts';
import { ConfigError } from './json.ts';

/** `true`: the proxy implements the field. A string: accepted and without effect here; the string says why. */
export type FieldUse = true | string;

type MessageName = keyof TypeUrls extends `type.googleapis.com/${infer N}` ? N : never;
type MessageOf<N extends MessageName> = TypeUrls[`type.googleapis.com/${N}`];

export interface FieldTable {
  readonly message: MessageName;
  /** Where in a resource this table applies, when one message is checked differently in several places. */
  readonly context: string;
  readonly fields: Readonly<Record<string, FieldUse>>;
}

const registry: FieldTable[] = [];

/** Every table the loaded modules declared, in declaration order. */
export function fieldTables(): readonly FieldTable[] {
  return registry;
}

/**
 * Declares what the proxy does with each field of `message` and returns the check for it: a field set on
 * the object that the table does not list throws a ConfigError. `@type` (an Any's URL) is always allowed.
 */
export function fieldTable<N extends MessageName>(
  message: N,
  fields: { readonly [K in keyof MessageOf<N>]?: FieldUse },
  context = '',
): (o: MessageOf<N>, where: string) => void {
  const table: FieldTable = { message, context, fields: fields as Record<string, FieldUse> };
  registry.push(table);
  return (o, where) => {
    for (const k of Object.keys(o)) {
      if (k !== '@type' && table.fields[k] === undefined) throw new ConfigError(`${where}: field '${k}' is not supported by this proxy`);
    }
  };
}
