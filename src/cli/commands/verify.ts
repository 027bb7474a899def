// `registry verify`: the independent auditor (src/verify), which replays a whole log from the
// wire contract alone, over HTTP or from a database file, and prints what it verified.
import { Option, type Command } from 'commander';
import { UsageError } from '../../errors.js';
import { AuditError, LogError, SourceError, TableError, verifyDb, verifyUrl, type Progress, type Summary } from '../../verify/verify.js';
import { CliError, EXIT } from '../exit.js';
import { wholeNumber } from './options.js';

const VERIFY_EXIT_CODES = `
Exit codes:
  0   verified: every record, signature, quorum, link, state root and audit event checks out
  2   usage: neither or both of --url and --db, a bad option
  10  the log does not verify: a record, a link, the head answer or a database row (the version is named)
  11  the audit chain does not verify (the event's seq is named)
  12  the source cannot be read: the registry is unreachable or answers something else, or the database
      file is missing or locked (a running service holds its file: stop it, or verify a copy, or use --url)
`;

/** A one-line progress display on stderr, redrawn at most ten times a second; only on a terminal. */
function ttyProgress(): Progress {
  if (!process.stderr.isTTY) return { phase: () => undefined, tick: () => undefined, end: () => undefined };
  let name = '';
  let total = 0;
  let last = 0;
  const started = performance.now();
  const draw = (done: number) => {
    const rate = done / Math.max((performance.now() - started) / 1000, 0.001);
    const of = total > 0 ? `/${total} (${Math.floor((100 * done) / total)}%)` : '';
    process.stderr.write(`\r\x1b[2Kverifying ${name}: ${done}${of}, ${Math.round(rate)}/s`);
  };
  return {
    phase(n, t) {
      name = n;
      total = t;
      draw(0);
    },
    tick(done) {
      const now = performance.now();
      if (now - last < 100 && done !== total) return;
      last = now;
      draw(done);
    },
    end() {
      process.stderr.write('\r\x1b[2K');
    },
  };
}

function print(s: Summary): void {
  const c = s.counts;
  const rate = s.seconds > 0 ? Math.round(c.signatures / s.seconds) : c.signatures;
  const lines = [
    `verified ${s.source} (registry ${s.registryId})`,
    `  versions        0..${s.head.version} (${c.records} records)`,
    `  commits         ${c.commits} (${c.puts} puts, ${c.deletes} deletes), every prev_hash, base, payload_hash and state_root`,
    `  signatures      ${c.signatures} verified, strict Ed25519 (${rate}/s over ${s.seconds.toFixed(2)} s)`,
    `  signer sets     ${c.signerSetChanges} change(s); now ${s.signerSet.threshold} of ${s.signerSet.signers.map((x) => x.id).join(', ')}`,
    `  descriptors     ${s.head.descriptorCount} at the head`,
    `  audit events    ${s.audit.events}, chain verified${s.audit.lastHash ? ` (last ${s.audit.lastHash})` : ''}`,
    `  cross-checks    ${s.crossChecks.join(', ') || 'none'}; checkpoint: ${s.checkpoint}`,
    `  genesis         ${s.genesisHash}${s.genesisPinned ? ' (pinned)' : ' (not pinned: pass --genesis-hash to check it is the one you trust)'}`,
    `  head            version ${s.head.version} ${s.head.hash}`,
    `trusted head: ${s.head.hash}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

export function verifyCommand(program: Command): void {
  program
    .command('verify')
    .summary('replay and verify a whole log, independently of the service')
    .description(
      'Replays the whole log from the wire contract alone (its own canonical JSON, BLAKE3, strict Ed25519 and state, none of the ' +
        "service's code): every record's approvals and quorum (both quorums for a signer-set change), prev_hash and base, " +
        'payload_hash, state_root, the head answer, the latest checkpoint and the audit chain. Reads a registry over HTTP (--url) ' +
        'or its SQLite file (--db, opened read-only; a running service holds its file exclusively, so use a stopped ' +
        "service's file or a copy). Prints a summary ending with the head hash it trusts; progress goes to stderr on a terminal.",
    )
    .addOption(new Option('--url <url>', 'the registry to verify over HTTP, e.g. http://127.0.0.1:8080').conflicts('db'))
    .addOption(new Option('--db <file>', "a registry's SQLite file (a stopped service's, or a copy)"))
    .option('--genesis-hash <b3>', 'the genesis hash you trust (the trust root); version 0 must hash to it')
    .option('--concurrency <n>', 'records fetched at once over HTTP', wholeNumber(1, 64), 8)
    .option('--json', 'print the summary as JSON')
    .addHelpText('after', VERIFY_EXIT_CODES)
    .action(async (opts: { url?: string; db?: string; genesisHash?: string; concurrency: number; json?: boolean }) => {
      if ((opts.url === undefined) === (opts.db === undefined)) throw new UsageError('verify needs --url <url> or --db <file>');
      if (opts.genesisHash !== undefined && !/^b3:[0-9a-f]{64}$/.test(opts.genesisHash))
        throw new UsageError('--genesis-hash must be b3: and 64 lowercase hex digits');
      if (opts.url !== undefined && !/^https?:\/\//.test(opts.url)) throw new UsageError('--url must be an http:// or https:// URL');
      const progress = ttyProgress();
      let summary: Summary;
      try {
        const options = { genesisHash: opts.genesisHash, concurrency: opts.concurrency, progress };
        summary = opts.url !== undefined ? await verifyUrl(opts.url, options) : verifyDb(opts.db!, options);
      } catch (e) {
        progress.end();
        if (e instanceof LogError || e instanceof TableError) throw new CliError(`verify FAILED: ${e.message}`, EXIT.LOG_INVALID);
        if (e instanceof AuditError) throw new CliError(`verify FAILED: ${e.message}`, EXIT.AUDIT_INVALID);
        if (e instanceof SourceError) throw new CliError(`verify: ${e.message}`, EXIT.SOURCE_UNREADABLE);
        throw e;
      }
      if (opts.json) process.stdout.write(JSON.stringify(summary) + '\n');
      else print(summary);
    });
}
