// Starts `registry serve` as a user would, on a genesis of the given signers (threshold 1,
// signed by the first), in `dir`, and resolves with the child and its URL once it prints its
// "listening on" line. Shared by the benchmarks that measure a separate server process.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { signApproval } from '../../dist/core/crypto.js';
import { formatTime, hashOf } from '../../dist/core/encoding.js';
import { assembleGenesis, buildGenesisPayload } from '../../dist/core/records.js';

/** Writes the genesis of `keys` (threshold 1, signed by the first) to `dir/genesis.json`; returns its path. */
export function writeGenesis(dir, registryId, keys) {
  const payload = buildGenesisPayload(
    registryId,
    { threshold: 1, signers: keys.map((k) => ({ id: k.id, public_key: k.publicKey })) },
    formatTime(Date.now()),
  );
  const genesis = assembleGenesis(payload, [{ signer_id: keys[0].id, sig: signApproval(keys[0].secretKey, hashOf(payload)) }]);
  const file = join(dir, 'genesis.json');
  writeFileSync(file, JSON.stringify(genesis));
  return file;
}

/**
 * `keys`: [{id, publicKey, secretKey}], the first signs the genesis; `args`: more serve flags.
 * `options.genesis`: the path of an existing genesis record to serve instead of writing a new one
 * (every instance of a cluster must serve the same); `options.store`: a `--store` URL (e.g.
 * postgres://…) instead of the SQLite file `dir/registry.db`.
 */
export function serveRegistry(dir, registryId, keys, args = [], options = {}) {
  const genesis = options.genesis ?? writeGenesis(dir, registryId, keys);
  const child = spawn(
    process.execPath,
    [
      'dist/cli/main.js',
      'serve',
      '--genesis',
      genesis,
      ...(options.store ? ['--store', options.store] : ['--db', join(dir, 'registry.db')]),
      '--port',
      '0',
      '--log-level',
      'warn',
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1] });
    });
    child.once('exit', (code) => reject(new Error(`registry exited ${code}`)));
  });
}
