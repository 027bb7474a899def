// What the registry serves, read from the command line: the head, proposals, the audit log,
// descriptors.
import { Option, type Command } from 'commander';
import { PROPOSAL_STATUSES, type ProposalStatus } from '../../core/schemas.js';
import { output, shown } from '../io.js';
import { resolveProposalId } from '../review.js';
import { apiOf, urlOption, wholeNumber } from './options.js';

export function statusCommand(program: Command): void {
  program
    .command('status')
    .summary('the head, or where one proposal stands')
    .description('Prints the head as JSON, or, given a proposal id (or the start of a pending one), that proposal with its payload.')
    .argument('[proposal-id]', 'a proposal id, or the start of a pending one')
    .addOption(urlOption())
    .action(async (given: string | undefined, opts: { url: string }) => {
      const api = apiOf(opts.url);
      output(given === undefined ? await api.head() : await api.proposal(await resolveProposalId(api, given)));
    });
}

export function proposalsCommand(program: Command): void {
  program
    .command('proposals')
    .summary('list proposals, oldest first')
    .description('Lists proposals in the order received: id, status, approvals of the threshold, who approved, when it was created.')
    .addOption(urlOption())
    .addOption(new Option('--status <status>', 'only proposals with this status').choices(PROPOSAL_STATUSES))
    .option('--limit <n>', 'at most this many', wholeNumber(1), 100)
    .option('--json', 'one JSON object per line, as the registry serves them')
    .action(async (opts: { url: string; status?: ProposalStatus; limit: number; json?: boolean }) => {
      const { items, more } = await apiOf(opts.url).proposals(opts.status, opts.limit);
      for (const p of items) {
        if (opts.json) process.stdout.write(JSON.stringify(p) + '\n');
        else {
          const who = p.approvals.map((a) => a.signer_id).join(',') || '-';
          const at = p.version === undefined ? '' : ` version ${p.version}`;
          process.stdout.write(
            `${p.proposal_id}  ${p.status.padEnd(9)} ${p.approvals.length}/${p.threshold} ${who}  ${p.created_at}${at}\n`,
          );
        }
      }
      if (!opts.json && items.length === 0) process.stderr.write(`no ${opts.status ?? ''}${opts.status ? ' ' : ''}proposals\n`);
      if (more) process.stderr.write(`more proposals than --limit ${opts.limit}\n`);
    });
}

export function auditCommand(program: Command): void {
  program
    .command('audit')
    .summary('read the audit log')
    .description(
      'Prints audit events from --from-seq on: seq, time, kind, proposal, signer, version, reason (--json: as served and hashed).',
    )
    .addOption(urlOption())
    .option('--from-seq <n>', 'the first event', wholeNumber(1), 1)
    .option('--limit <n>', 'at most this many events', wholeNumber(1), 100)
    .option('--json', 'one event per line, exactly as served')
    .action(async (opts: { url: string; fromSeq: number; limit: number; json?: boolean }) => {
      const { events, nextFromSeq } = await apiOf(opts.url).audit(opts.fromSeq, opts.limit);
      for (const e of events) {
        if (opts.json) process.stdout.write(JSON.stringify(e) + '\n');
        else {
          const parts: string[] = [String(e.seq), e.at, e.kind];
          if (e.proposal_id !== undefined) parts.push(e.proposal_id);
          if (e.signer_id !== undefined) parts.push(`by ${e.signer_id}`);
          if (e.version !== undefined) parts.push(`version ${e.version}`);
          if (e.reason !== undefined) parts.push(`: ${shown(e.reason)}`);
          process.stdout.write(parts.join(' ') + '\n');
        }
      }
      if (events.length === opts.limit) process.stderr.write(`more may follow: registry audit --from-seq ${nextFromSeq}\n`);
    });
}

export function getCommand(program: Command): void {
  program
    .command('get')
    .summary('a descriptor at the head')
    .description('Prints the descriptor with this id at the head, with the head version and the version that last changed it.')
    .argument('<descriptor-id>', 'the descriptor id')
    .addOption(urlOption())
    .option('--include-expired', 'show it even if it has expired')
    .action(async (id: string, opts: { url: string; includeExpired?: boolean }) => {
      output(await apiOf(opts.url).descriptor(id, opts.includeExpired === true));
    });
}
