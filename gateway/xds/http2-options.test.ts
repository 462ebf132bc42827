import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHttp2Options } from './http2-options.ts';

test('Http2ProtocolOptions: stream limit, windows and HPACK table become SETTINGS; absent fields keep node defaults', () => {
  assert.deepEqual(parseHttp2Options({}, 'h2'), { settings: {}, connectionWindowSize: undefined });
  assert.deepEqual(
    parseHttp2Options(
      { max_concurrent_streams: 100, initial_stream_window_size: 65536, initial_connection_window_size: 1048576, hpack_table_size: 8192 },
      'h2',
    ),
    { settings: { maxConcurrentStreams: 100, initialWindowSize: 65536, headerTableSize: 8192 }, connectionWindowSize: 1048576 },
  );
  // Flood limits and codec choices are accepted without effect.
  assert.deepEqual(parseHttp2Options({ max_outbound_frames: 10000, use_oghttp2_codec: true }, 'h2').settings, {});
});

test("Http2ProtocolOptions: Envoy's ranges, extended CONNECT, METADATA and unsupported fields are NACKed by name", () => {
  assert.throws(() => parseHttp2Options({ max_concurrent_streams: 0 }, 'h2'), /h2\.max_concurrent_streams must be in \[1, 2147483647\]/);
  assert.throws(() => parseHttp2Options({ initial_stream_window_size: 1000 }, 'h2'), /h2\.initial_stream_window_size must be in/);
  assert.throws(() => parseHttp2Options({ initial_connection_window_size: 1000 }, 'h2'), /h2\.initial_connection_window_size must be in/);
  assert.throws(() => parseHttp2Options({ allow_connect: true }, 'h2'), /h2\.allow_connect is not supported/);
  assert.throws(() => parseHttp2Options({ allow_metadata: true }, 'h2'), /h2\.allow_metadata is not supported/);
  assert.throws(() => parseHttp2Options({ connection_keepalive: { interval: '10s' } }, 'h2'), /connection_keepalive/);
});
