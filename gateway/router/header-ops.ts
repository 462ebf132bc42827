// Route / virtual host / route configuration header mutations (request_headers_to_add/_to_remove,
// response_headers_to_add/_to_remove) with Envoy's append_action semantics and the subset of its
// substitution format (%DOWNSTREAM_REMOTE_ADDRESS% ...) that is meaningful here. Compiled per config.
import type { envoy } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { ConfigError } from '../xds/json.ts';
import { wireString } from '../../xds/header-bytes.ts';
import { headerIndex, removeHeader, setHeader } from '../../xds/header-list.ts';

export interface HeaderContext {
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  /** `HTTP/1.1` */
  protocol: string;
}

const APPEND = 0; // APPEND_IF_EXISTS_OR_ADD
const ADD_IF_ABSENT = 1;
const OVERWRITE_OR_ADD = 2; // OVERWRITE_IF_EXISTS_OR_ADD
const OVERWRITE_IF_EXISTS = 3;

type ValuePart = string | ((c: HeaderContext) => string);

interface HeaderOp {
  name: string;
  parts: ValuePart[];
  constant: string | undefined;
  action: number;
  keepEmpty: boolean;
}

export interface HeaderMutation {
  remove: string[];
  add: HeaderOp[];
}

const VARIABLES: Record<string, (c: HeaderContext) => string> = {
  DOWNSTREAM_REMOTE_ADDRESS: (c) => `${c.remoteAddress}:${c.remotePort}`,
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: (c) => c.remoteAddress,
  DOWNSTREAM_REMOTE_PORT: (c) => String(c.remotePort),
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS: (c) => `${c.remoteAddress}:${c.remotePort}`,
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT: (c) => c.remoteAddress,
  DOWNSTREAM_LOCAL_ADDRESS: (c) => `${c.localAddress}:${c.localPort}`,
  DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: (c) => c.localAddress,
  DOWNSTREAM_LOCAL_PORT: (c) => String(c.localPort),
  PROTOCOL: (c) => c.protocol,
};

/** Envoy substitution format: `%VAR%` variables, `%%` a literal percent. Unknown variables are rejected. */
function parseValue(v: string, where: string): ValuePart[] {
  const parts: ValuePart[] = [];
  let lit = '';
  for (let i = 0; i < v.length; i++) {
    const ch = v[i];
    if (ch !== '%') {
      lit += ch;
      continue;
    }
    if (v[i + 1] === '%') {
      lit += '%';
      i++;
      continue;
    }
    const end = v.indexOf('%', i + 1);
    if (end < 0) throw new ConfigError(`${where}: invalid header value '${v}': unterminated variable (use %% for a literal %)`);
    const name = v.slice(i + 1, end);
    const fn = VARIABLES[name];
    if (!fn) throw new ConfigError(`${where}: header value variable %${name}% is not supported by this proxy`);
    if (lit) parts.push(lit);
    lit = '';
    parts.push(fn);
    i = end;
  }
  if (lit) parts.push(lit);
  return parts;
}

const ACTIONS: Record<string, number> = {
  APPEND_IF_EXISTS_OR_ADD: APPEND,
  ADD_IF_ABSENT,
  OVERWRITE_IF_EXISTS_OR_ADD: OVERWRITE_OR_ADD,
  OVERWRITE_IF_EXISTS,
};

const checkHeaderValueOption = fieldTable('envoy.config.core.v3.HeaderValueOption', {
  header: true,
  append: true,
  append_action: true,
  keep_empty_value: true,
});
const checkHeaderValue = fieldTable('envoy.config.core.v3.HeaderValue', { key: true, value: true, raw_value: true });

/** Compiles one level's `*_headers_to_add` + `*_headers_to_remove`. */
export function compileHeaderMutation(
  toAdd: readonly envoy.config.core.v3.HeaderValueOption[] | undefined,
  toRemove: readonly string[] | undefined,
  where: string,
): HeaderMutation {
  const add: HeaderOp[] = [];
  for (const [i, o] of (toAdd ?? []).entries()) {
    const w = `${where}[${i}]`;
    checkHeaderValueOption(o, w);
    const h = o.header ?? {};
    checkHeaderValue(h, `${w}.header`);
    const name = (h.key ?? '').toLowerCase();
    if (!name) throw new ConfigError(`${w}: header key is empty`);
    // Envoy refuses to let route config touch pseudo-headers and Host.
    if (name.startsWith(':') || name === 'host') throw new ConfigError(`${w}: ':'-prefixed or host headers may not be modified`);
    const value = h.raw_value !== undefined ? Buffer.from(h.raw_value, 'base64').toString('latin1') : wireString(h.value ?? '');
    // The proto's HTTP_HEADER_VALUE rule: no NUL, CR or LF (a value from config must not split a head).
    if (/[\0\r\n]/.test(value)) throw new ConfigError(`${w}: header value contains NUL, CR or LF`);
    let action = APPEND;
    if (o.append_action !== undefined) {
      const a = ACTIONS[o.append_action];
      if (a === undefined) throw new ConfigError(`${w}: unknown append_action`);
      action = a;
    } else if (o.append !== undefined) action = o.append ? APPEND : OVERWRITE_OR_ADD;
    const parts = parseValue(value, `${w}.header.value`);
    const constant = parts.every((p) => typeof p === 'string') ? parts.join('') : undefined;
    add.push({ name, parts, constant, action, keepEmpty: o.keep_empty_value === true });
  }
  const remove = (toRemove ?? []).map((s) => s.toLowerCase());
  for (const r of remove) {
    if (r.startsWith(':') || r === 'host') throw new ConfigError(`${where}: ':'-prefixed or host headers may not be removed`);
  }
  return { remove, add };
}

export function isEmptyMutation(m: HeaderMutation): boolean {
  return m.remove.length === 0 && m.add.length === 0;
}

/** Applies a mutation to a flat header array in place (Envoy HeaderParser::evaluateHeaders). */
export function applyHeaderMutation(m: HeaderMutation, headers: string[], c: HeaderContext): void {
  for (const r of m.remove) removeHeader(headers, r);
  for (const op of m.add) {
    let value = op.constant;
    if (value === undefined) {
      value = '';
      for (const p of op.parts) value += typeof p === 'string' ? p : p(c);
    }
    if (value === '' && !op.keepEmpty) continue;
    const at = headerIndex(headers, op.name);
    switch (op.action) {
      case APPEND:
        headers.push(op.name, value);
        break;
      case ADD_IF_ABSENT:
        if (at < 0) headers.push(op.name, value);
        break;
      case OVERWRITE_OR_ADD:
        setHeader(headers, op.name, value);
        break;
      case OVERWRITE_IF_EXISTS:
        if (at >= 0) setHeader(headers, op.name, value);
        break;
    }
  }
}
