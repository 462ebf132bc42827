// Envoy's substitution formatter (source/common/formatter): a format string of command operators
// (`%REQ(:METHOD)%`, `%RESPONSE_CODE%`, `%REQ(USER-AGENT):10%`) compiled once per config into a function of one
// logged request or connection. TEXT prints a missing value as `-` (or nothing with omit_empty_values). JSON
// (json_format) prints the keys sorted at every level (Envoy always sorts; sort_properties is deprecated), constant
// values as given, a value that is exactly one operator with its type (numbers for RESPONSE_CODE, BYTES_*,
// DURATION; null when missing) and any other template as a string with `-` for each missing operator.
import { hostname } from 'node:os';
import { formatResponseFlags } from '../http/response-flags.ts';
import { ConfigError } from '../xds/json.ts';

/** What one access log line can show: a finished HTTP stream, a closed TCP connection, or a refused one. */
export interface AccessLogEntry {
  /** Epoch milliseconds. */
  startTime: number;
  /** '' when there is no request (TCP). */
  method: string;
  /** :path as it went upstream. */
  path: string;
  /** x-envoy-original-path: the path before a route's rewrite, '' when not rewritten. */
  originalPath: string;
  authority: string;
  /** HTTP/1.0, HTTP/1.1, HTTP/2; '' for TCP. */
  protocol: string;
  /** 0 when no response began. */
  responseCode: number;
  responseFlags: number;
  responseCodeDetails: string;
  connectionTerminationDetails: string;
  upstreamTransportFailureReason: string;
  bytesReceived: number;
  bytesSent: number;
  durationMs: number;
  /** The x-envoy-upstream-service-time response header, '' when absent. */
  upstreamServiceTime: string;
  xForwardedFor: string;
  userAgent: string;
  requestId: string;
  upstreamHost: string;
  upstreamCluster: string;
  upstreamLocalAddress: string;
  downstreamLocalAddress: string;
  downstreamRemoteAddress: string;
  requestedServerName: string;
  routeName: string;
  /** The other request headers: lowercase name, value, name, value ... */
  requestHeaders?: readonly string[];
  /** The response headers sent downstream, in the same form. */
  responseHeaders?: readonly string[];
}

/** One operator's value: a string, a number (typed in JSON), or undefined (missing: `-` or null). */
type Value = string | number | undefined;
type Provider = (e: AccessLogEntry) => Value;

const orNone = (s: string): string | undefined => (s === '' ? undefined : s);

function findHeader(list: readonly string[] | undefined, name: string): string | undefined {
  if (!list) return undefined;
  for (let i = 0; i < list.length; i += 2) if (list[i] === name) return list[i + 1];
  return undefined;
}

/** A request header as Envoy's request header map holds it when the stream ends (pseudo-headers included). */
function requestHeader(e: AccessLogEntry, name: string): string | undefined {
  switch (name) {
    case ':method':
      return orNone(e.method);
    case ':path':
      return orNone(e.path);
    case ':authority':
    case 'host':
      return orNone(e.authority);
    case 'x-envoy-original-path':
      return orNone(e.originalPath);
    case 'x-request-id':
      return orNone(e.requestId);
    case 'x-forwarded-for':
      return orNone(e.xForwardedFor);
    case 'user-agent':
      return orNone(e.userAgent);
    default:
      return findHeader(e.requestHeaders, name);
  }
}

function responseHeader(e: AccessLogEntry, name: string): string | undefined {
  if (name === ':status') return e.responseCode === 0 ? undefined : String(e.responseCode);
  if (name === 'x-envoy-upstream-service-time') return orNone(e.upstreamServiceTime);
  return findHeader(e.responseHeaders, name);
}

/** `X?Y`: header X, else header Y (SubstitutionFormatParser::parseSubcommandHeaders). */
function headerNames(command: string, arg: string): [string, string | undefined] {
  const parts = arg.split('?');
  if (parts.length > 2) throw new ConfigError(`More than 1 alternative header specified in token: ${arg}`);
  const [main = '', alt] = parts.map((p) => p.toLowerCase());
  // Envoy refuses header names with a newline; an empty name finds nothing.
  if (/[\r\n]/.test(arg)) throw new ConfigError(`Invalid header configuration. Format string contains newline in ${command}(${arg})`);
  return [main, alt];
}

function headerProvider(
  command: string,
  arg: string,
  length: number | undefined,
  get: (e: AccessLogEntry, n: string) => string | undefined,
  stripQuery: boolean,
): Provider {
  const [main, alt] = headerNames(command, arg);
  return (e) => {
    let v = get(e, main);
    if (v === undefined && alt !== undefined) v = get(e, alt);
    if (v === undefined) return undefined;
    if (stripQuery) {
      const q = v.indexOf('?');
      if (q >= 0) v = v.slice(0, q);
    }
    return length !== undefined ? v.slice(0, length) : v;
  };
}

/** `ip:port` without the port (IPv6 in brackets keeps its address only). */
function withoutPort(a: string): string | undefined {
  if (a === '') return undefined;
  if (a.startsWith('[')) return a.slice(1, a.indexOf(']'));
  const i = a.lastIndexOf(':');
  return i > 0 ? a.slice(0, i) : a;
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/**
 * START_TIME(format): absl::FormatTime's strftime in UTC. Supported: %Y %m %d %H %M %S %y %j %e %F %T %z %Z %s %%,
 * %f / %1f..%9f (fractional seconds, nanosecond digits from milliseconds), %E3S (seconds with 3 decimals) and
 * %E1S..%E9S; any other conversion is refused.
 */
function compileTimeFormat(fmt: string): (ms: number) => string {
  const parts: ((d: Date, ms: number) => string)[] = [];
  const frac = (ms: number, digits: number): string =>
    pad(((ms % 1000) + 1000) % 1000, 3)
      .concat('000000')
      .slice(0, digits);
  let lit = '';
  const flush = (): void => {
    if (lit) {
      const s = lit;
      parts.push(() => s);
      lit = '';
    }
  };
  for (let i = 0; i < fmt.length; i++) {
    const c = fmt[i];
    if (c !== '%') {
      lit += c;
      continue;
    }
    let spec = fmt[++i] ?? '';
    let width = 0;
    if (/[1-9]/.test(spec) && fmt[i + 1] === 'f') {
      width = Number(spec);
      spec = fmt[++i] ?? '';
    } else if (spec === 'E' && /[1-9]/.test(fmt[i + 1] ?? '') && fmt[i + 2] === 'S') {
      width = Number(fmt[i + 1]);
      i += 2;
      spec = 'ES';
    }
    const simple: Readonly<Record<string, (d: Date, ms: number) => string>> = {
      Y: (d) => String(d.getUTCFullYear()),
      m: (d) => pad(d.getUTCMonth() + 1),
      d: (d) => pad(d.getUTCDate()),
      e: (d) => String(d.getUTCDate()).padStart(2, ' '),
      H: (d) => pad(d.getUTCHours()),
      M: (d) => pad(d.getUTCMinutes()),
      S: (d) => pad(d.getUTCSeconds()),
      y: (d) => pad(d.getUTCFullYear() % 100),
      j: (d) => pad(Math.floor((d.getTime() - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1, 3),
      F: (d) => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`,
      T: (d) => `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`,
      z: () => '+0000',
      Z: () => 'UTC',
      s: (_d, ms) => String(Math.floor(ms / 1000)),
      '%': () => '%',
    };
    flush();
    if (spec === 'f') {
      const w = width || 9;
      parts.push((_d, ms) => frac(ms, w));
    } else if (spec === 'ES') {
      const w = width;
      parts.push((d, ms) => `${pad(d.getUTCSeconds())}.${frac(ms, w)}`);
    } else {
      const f = simple[spec];
      if (!f) throw new ConfigError(`START_TIME(${fmt}): the time conversion %${spec} is not supported by this proxy`);
      parts.push(f);
    }
  }
  flush();
  return (ms) => {
    const d = new Date(ms);
    let out = '';
    for (const p of parts) out += p(d, ms);
    return out;
  };
}

type Syntax = 'none' | 'required' | 'optional';

/** The command operators this proxy implements: syntax of the argument, whether `:N` is allowed, the provider. */
const OPERATORS: Readonly<Record<string, { arg: Syntax; length: boolean; make: (arg: string, length: number | undefined) => Provider }>> = {
  START_TIME: {
    arg: 'optional',
    length: false,
    make: (arg) => {
      if (arg === '') return (e) => new Date(e.startTime).toISOString();
      const f = compileTimeFormat(arg);
      return (e) => f(e.startTime);
    },
  },
  REQ: { arg: 'required', length: true, make: (arg, len) => headerProvider('REQ', arg, len, requestHeader, false) },
  RESP: { arg: 'required', length: true, make: (arg, len) => headerProvider('RESP', arg, len, responseHeader, false) },
  PROTOCOL: { arg: 'none', length: false, make: () => (e) => orNone(e.protocol) },
  RESPONSE_CODE: { arg: 'none', length: false, make: () => (e) => e.responseCode },
  RESPONSE_FLAGS: { arg: 'none', length: false, make: () => (e) => formatResponseFlags(e.responseFlags) },
  RESPONSE_CODE_DETAILS: { arg: 'none', length: false, make: () => (e) => orNone(e.responseCodeDetails) },
  CONNECTION_TERMINATION_DETAILS: { arg: 'none', length: false, make: () => (e) => orNone(e.connectionTerminationDetails) },
  UPSTREAM_TRANSPORT_FAILURE_REASON: { arg: 'none', length: false, make: () => (e) => orNone(e.upstreamTransportFailureReason) },
  BYTES_RECEIVED: { arg: 'none', length: false, make: () => (e) => e.bytesReceived },
  BYTES_SENT: { arg: 'none', length: false, make: () => (e) => e.bytesSent },
  DURATION: { arg: 'none', length: false, make: () => (e) => e.durationMs },
  UPSTREAM_HOST: { arg: 'none', length: false, make: () => (e) => orNone(e.upstreamHost) },
  UPSTREAM_REMOTE_ADDRESS: { arg: 'none', length: false, make: () => (e) => orNone(e.upstreamHost) },
  UPSTREAM_CLUSTER: { arg: 'none', length: false, make: () => (e) => orNone(e.upstreamCluster) },
  UPSTREAM_CLUSTER_RAW: { arg: 'none', length: false, make: () => (e) => orNone(e.upstreamCluster) },
  UPSTREAM_LOCAL_ADDRESS: { arg: 'none', length: false, make: () => (e) => orNone(e.upstreamLocalAddress) },
  DOWNSTREAM_LOCAL_ADDRESS: { arg: 'none', length: false, make: () => (e) => orNone(e.downstreamLocalAddress) },
  DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: { arg: 'none', length: false, make: () => (e) => withoutPort(e.downstreamLocalAddress) },
  DOWNSTREAM_REMOTE_ADDRESS: { arg: 'none', length: false, make: () => (e) => orNone(e.downstreamRemoteAddress) },
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: { arg: 'none', length: false, make: () => (e) => withoutPort(e.downstreamRemoteAddress) },
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS: { arg: 'none', length: false, make: () => (e) => orNone(e.downstreamRemoteAddress) },
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT: { arg: 'none', length: false, make: () => (e) => withoutPort(e.downstreamRemoteAddress) },
  REQUESTED_SERVER_NAME: { arg: 'none', length: false, make: () => (e) => orNone(e.requestedServerName) },
  ROUTE_NAME: { arg: 'none', length: false, make: () => (e) => orNone(e.routeName) },
  HOSTNAME: {
    arg: 'none',
    length: false,
    make: () => {
      const h = hostname();
      return () => h;
    },
  },
  ENVIRONMENT: {
    arg: 'required',
    length: true,
    make: (arg, len) => {
      const v = process.env[arg];
      const out = v === undefined ? undefined : len !== undefined ? v.slice(0, len) : v;
      return () => out;
    },
  },
};

/** The formatter extensions a SubstitutionFormatString can name (its `formatters`). */
export interface FormatterExtensions {
  /** envoy.formatter.req_without_query: %REQ_WITHOUT_QUERY(X?Y):N%, a header value without its query string. */
  reqWithoutQuery: boolean;
}

const NO_EXTENSIONS: FormatterExtensions = { reqWithoutQuery: false };

// SubstitutionFormatParser: %COMMAND(SUBCOMMAND):LENGTH%, COMMAND of A-Z 0-9 _, SUBCOMMAND without ')'.
const COMMAND = /^%([A-Z0-9_]+)(?:\((.*?)\))?(?::([0-9]+))?%/s;

type Piece = string | Provider;

/** Parses a format string into literal strings and providers, as SubstitutionFormatParser::parse does. */
function parseFormat(format: string, ext: FormatterExtensions): Piece[] {
  const pieces: Piece[] = [];
  let literal = '';
  for (let pos = 0; pos < format.length;) {
    if (format[pos] !== '%') {
      literal += format[pos];
      pos++;
      continue;
    }
    if (format[pos + 1] === '%') {
      literal += '%';
      pos += 2;
      continue;
    }
    if (literal) pieces.push(literal);
    literal = '';
    const m = COMMAND.exec(format.slice(pos));
    if (!m) throw new ConfigError(`Incorrect configuration: ${format}. Couldn't find valid command at position ${pos}`);
    const [whole, command = '', arg, lengthText] = m;
    const length = lengthText === undefined ? undefined : Number(lengthText);
    if (command === 'REQ_WITHOUT_QUERY' && ext.reqWithoutQuery) {
      if (arg === undefined || arg === '') throw new ConfigError(`${command} requires parameters`);
      pieces.push(headerProvider(command, arg, length, requestHeader, true));
    } else {
      const op = OPERATORS[command];
      if (!op) throw new ConfigError(`Not supported field in StreamInfo: ${command} (this proxy implements ${Object.keys(OPERATORS).join(', ')})`);
      if (op.arg === 'none' && arg !== undefined) throw new ConfigError(`${command} does not take any parameters or length`);
      if (op.arg === 'required' && (arg === undefined || arg === '')) throw new ConfigError(`${command} requires parameters`);
      if (!op.length && length !== undefined) throw new ConfigError(`${command} does not allow length to be specified.`);
      pieces.push(op.make(arg ?? '', length));
    }
    pos += whole.length;
  }
  if (literal || format === '') pieces.push(literal);
  return pieces;
}

export type LineFormatter = (e: AccessLogEntry) => string;

/** A text format (text_format / text_format_source): the line as Envoy's FormatterImpl prints it. */
export function compileTextFormat(format: string, o: { omitEmptyValues?: boolean; extensions?: FormatterExtensions } = {}): LineFormatter {
  const pieces = parseFormat(format, o.extensions ?? NO_EXTENSIONS);
  const empty = o.omitEmptyValues ? '' : '-';
  return (e) => {
    let out = '';
    for (const p of pieces) {
      if (typeof p === 'string') out += p;
      else {
        const v = p(e);
        out += v === undefined ? empty : v;
      }
    }
    return out;
  };
}

/** Envoy's std::string key order: by UTF-8 bytes. */
const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

/** A number as Envoy's JSON serializer writes a double. */
function jsonNumber(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null';
}

/**
 * A json_format (JsonFormatterImpl): the struct's raw parts serialized once, each template a piece filled per
 * line; the line ends with a newline.
 */
export function compileJsonFormat(
  format: { readonly [k: string]: JsonValue },
  o: { extensions?: FormatterExtensions; omitEmptyValues?: boolean } = {},
): LineFormatter {
  const ext = o.extensions ?? NO_EXTENSIONS;
  if (o.omitEmptyValues) return compileOmitEmptyJsonFormat(format, ext);
  const parts: (string | ((e: AccessLogEntry) => string))[] = [];
  let raw = '';
  const emit = (v: JsonValue): void => {
    if (v === null) raw += 'null';
    else if (typeof v === 'boolean') raw += v ? 'true' : 'false';
    else if (typeof v === 'number') raw += jsonNumber(v);
    else if (typeof v === 'string') {
      if (!v.includes('%')) {
        raw += JSON.stringify(v);
        return;
      }
      parts.push(raw);
      raw = '';
      const pieces = parseFormat(v, ext);
      const only = pieces.length === 1 ? pieces[0] : undefined;
      if (typeof only === 'function')
        parts.push((e) => {
          const x = only(e);
          return x === undefined ? 'null' : typeof x === 'number' ? jsonNumber(x) : JSON.stringify(x);
        });
      else
        parts.push((e) => {
          let s = '';
          for (const p of pieces) {
            if (typeof p === 'string') s += p;
            else {
              const x = p(e);
              s += x === undefined ? '-' : x;
            }
          }
          return JSON.stringify(s);
        });
    } else if (Array.isArray(v)) {
      raw += '[';
      v.forEach((x, i) => {
        if (i > 0) raw += ',';
        emit(x);
      });
      raw += ']';
    } else {
      raw += '{';
      Object.keys(v)
        .sort(byBytes)
        .forEach((k, i) => {
          if (i > 0) raw += ',';
          raw += `${JSON.stringify(k)}:`;
          emit(v[k] ?? null);
        });
      raw += '}';
    }
  };
  emit(format);
  parts.push(`${raw}\n`);
  return (e) => {
    let out = '';
    for (const p of parts) out += typeof p === 'string' ? p : p(e);
    return out;
  };
}

/** A value of OmitEmptyJsonFormatterImpl's tree: undefined when omitted from this line. */
type OmitNode = (e: AccessLogEntry) => string | undefined;

/**
 * json_format with omit_empty_values (OmitEmptyJsonFormatterImpl): literal nulls are dropped, a key whose single
 * operator has no value is left out, an object left without keys is left out of its parent (the root prints `{}`),
 * lists stay (without their omitted elements), and a template of several operators is a string with nothing for
 * each missing one.
 */
function compileOmitEmptyJsonFormat(format: { readonly [k: string]: JsonValue }, ext: FormatterExtensions): LineFormatter {
  const node = (v: JsonValue): OmitNode | undefined => {
    if (v === null) return undefined;
    if (typeof v === 'boolean' || typeof v === 'number') {
      const c = typeof v === 'number' ? jsonNumber(v) : String(v);
      return () => c;
    }
    if (typeof v === 'string') {
      if (!v.includes('%')) {
        const c = JSON.stringify(v);
        return () => c;
      }
      const pieces = parseFormat(v, ext);
      const only = pieces.length === 1 ? pieces[0] : undefined;
      if (typeof only === 'function')
        return (e) => {
          const x = only(e);
          return x === undefined ? undefined : typeof x === 'number' ? jsonNumber(x) : JSON.stringify(x);
        };
      return (e) => {
        let out = '';
        for (const p of pieces) out += typeof p === 'string' ? p : (p(e) ?? '');
        return JSON.stringify(out);
      };
    }
    if (Array.isArray(v)) {
      const items = v.map(node).filter((n): n is OmitNode => n !== undefined);
      return (e) => {
        const parts: string[] = [];
        for (const n of items) {
          const x = n(e);
          if (x !== undefined) parts.push(x);
        }
        return `[${parts.join(',')}]`;
      };
    }
    const fields = Object.keys(v)
      .sort(byBytes)
      .flatMap((k): [string, OmitNode][] => {
        const n = node(v[k] ?? null);
        return n ? [[`${JSON.stringify(k)}:`, n]] : [];
      });
    return (e) => {
      const parts: string[] = [];
      for (const [k, n] of fields) {
        const x = n(e);
        if (x !== undefined) parts.push(k + x);
      }
      return parts.length ? `{${parts.join(',')}}` : undefined;
    };
  };
  const root = node(format);
  return (e) => `${root?.(e) ?? '{}'}\n`;
}
