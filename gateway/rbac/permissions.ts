// config.rbac.v3.Permission: what a request does (Envoy Matcher::create for a Permission, matchers.cc).
import { unpackAny, type envoy } from '../../xds/envoy.ts';
import { fieldTable } from '../xds/fields.ts';
import { anyType, ConfigError } from '../xds/json.ts';
import { wireString } from '../../xds/header-bytes.ts';
import { compileStringMatcher } from '../router/matchers.ts';
import { compileMetadataMatcher } from '../router/metadata-matcher.ts';
import { all, always, any, compileList, headerMatcher, ipMatcher, refuse, urlPathMatcher } from './matchers.ts';
import { exactlyOne } from './oneof.ts';
import { destinationAddress, pathWithoutQuery, type RbacMatcher } from './request.ts';
import { compileUriTemplate } from './uri-template.ts';

const checkPermission = fieldTable('envoy.config.rbac.v3.Permission', {
  and_rules: true,
  or_rules: true,
  any: true,
  header: true,
  url_path: true,
  destination_ip: true,
  destination_port: true,
  destination_port_range: true,
  metadata: true,
  not_rule: true,
  requested_server_name: true,
  uri_template: true,
});
const checkSet = fieldTable('envoy.config.rbac.v3.Permission.Set', { rules: true });
const checkInt32Range = fieldTable('envoy.type.v3.Int32Range', { start: true, end: true });
const checkUriTemplate = fieldTable('envoy.config.core.v3.TypedExtensionConfig', { name: true, typed_config: true }, 'RBAC Permission.uri_template');
const checkUriTemplateConfig = fieldTable('envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig', { path_template: true });

const URI_TEMPLATE = 'envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig';

function set(s: envoy.config.rbac.v3.Permission.Set | undefined, where: string): RbacMatcher[] {
  const v = s ?? {};
  checkSet(v, where);
  return compileList(v.rules, `${where}.rules`, compilePermission);
}

/** destination_port_range (Envoy PortRangeMatcher): start <= port < end, both in [0, 65536], start < end. */
function portRange(r: envoy.type.v3.Int32Range | undefined, where: string): RbacMatcher {
  const v = r ?? {};
  checkInt32Range(v, where);
  const start = v.start ?? 0;
  const end = v.end ?? 0;
  if (start < 0 || start > 65536) throw new ConfigError(`${where}: range start ${start} is out of bounds`);
  if (end < 0 || end > 65536) throw new ConfigError(`${where}: range end ${end} is out of bounds`);
  if (start >= end) throw new ConfigError(`${where}: range start ${start} cannot be greater or equal than range end ${end}`);
  return (req) => start <= req.destinationPort && req.destinationPort < end;
}

/** uri_template: a TypedExtensionConfig holding a UriTemplateMatchConfig, matched against the path without query. */
function uriTemplate(t: envoy.config.core.v3.TypedExtensionConfig | undefined, where: string): RbacMatcher {
  const v = t ?? {};
  checkUriTemplate(v, where);
  const cfg = v.typed_config;
  if (cfg === undefined || anyType(cfg) !== URI_TEMPLATE)
    throw new ConfigError(`${where}.typed_config: only ${URI_TEMPLATE} is supported, not '${cfg === undefined ? 'none' : anyType(cfg)}'`);
  const u = unpackAny(cfg, `type.googleapis.com/${URI_TEMPLATE}`);
  checkUriTemplateConfig(u, `${where}.typed_config`);
  const template = u.path_template ?? '';
  if (template.length < 1 || template.length > 256) throw new ConfigError(`${where}.typed_config.path_template: must be 1 to 256 characters long`);
  const m = compileUriTemplate(template, `${where}.typed_config.path_template`);
  return (req) => m(pathWithoutQuery(req.path));
}

/** config.rbac.v3.Permission -> its matcher. Kinds this proxy cannot enforce are ConfigErrors. */
export function compilePermission(p: envoy.config.rbac.v3.Permission, where: string): RbacMatcher {
  refuse(p, 'matcher', where, 'RBAC matcher extensions are not supported by this proxy');
  checkPermission(p, where);
  const kind = exactlyOne(p, where, 'a permission');
  const w = `${where}.${kind}`;
  switch (kind) {
    case 'and_rules':
      return all(set(p.and_rules, w));
    case 'or_rules':
      return any(set(p.or_rules, w));
    case 'any':
      return always(p.any, w);
    case 'header':
      return headerMatcher(p.header ?? {}, w);
    case 'url_path':
      return urlPathMatcher(p.url_path ?? {}, w);
    case 'destination_ip':
      return ipMatcher(p.destination_ip ?? {}, w, destinationAddress);
    case 'destination_port': {
      const port = p.destination_port ?? 0;
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`${w}: ${port} is not a port (0-65535)`);
      return (req) => req.destinationPort === port;
    }
    case 'destination_port_range':
      return portRange(p.destination_port_range, w);
    case 'metadata':
      return compileMetadataMatcher(p.metadata ?? {}, w);
    case 'not_rule': {
      const m = compilePermission(p.not_rule ?? {}, w);
      return (req) => !m(req);
    }
    case 'requested_server_name': {
      // Envoy matches connection.requestedServerName(): '' without SNI.
      const sm = compileStringMatcher(p.requested_server_name ?? {}, w);
      return (req) => sm(wireString(req.sni ?? ''));
    }
    case 'uri_template':
      return uriTemplate(p.uri_template, w);
    default:
      throw new ConfigError(`${w}: not supported by this proxy`);
  }
}
