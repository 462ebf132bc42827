// Config files that break while `meshgate local` runs (issue 11, item 12): a file saved as malformed YAML,
// a file truncated mid-save, a FIFO named *.yaml. Traffic keeps following the last good config, the fix
// applies once the file is valid again, and SIGTERM still exits cleanly.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { eventually, freePort } from '../lib/process.ts';
import { get } from '../lib/http.ts';
import { startBackend, type Backend } from '../lib/backend.ts';
import { gatewayYaml, serviceYaml, startGateway, virtualServiceYaml, type Gateway } from '../lib/gateway.ts';

const HOST = 'files.example.com';

const vs = (dest: string): string => virtualServiceYaml('files', HOST, 'files-gateway', dest);

describe('config files that break while the gateway runs', () => {
  let gw: Gateway;
  const backends: Backend[] = [];
  const backendOf = async (): Promise<string | undefined> => {
    const r = await get('127.0.0.1', gw.port, '/', HOST);
    return r.status === 200 ? r.header('x-backend') : `status ${r.status}`;
  };
  /** Requests over a second or more (several rescans of the directory) all reach `name`. */
  const keepsReaching = async (name: string): Promise<void> => {
    for (let i = 0; i < 12; i++) {
      assert.equal(await backendOf(), name, `request ${i}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  before(async () => {
    const bport = await freePort();
    backends.push(await startBackend('127.0.41.1', bport, 'one'), await startBackend('127.0.41.2', bport, 'two'));
    gw = await startGateway();
    gw.write('10-gateway.yaml', gatewayYaml('files-gateway', [HOST]));
    gw.write('20-services.yaml', `${serviceYaml('one', bport, [{ ip: '127.0.41.1' }])}---\n${serviceYaml('two', bport, [{ ip: '127.0.41.2' }])}`);
    gw.write('30-vs.yaml', vs('one'));
    await eventually('routed to one', async () => ((await backendOf()) === 'one' ? true : undefined), 15_000, 100);
  });

  after(async () => {
    await gw?.stop();
    for (const b of backends) await b.close();
  });

  test('a VirtualService file saved as malformed YAML keeps serving its last good version, logged with line and column', async () => {
    // Half of an edit that would route to `two`: the document ends inside a flow mapping.
    gw.write('30-vs.yaml', vs('two').replace('{host: two}', '{host: two'));
    await gw.proc.waitForOutput(
      /30-vs\.yaml[^\n]*malformed YAML \(line \d+, column \d+\)[^\n]*the file is not applied and its last good version \(1 objects\) stays in effect/,
      10_000,
    );
    await keepsReaching('one');
  });

  test('a file truncated to empty keeps serving its last good version until the new content arrives, which applies', async () => {
    gw.write('30-vs.yaml', '');
    await gw.proc.waitForOutput(/30-vs\.yaml[^\n]*file is empty \(a save in progress\?\)/, 10_000);
    await keepsReaching('one');
    gw.write('30-vs.yaml', vs('two'));
    await eventually('routed to two', async () => ((await backendOf()) === 'two' ? true : undefined), 10_000, 100);
  });

  test('a FIFO named *.yaml is skipped with one log line; later edits apply and SIGTERM exits 0', async () => {
    execFileSync('mkfifo', [join(gw.dir, '40-pipe.yaml')]);
    await gw.proc.waitForOutput(/40-pipe\.yaml is a FIFO, not a regular file: skipped/, 10_000);
    gw.write('30-vs.yaml', vs('one'));
    await eventually('routed to one again', async () => ((await backendOf()) === 'one' ? true : undefined), 10_000, 100);
    assert.equal(gw.proc.output().match(/40-pipe\.yaml is a FIFO/g)?.length, 1);
    assert.equal(await gw.proc.stop('SIGTERM', 15_000), 0);
  });
});
