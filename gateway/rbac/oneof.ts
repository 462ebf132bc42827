// A proto oneof in proto3 JSON: the one key that is set. Envoy's protos mark the RBAC ones
// `(validate.required) = true`, so none set is a validation error there, and two set fail its JSON parse.
import { ConfigError } from '../xds/json.ts';

/** The name of the one field of `o` that is set (ignoring an Any's '@type'); throws a ConfigError otherwise. */
export function exactlyOne<T extends object>(o: T, where: string, what: string): keyof T & string {
  let found: string | undefined;
  for (const [k, v] of Object.entries(o)) {
    if (k === '@type' || v === undefined) continue;
    if (found !== undefined) throw new ConfigError(`${where}: ${what} sets both '${found}' and '${k}'; exactly one is allowed`);
    found = k;
  }
  if (found === undefined) throw new ConfigError(`${where}: ${what} sets none of its fields; exactly one is required`);
  return found as keyof T & string;
}
