// `registry serve`: the service. Every setting of src/config (README → Configuration) is a
// flag, named in kebab case (streamRingSize: --stream-ring-size).
import { createServer } from 'node:net';
import type { Command } from 'commander';
import { DEFAULTS, ENV_NAMES, loadConfig, NOT_FLAGS, type Config } from '../../config/config.js';
import { StartError } from '../../errors.js';

const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** What the flags of the most used settings mean; the others point at the README's table. */
const MEANING: Partial<Record<keyof Config, [string, string]>> = {
  genesis: ['file', 'the genesis record to serve; none: a development registry with fresh keys under --data-dir'],
  db: ['file', 'the SQLite database, or :memory: (default: <data-dir>/registry.db); its folder must exist'],
  host: ['address', `the address to listen on (default ${DEFAULTS.host})`],
  port: ['port', `the port to listen on; 0: any free port (default ${DEFAULTS.port})`],
  synchronous: ['mode', 'SQLite synchronous: FULL, NORMAL or EXTRA (default FULL)'],
  logLevel: ['level', 'fatal, error, warn, info, debug, trace or silent (default info)'],
  dataDir: ['folder', `where the database lives by default, and the development registry's genesis and keys (default ${DEFAULTS.dataDir})`],
  operatorTokenFile: [
    'file',
    `a file holding the operator token of POST /ops/freeze and /ops/thaw (or ${ENV_NAMES.operatorToken} in the environment; never a flag)`,
  ],
};

export function serveCommand(program: Command): void {
  const serve = program
    .command('serve')
    .summary('run the registry service')
    .description(
      'Serves the registry whose genesis record is --genesis, or a development registry with fresh keys. Settings come from ' +
        '--config, the environment and these flags (flags win); README → Configuration lists them all.',
    );
  for (const name of Object.keys(DEFAULTS) as (keyof Config)[]) {
    if (NOT_FLAGS.includes(name)) continue;
    const [value, meaning] = MEANING[name] ?? ['n', `${name} (environment ${ENV_NAMES[name]}; README → Configuration)`];
    serve.option(`--${kebab(name)} <${value}>`, meaning);
  }
  serve.option('--config <file>', 'a JSON config file (environment REGISTRY_CONFIG)').action(run);
}

/** Refuses a port that is taken before anything is created on disk (a database, development keys). */
async function checkPort(host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (e: NodeJS.ErrnoException) => reject(listenError(e, host, port)));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

/** Why the service cannot listen, and what to do. */
export function listenError(e: NodeJS.ErrnoException, host: string, port: number): Error {
  if (e.code === 'EADDRINUSE') return new StartError(`port ${port} is in use (--port to choose another)`);
  if (e.code === 'EACCES') return new StartError(`port ${port} needs privileges (EACCES): choose one above 1023 with --port`);
  if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN')
    return new StartError(`cannot listen on ${host} (${e.code}): --host must be an address of this machine`);
  return e;
}

async function run(flags: Record<string, string | undefined>): Promise<void> {
  const config = loadConfig(flags);
  if (config.port !== 0) await checkPort(config.host, config.port);
  // Loaded here so that the signing commands start without the server's modules.
  const [{ createLogger }, { checkDbFolder, startRegistry }, { ensureDevGenesis, devBanner }] = await Promise.all([
    import('../../obs/logger.js'),
    import('../../server.js'),
    import('../dev-registry.js'),
  ]);
  // Before the development registry writes its genesis and keys.
  checkDbFolder(config);
  const logger = createLogger(config.logLevel);
  const dev = config.genesis === undefined;
  let registry;
  try {
    registry = await startRegistry({ ...config, genesis: config.genesis ?? ensureDevGenesis(config.dataDir, logger) }, logger);
  } catch (e) {
    // Taken between the check and the start.
    throw (e as NodeJS.ErrnoException).code ? listenError(e as NodeJS.ErrnoException, config.host, config.port) : e;
  }
  process.stdout.write(`listening on ${registry.url}\n`);
  if (dev) process.stdout.write(devBanner(registry.url, config.dataDir));
  const { default: closeWithGrace } = await import('close-with-grace');
  const running = registry;
  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'shutting down after an error');
    else logger.info({ signal }, 'shutting down');
    await running.close();
  });
}
