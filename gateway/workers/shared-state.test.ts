// State shared by the workers: outlier detection (a leader detector on the main thread and a follower in a
// worker over one SharedCounters table), circuit-breaker resources, and the table itself updated from a real
// second thread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { StatScope, StatsStore } from '../stats/store.ts';
import { Host } from '../upstream/host.ts';
import { OutlierDetector, parseOutlierDetection, type EjectionType } from '../upstream/outlier-detector.ts';
import { CX, PENDING, RQ, ResourceManager } from '../upstream/resource-manager.ts';
import { ISTIO_OUTLIER_DETECTION as ISTIO } from '../test/fixtures.ts';
import { SharedCounters } from './shared-counters.ts';

function pair() {
  const counters = new SharedCounters(1024);
  const reports: [string, string, EjectionType][] = [];
  const ejections: [string, boolean][] = [];
  let now = 0;
  const leaderStore = new StatsStore();
  const followerStore = new StatsStore();
  const ref: { follower?: OutlierDetector } = {};
  const leader = new OutlierDetector(parseOutlierDetection(ISTIO, 'od'), leaderStore, new StatScope(leaderStore, 'cluster.c.'), {
    now: () => now,
    timers: false,
    cluster: 'c',
    sharing: {
      counters,
      leader: true,
      report: () => assert.fail('the leader never reports'),
      onEjection: (_c, h, e) => (ejections.push([h, e]), ref.follower?.setEjected(h, e)),
    },
  });
  // The follower's reports reach the leader as the worker pool delivers them (here: at once).
  const follower = new OutlierDetector(parseOutlierDetection(ISTIO, 'od'), followerStore, new StatScope(followerStore, 'cluster.c.'), {
    now: () => now,
    timers: false,
    cluster: 'c',
    sharing: {
      counters,
      leader: false,
      report: (c, h, t) => (reports.push([c, h, t]), leader.onReport(h, t)),
      onEjection: () => assert.fail('a follower never ejects'),
    },
  });
  ref.follower = follower;
  // Each thread has its own Host objects for the same endpoints.
  const lh = [new Host('10.0.0.1', 80), new Host('10.0.0.2', 80)];
  const fh = [new Host('10.0.0.1', 80), new Host('10.0.0.2', 80)];
  leader.setHosts(lh);
  follower.setHosts(fh);
  const ejectedTotal = (): number => leaderStore.values[leaderStore.counter('cluster.c.outlier_detection.ejections_enforced_total')] ?? 0;
  return { leader, follower, lh, fh, reports, ejections, ejectedTotal, advance: (ms: number) => (now += ms), counters, followerStore };
}

test('one streak across workers: 5xx on either thread count together, the follower reports, the leader ejects everywhere', () => {
  const p = pair();
  p.leader.putHttpResponseCode(p.lh[0]!, 500);
  p.follower.putHttpResponseCode(p.fh[0]!, 502);
  assert.equal(p.lh[0]!.outlierEjected, false);
  p.follower.putHttpResponseCode(p.fh[0]!, 503);
  assert.deepEqual(p.reports, [['c', '10.0.0.1:80', 'consecutive_5xx']]);
  assert.deepEqual(p.ejections, [['10.0.0.1:80', true]]);
  assert.equal(p.lh[0]!.outlierEjected, true);
  assert.equal(p.fh[0]!.outlierEjected, true);
  assert.equal(p.lh[1]!.outlierEjected || p.fh[1]!.outlierEjected, false);
  assert.equal(p.ejectedTotal(), 1);
  // Ejection stats are the leader's alone.
  assert.equal(p.followerStore.values[p.followerStore.counter('cluster.c.outlier_detection.ejections_enforced_total')], 0);
  // The leader's interval timer returns the host on every thread.
  p.advance(10_000);
  p.leader.onIntervalTimer();
  assert.deepEqual(p.ejections, [
    ['10.0.0.1:80', true],
    ['10.0.0.1:80', false],
  ]);
  assert.equal(p.fh[0]!.outlierEjected, false);
});

test('a success on one worker ends the streak another worker started', () => {
  const p = pair();
  p.follower.putHttpResponseCode(p.fh[1]!, 500);
  p.follower.putHttpResponseCode(p.fh[1]!, 500);
  p.leader.putHttpResponseCode(p.lh[1]!, 200);
  p.follower.putHttpResponseCode(p.fh[1]!, 500);
  p.follower.putHttpResponseCode(p.fh[1]!, 500);
  assert.equal(p.lh[1]!.outlierEjected, false);
  assert.deepEqual(p.reports, []);
  p.leader.putHttpResponseCode(p.lh[1]!, 504);
  assert.equal(p.fh[1]!.outlierEjected, true);
});

test('a worker that gets the host after the ejection starts with it ejected', () => {
  const p = pair();
  for (let i = 0; i < 3; i++) p.leader.putHttpResponseCode(p.lh[0]!, 500);
  assert.equal(p.lh[0]!.outlierEjected, true);
  const store = new StatsStore();
  const late = new OutlierDetector(parseOutlierDetection(ISTIO, 'od'), store, new StatScope(store, 'cluster.c.'), {
    timers: false,
    cluster: 'c',
    sharing: { counters: p.counters, leader: false, report: () => undefined, onEjection: () => undefined },
  });
  const hosts = [new Host('10.0.0.1', 80), new Host('10.0.0.2', 80)];
  late.setHosts(hosts);
  assert.deepEqual(
    hosts.map((h) => h.outlierEjected),
    [true, false],
  );
});

test('shared counters: two threads claim the same keys and their additions all land', async () => {
  const counters = new SharedCounters(256);
  const url = new URL('./shared-counters.ts', import.meta.url).href;
  const code = `
    const { workerData, parentPort } = require('node:worker_threads');
    import(${JSON.stringify(url)}).then(({ SharedCounters }) => {
      const c = new SharedCounters(workerData);
      for (let i = 0; i < 20000; i++) c.add(c.slot('k' + (i % 50)), i % 4, 1);
      parentPort.postMessage('done');
    });`;
  const w = new Worker(code, { eval: true, workerData: counters.buffer });
  for (let i = 0; i < 20000; i++) counters.add(counters.slot('k' + (i % 50)), i % 4, 1);
  await new Promise((resolve, reject) => (w.once('message', resolve), w.once('error', reject)));
  await w.terminate();
  let total = 0;
  const slots = new Set<number>();
  for (let k = 0; k < 50; k++) {
    const s = counters.slot('k' + k);
    slots.add(s);
    for (let f = 0; f < 4; f++) total += counters.load(s, f);
  }
  assert.equal(slots.size, 50, 'every key has its own slot');
  assert.equal(total, 40000);
});

test('shared counters: a full table answers -1', () => {
  const c = new SharedCounters(4);
  const slots = ['a', 'b', 'c', 'd'].map((k) => c.slot(k));
  assert.deepEqual([...slots].sort(), [0, 1, 2, 3]);
  assert.equal(new SharedCounters(c.buffer).full, false);
  assert.equal(c.slot('e'), -1);
  assert.equal(c.slot('a'), slots[0]);
  // Every thread's view says so (the main thread logs it).
  assert.equal(new SharedCounters(c.buffer).full, true);
});

test('circuit-breaker resources are counted for the cluster across workers, each worker also knowing its own', () => {
  const counters = new SharedCounters(64);
  const a = new ResourceManager('outbound|80||a', counters);
  const b = new ResourceManager('outbound|80||a', counters);
  const other = new ResourceManager('outbound|80||b', counters);
  a.inc(RQ);
  b.inc(RQ);
  b.inc(PENDING);
  a.inc(CX);
  assert.deepEqual([a.total(RQ), b.total(RQ), a.total(PENDING), b.total(CX)], [2, 2, 1, 1]);
  assert.deepEqual([a.local(RQ), b.local(RQ), b.local(CX)], [1, 1, 0]);
  assert.equal(other.total(RQ), 0);
  a.dec(RQ);
  b.dec(PENDING);
  assert.deepEqual([b.total(RQ), a.total(PENDING)], [1, 0]);
  // One worker: its own counts are the totals.
  const solo = new ResourceManager('outbound|80||a');
  solo.inc(RQ);
  assert.equal(solo.total(RQ), 1);
});

test('a cluster modified while a host is ejected: the main thread starts afresh and the workers follow', () => {
  const p = pair();
  for (let i = 0; i < 3; i++) p.leader.putHttpResponseCode(p.lh[0]!, 500);
  assert.equal(p.fh[0]!.outlierEjected, true);
  // CDS modifies the cluster: the workers build new detectors first (their hosts start ejected, as the
  // shared state says), then the main thread does, with no ejection, and tells them.
  const store = new StatsStore();
  const ejections: [string, boolean][] = [];
  const follower = new OutlierDetector(parseOutlierDetection(ISTIO, 'od'), store, new StatScope(store, 'cluster.c.'), {
    timers: false,
    cluster: 'c',
    sharing: { counters: p.counters, leader: false, report: () => undefined, onEjection: () => undefined },
  });
  const fh = [new Host('10.0.0.1', 80)];
  follower.setHosts(fh);
  assert.equal(fh[0]!.outlierEjected, true);
  const leader = new OutlierDetector(parseOutlierDetection(ISTIO, 'od'), store, new StatScope(store, 'cluster.c.'), {
    timers: false,
    cluster: 'c',
    sharing: { counters: p.counters, leader: true, report: () => undefined, onEjection: (_c, h, e) => (ejections.push([h, e]), follower.setEjected(h, e)) },
  });
  p.leader.close();
  leader.setHosts([new Host('10.0.0.1', 80)]);
  assert.deepEqual(ejections, [['10.0.0.1:80', false]]);
  assert.equal(fh[0]!.outlierEjected, false);
});
