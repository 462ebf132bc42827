// envoy.config.core.v3.Http2ProtocolOptions, for both sides: an HCM's downstream HTTP/2 (settings this proxy
// advertises to clients) and a cluster's upstream HTTP/2 (settings it advertises to servers). Absent fields keep
// node's defaults, not Envoy's 256 MiB windows: a window is what a peer may send before this proxy reads, and
// node buffers it all in memory (Envoy's own edge guidance lowers them to 64 KiB and 1 MiB for the same reason).
import type { Settings } from 'node:http2';
import type { envoy } from '../../xds/envoy.ts';
import { fieldTable } from './fields.ts';
import { ConfigError } from './json.ts';

const NODE_LIMITS = "node's HTTP/2 stack enforces its own flood limits (the session is closed), not these counts";

const check = fieldTable('envoy.config.core.v3.Http2ProtocolOptions', {
  hpack_table_size: true,
  max_concurrent_streams: true,
  initial_stream_window_size: true,
  initial_connection_window_size: true,
  allow_connect: 'only false is accepted: extended CONNECT (RFC 8441) is not offered, true is NACKed',
  allow_metadata: 'only false is accepted: METADATA frames are an Envoy extension, true is NACKed',
  max_outbound_frames: NODE_LIMITS,
  max_outbound_control_frames: NODE_LIMITS,
  max_consecutive_inbound_frames_with_empty_payload: NODE_LIMITS,
  max_inbound_priority_frames_per_stream: NODE_LIMITS,
  max_inbound_window_update_frames_per_data_frame_sent: NODE_LIMITS,
  stream_error_on_invalid_http_messaging: 'an invalid message resets its stream or the session as node decides; the choice is not configurable',
  override_stream_error_on_invalid_http_message: 'an invalid message resets its stream or the session as node decides; the choice is not configurable',
  use_oghttp2_codec: "the codec is node's (nghttp2); the choice has no effect",
});

export interface Http2Settings {
  /** SETTINGS to advertise (node's Settings shape). */
  settings: Settings;
  /** The connection-level receive window, when configured (node: session.setLocalWindowSize). */
  connectionWindowSize: number | undefined;
}

/** Validates Http2ProtocolOptions and returns what to apply; `where` names it in errors. */
export function parseHttp2Options(o: envoy.config.core.v3.Http2ProtocolOptions, where: string): Http2Settings {
  check(o, where);
  if (o.allow_connect === true) throw new ConfigError(`${where}.allow_connect is not supported by this proxy`);
  if (o.allow_metadata === true) throw new ConfigError(`${where}.allow_metadata is not supported by this proxy`);
  const settings: Settings = {};
  // Envoy's validation ranges (base.proto), so a value Envoy refuses is refused here too.
  if (o.max_concurrent_streams !== undefined) {
    if (o.max_concurrent_streams < 1 || o.max_concurrent_streams > 2147483647)
      throw new ConfigError(`${where}.max_concurrent_streams must be in [1, 2147483647]`);
    settings.maxConcurrentStreams = o.max_concurrent_streams;
  }
  if (o.initial_stream_window_size !== undefined) {
    if (o.initial_stream_window_size < 65535 || o.initial_stream_window_size > 2147483647)
      throw new ConfigError(`${where}.initial_stream_window_size must be in [65535, 2147483647]`);
    settings.initialWindowSize = o.initial_stream_window_size;
  }
  if (o.initial_connection_window_size !== undefined && (o.initial_connection_window_size < 65535 || o.initial_connection_window_size > 2147483647))
    throw new ConfigError(`${where}.initial_connection_window_size must be in [65535, 2147483647]`);
  if (o.hpack_table_size !== undefined) settings.headerTableSize = o.hpack_table_size;
  return { settings, connectionWindowSize: o.initial_connection_window_size };
}
