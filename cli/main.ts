#!/usr/bin/env node
// meshgate CLI entry: `meshgate <command> [flags]`. Each command lives in cli/commands/<command>.ts and
// exports `summary`, `usage` and `run(argv)`.
import { readFileSync } from 'node:fs';

interface Command {
  summary: string;
  usage: string;
  run(argv: string[]): Promise<void>;
}

const COMMANDS: Record<string, () => Promise<Command>> = {
  local: () => import('./commands/local.ts'),
  controller: () => import('./commands/controller.ts'),
  proxy: () => import('./commands/proxy.ts'),
  httpbin: () => import('./commands/httpbin.ts'),
  quickstart: () => import('./commands/quickstart.ts'),
  validate: () => import('./commands/validate.ts'),
  explain: () => import('./commands/explain.ts'),
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === 'version') {
    process.stdout.write(`meshgate ${version()}\n`);
    return;
  }
  const load = name ? COMMANDS[name] : undefined;
  if (!load) {
    const lines = await Promise.all(Object.entries(COMMANDS).map(async ([n, l]) => `  ${n.padEnd(12)}${(await l()).summary}`));
    const out = `usage: meshgate <command> [flags]\n\ncommands:\n${lines.join('\n')}\n  version     print the version\n\nRun 'meshgate <command> --help' for the flags of a command.\n`;
    if (name && name !== '--help' && name !== '-h' && name !== 'help') {
      process.stderr.write(`meshgate: unknown command '${name}'\n\n${out}`);
      process.exitCode = 2;
    } else process.stdout.write(out);
    return;
  }
  const cmd = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(cmd.usage);
    return;
  }
  await cmd.run(rest);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const e = err as { code?: string; message?: string };
  // Flag errors from node:util parseArgs are the user's to fix: say so without a stack trace.
  if (e.code?.startsWith('ERR_PARSE_ARGS') || e.code === 'MESHGATE_USAGE') {
    process.stderr.write(`meshgate: ${e.message ?? String(err)}\nRun 'meshgate ${process.argv[2] ?? ''} --help' for usage.\n`);
    process.exitCode = 2;
    return;
  }
  if (e.code === 'MESHGATE_STARTUP') {
    process.stderr.write(`meshgate: ${e.message ?? String(err)}\n`);
    process.exitCode = 1;
    return;
  }
  process.stderr.write(`meshgate: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
