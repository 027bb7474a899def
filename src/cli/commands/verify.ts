// `registry verify`: the independent auditor (src/verify), which replays a whole log from the
// wire contract alone, over HTTP or from a database file, and prints what it verified.
import { Presets, SingleBar } from 'cli-progress';
import { Option, type Command } from 'commander';
import { UsageError } from '../../errors.js';
import { AuditError, LogError, SourceError, TableError, verifyDb, verifyUrl, type Progress, type Summary } from '../../verify/verify.js';
import { CliError, EXIT } from '../exit.js';
import { wholeNumber } from './options.js';

const VERIFY_EXIT_CODES = `
Exit codes:
  0   verified: every record, signature, quorum, link, state root, checkpoint and audit event checks out
  2   usage: neither or both of --url and --db, a bad option
  10  the log does not verify: a record, a link, the head answer, a checkpoint or a database row (the
      version is named). Do not trust this registry's answers past what you verified before; restore the
      database from a backup that verifies, and compare its head with what witnesses and clients pinned
  11  the audit chain does not verify (the event's seq is named): the history of who proposed and
      approved what was edited; restore the database from a backup that verifies
  12  the source cannot be read: the registry is unreachable or answers something else, or the database
      file is missing or cannot be read; nothing was verified, try again or verify a copy
`;

/** Progress on stderr with cli-progress, redrawn at most ten times a second; only on a terminal
 * (a script or a pipe gets the summary alone). */
function terminalProgress(): Progress {
  if (!process.stderr.isTTY) return { phase: () => undefined, tick: () => undefined, end: () => undefined };
  let bar: SingleBar | undefined;
  let name = '';
  let started = 0;
  const stop = () => {
    bar?.stop();
    bar = undefined;
  };
  return {
    phase(n, total) {
      stop();
      name = n;
      started = performance.now();
      // Without a total (audit events over HTTP, a checkpoint's state): a count and a rate.
      const format =
        total > 0
          ? 'verifying {phase} [{bar}] {percentage}% {value}/{total}, {rate}/s, {eta_formatted} left'
          : 'verifying {phase}: {value}, {rate}/s';
      bar = new SingleBar(
        { format, stream: process.stderr, fps: 10, clearOnComplete: true, hideCursor: true, barsize: 30, etaBuffer: 200 },
        Presets.shades_classic,
      );
      bar.start(Math.max(total, 0), 0, { phase: name, rate: 0 });
    },
    tick(done) {
      const seconds = (performance.now() - started) / 1000;
      bar?.update(done, { phase: name, rate: Math.round(done / Math.max(seconds, 0.001)) });
    },
    end: stop,
  };
}

function print(s: Summary): void {
  const c = s.counts;
  const versions =
    c.pruned > 0
      ? `0..${s.head.version} (${c.records} records; ${c.pruned} pruned, below the checkpoint at ${String(s.horizon)}: replayed in full from it, ` +
        `the genesis and ${c.followed} kept record(s) below it followed for signatures, quorums and signer sets)`
      : `0..${s.head.version} (${c.records} records)`;
  const lines = [
    `verified ${s.source} (registry ${s.registryId})`,
    `  versions        ${versions}`,
    `  commits         ${c.commits} (${c.puts} puts, ${c.deletes} deletes), every prev_hash, base, payload_hash and state_root`,
    `  signatures      ${c.signatures} in records, ${s.signatures.how}: ${s.signatures.perSecond}/s over ${s.seconds.toFixed(2)} s`,
    `  signer sets     ${c.signerSetChanges} change(s); now ${s.signerSet.threshold} of ${s.signerSet.signers.map((x) => x.id).join(', ')}`,
    `  descriptors     ${s.head.descriptorCount} at the head`,
    `  checkpoints     ${s.checkpoint}`,
    `  audit events    ${s.audit.events}, chain verified${s.audit.lastHash ? ` (last ${s.audit.lastHash})` : ''}`,
    `  cross-checks    ${s.crossChecks.join(', ') || 'none'}`,
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
        'payload_hash, state_root, the head answer, every checkpoint and the audit chain. Where old records are pruned, it ' +
        'follows the genesis and every kept signer-set change down to the oldest checkpoint, takes its state once it hashes to ' +
        "that record's state_root, and replays every record after it. Reads a registry over HTTP (--url) or its SQLite file " +
        "(--db, opened read-only in one transaction: a stopped service's file, a copy, or a running service's). Signatures are " +
        'verified on one worker thread per core. Prints a summary ending with the head hash it trusts; progress goes to stderr ' +
        'on a terminal.',
    )
    .addOption(new Option('--url <url>', 'the registry to verify over HTTP, e.g. http://127.0.0.1:8080').conflicts('db'))
    .addOption(new Option('--db <file>', "a registry's SQLite file (a running or stopped service's, or a copy)"))
    .option('--genesis-hash <b3>', 'the genesis hash you trust (the trust root); version 0 must hash to it')
    .option('--concurrency <n>', 'records fetched at once over HTTP', wholeNumber(1, 64), 8)
    .option(
      '--fast',
      "verify signatures with Node's crypto (OpenSSL) instead of strict @noble/ed25519: the same verdicts (keys are checked " +
        'for small order by the verifier itself), some 25 times less CPU per signature',
    )
    .option(
      '--workers <n>',
      'signature worker threads (default: one per core, one fewer with --fast; 0: in the main thread)',
      wholeNumber(0, 256),
    )
    .option('--json', 'print the summary as JSON')
    .addHelpText('after', VERIFY_EXIT_CODES)
    .action(
      async (opts: {
        url?: string;
        db?: string;
        genesisHash?: string;
        concurrency: number;
        fast?: boolean;
        workers?: number;
        json?: boolean;
      }) => {
        if ((opts.url === undefined) === (opts.db === undefined)) throw new UsageError('verify needs --url <url> or --db <file>');
        if (opts.genesisHash !== undefined && !/^b3:[0-9a-f]{64}$/.test(opts.genesisHash))
          throw new UsageError('--genesis-hash must be b3: and 64 lowercase hex digits');
        if (opts.url !== undefined && !/^https?:\/\//.test(opts.url)) throw new UsageError('--url must be an http:// or https:// URL');
        const progress = terminalProgress();
        let summary: Summary;
        try {
          const options = {
            genesisHash: opts.genesisHash,
            concurrency: opts.concurrency,
            fast: opts.fast,
            workers: opts.workers,
            progress,
          };
          summary = opts.url !== undefined ? await verifyUrl(opts.url, options) : await verifyDb(opts.db!, options);
        } catch (e) {
          progress.end();
          if (e instanceof LogError || e instanceof TableError) throw new CliError(`verify FAILED: ${e.message}`, EXIT.LOG_INVALID);
          if (e instanceof AuditError) throw new CliError(`verify FAILED: ${e.message}`, EXIT.AUDIT_INVALID);
          if (e instanceof SourceError) throw new CliError(`verify: ${e.message}`, EXIT.SOURCE_UNREADABLE);
          throw e;
        }
        if (opts.json) process.stdout.write(JSON.stringify(summary) + '\n');
        else print(summary);
      },
    );
}
