// The active stream running its HTTP filter chain (filter.ts), with filters written for the test and routes that
// answer directly (no upstream): the order filters run in, stopping and resuming (asynchronously, and synchronously
// from inside decodeHeaders), a local reply ending the chain, encodeHeaders last filter first on that reply,
// onDestroy once per filter made, and clearRouteCache choosing the route again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { ActiveStream, type RequestInfo } from './active-stream.ts';
import { HttpConnectionManager } from './connection-manager.ts';
import type { Downstream } from './downstream.ts';
import type { FilterCallbacks, HttpFilterFactory, StreamFilter } from './filter.ts';
import { parseHcm } from './hcm-config.ts';
import { compileRouteConfig } from '../router/route-config.ts';
import { StatsStore } from '../stats/store.ts';
import { ClusterManager } from '../upstream/cluster-manager.ts';
import { silentLogger } from '../../cli/logger.ts';
import { fileAccessLogSinks } from '../access-log/text-format.ts';

const direct = (prefix: string, body: string): Record<string, unknown> => ({
  match: { prefix },
  direct_response: { status: 200, body: { inline_string: body } },
});

function connectionManager(): HttpConnectionManager {
  const spec = parseHcm(
    {
      stat_prefix: 'test',
      rds: { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: 'r' },
      http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
    },
    'hcm',
  );
  const store = new StatsStore();
  const routes = {
    name: 'r',
    current: compileRouteConfig({ name: 'r', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [direct('/a', 'A'), direct('/b', 'B')] }] }),
  };
  const log = silentLogger();
  return new HttpConnectionManager(
    spec,
    routes,
    { store, clusters: new ClusterManager(store, log), log, accessLog: undefined, accessLogSinks: fileAccessLogSinks(), localAddress: '127.0.0.1' },
    1 << 20,
  );
}

interface Reply {
  status: number;
  headers: string[];
  body: string;
}

function fakeDownstream(): { down: Downstream; reply: Promise<Reply> } {
  let done!: (r: Reply) => void;
  const reply = new Promise<Reply>((r) => (done = r));
  let status = 0;
  let headers: string[] = [];
  let body = '';
  const down: Downstream = {
    headersSent: false,
    writeHead(s, h) {
      status = s;
      headers = h;
    },
    writeContinue() {},
    write(c) {
      body += String(c);
      return true;
    },
    end(c) {
      if (c !== undefined) body += String(c);
      done({ status, headers, body });
    },
    reset() {
      done({ status: -1, headers: [], body: '' });
    },
    onDrain() {},
    takeSocket() {
      throw new Error('no upgrades here');
    },
  };
  return { down, reply };
}

function run(hcm: HttpConnectionManager, path: string): Promise<Reply> {
  const info: RequestInfo = {
    method: 'GET',
    url: path,
    authority: undefined,
    reject: undefined,
    httpMinor: 1,
    rawHeaders: ['host', 'a.test'],
    remoteAddress: '127.0.0.1',
    remotePort: 40000,
    localAddress: '127.0.0.1',
    localPort: 8080,
    body: Readable.from([]),
    complete: () => true,
  };
  const { down, reply } = fakeDownstream();
  new ActiveStream(hcm, info, down).start();
  return reply;
}

/** A filter that logs what happens to it and does what `decode` says. */
function recording(name: string, log: string[], decode: (cb: FilterCallbacks) => 'continue' | 'stop' = () => 'continue'): HttpFilterFactory {
  return {
    name,
    createFilter(): StreamFilter {
      log.push(`${name}:create`);
      return {
        decodeHeaders(cb) {
          log.push(`${name}:decode`);
          return decode(cb);
        },
        encodeHeaders(status, headers) {
          log.push(`${name}:encode ${status}`);
          headers.push(`x-${name}`, 'seen');
        },
        onDestroy() {
          log.push(`${name}:destroy`);
        },
      };
    },
  };
}

const withFilters = (filters: HttpFilterFactory[]): HttpConnectionManager => {
  const hcm = connectionManager();
  (hcm as { filters: HttpFilterFactory[] }).filters = filters;
  return hcm;
};

test('filters run in order, one stopping and resuming later; the router answers; encoders run last filter first', async () => {
  const log: string[] = [];
  const hcm = withFilters([
    recording('one', log, (cb) => {
      setTimeout(() => cb.continueDecoding(), 5);
      return 'stop';
    }),
    recording('two', log),
  ]);
  const r = await run(hcm, '/a');
  assert.equal(r.status, 200);
  assert.equal(r.body, 'A');
  assert.deepEqual(log.slice(0, 6), ['one:create', 'one:decode', 'two:create', 'two:decode', 'two:encode 200', 'one:encode 200']);
  assert.deepEqual(log.slice(6).sort(), ['one:destroy', 'two:destroy']);
  assert.ok(r.headers.includes('x-one') && r.headers.includes('x-two'), 'both encoders added their header to the local reply');
});

test('continueDecoding called from inside decodeHeaders (an answer that came at once) does not stall the chain', async () => {
  const log: string[] = [];
  const hcm = withFilters([
    recording('sync', log, (cb) => {
      cb.continueDecoding();
      return 'stop';
    }),
    recording('next', log),
  ]);
  const r = await run(hcm, '/b');
  assert.equal(r.body, 'B');
  assert.ok(log.includes('next:decode'));
});

test('a local reply ends the chain: later filters are never made, the ones made encode it and are destroyed once', async () => {
  const log: string[] = [];
  const hcm = withFilters([
    recording('first', log),
    recording('deny', log, (cb) => {
      cb.sendLocalReply({ status: 403, body: 'no', details: 'test_denied' });
      return 'stop';
    }),
    recording('never', log),
  ]);
  const r = await run(hcm, '/a');
  assert.equal(r.status, 403);
  assert.equal(r.body, 'no');
  assert.ok(!log.some((l) => l.startsWith('never')), 'the filter after the reply was never made');
  assert.deepEqual(
    log.filter((l) => l.includes('encode')),
    ['deny:encode 403', 'first:encode 403'],
  );
  assert.equal(log.filter((l) => l === 'first:destroy').length, 1);
  assert.equal(log.filter((l) => l === 'deny:destroy').length, 1);
});

test('clearRouteCache: a filter that changes the path makes the route be chosen again', async () => {
  const log: string[] = [];
  const hcm = withFilters([
    recording('rewrite', log, (cb) => {
      assert.equal(cb.route()?.directBody, 'A', 'the route was resolved before the filters');
      cb.path = '/b';
      cb.clearRouteCache();
      return 'continue';
    }),
  ]);
  const r = await run(hcm, '/a');
  assert.equal(r.body, 'B');
});
