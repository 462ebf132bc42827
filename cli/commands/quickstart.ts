// `meshgate quickstart`: the README's first command. Starts the demo backend (httpbin on 127.0.0.1:8000)
// and `meshgate local` on examples/quickstart, then prints the curl to try.
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createLogger } from '../logger.ts';
import { httpbinHandler } from './httpbin.ts';
import { parseLocalArgs, runUntilSignal, startLocal } from './local.ts';
import { StartupError } from '../usage-error.ts';

export const summary = 'start a demo httpbin and `meshgate local` on examples/quickstart, and print a curl to try';
export const usage = `usage: meshgate quickstart [--config DIR] [local flags]

Runs httpbin on 127.0.0.1:8000 and 'meshgate local --config examples/quickstart' (the Istio
"Ingress Gateways" task: Gateway httpbin-gateway + VirtualService httpbin), then prints:

  curl -i -H "Host: httpbin.example.com" http://127.0.0.1:8080/status/200

Any 'meshgate local' flag is accepted. Stop with Ctrl-C.
`;

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, strict: false, options: { config: { type: 'string' } } });
  const config = typeof values.config === 'string' ? values.config : fileURLToPath(new URL('../../examples/quickstart/', import.meta.url));
  const rest = argv.filter((a, i) => a !== '--config' && argv[i - 1] !== '--config' && !a.startsWith('--config='));
  const o = parseLocalArgs(['--config', config, ...rest]);
  const log = createLogger();
  const handler = httpbinHandler('httpbin-1');
  const backend = createServer((req, res) => void handler(req, res).catch(() => res.destroy()));
  await new Promise<void>((resolve, reject) => {
    backend.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new StartupError('127.0.0.1:8000 is in use: the quick start runs its demo httpbin there; stop whatever holds it (another quick start?)')
          : err,
      ),
    );
    backend.listen(8000, '127.0.0.1', resolve);
  });
  const local = await startLocal(o, log);
  process.stdout.write(
    `\nmeshgate is serving the Istio ingress task from ${config}\n\n` +
      `  curl -i -H "Host: httpbin.example.com" http://127.0.0.1:8080/status/200   # 200 from httpbin\n` +
      `  curl -i -H "Host: httpbin.example.com" http://127.0.0.1:8080/headers      # 404: no route\n` +
      `  curl -s http://127.0.0.1:${o.adminPort}/listeners                           # Envoy admin\n\n` +
      `Edit the files in ${config} and the change is live within a second. Ctrl-C stops.\n\n`,
  );
  await runUntilSignal(local, log);
  backend.close();
  backend.closeAllConnections();
}
