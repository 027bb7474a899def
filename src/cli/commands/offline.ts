// The commands that need no registry: keys, the genesis, signing a payload offline.
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { generateKeyPair, KEY_RE, signApproval } from '../../core/crypto.js';
import { formatTime, hashOf } from '../../core/encoding.js';
import { assembleGenesis, buildGenesisPayload, checkGenesisRecord } from '../../core/records.js';
import { Approval, GenesisPayload, ProposalPayload, REGISTRY_ID_PATTERN, SIGNER_ID_PATTERN, type SignerEntry } from '../../core/schemas.js';
import { signerSetProblem } from '../../core/signers.js';
import { check } from '../../core/validate.js';
import { UsageError } from '../../errors.js';
import { CliError, EXIT } from '../exit.js';
import { output, readJsonFile } from '../io.js';
import { readKeyFile, readPublicKey, writeKeyFile } from '../keyfile.js';
import { keyProblem } from '../review.js';
import { wholeNumber, needed } from './options.js';

const SIGNER_ID_RE = new RegExp(SIGNER_ID_PATTERN);
const REGISTRY_ID_RE = new RegExp(REGISTRY_ID_PATTERN);

export function keygenCommand(program: Command): void {
  program
    .command('keygen')
    .summary('write a new Ed25519 key file, print its public key')
    .description('Writes a new signer key file (mode 0600; never overwrites one) and prints its public key.')
    .addOption(needed('--out <file>', 'the key file to write'))
    .option('--id <signer-id>', 'the signer id to record in it (1-64 of a-z 0-9 . _ -)')
    .action((opts: { out: string; id?: string }) => {
      if (opts.id !== undefined && !SIGNER_ID_RE.test(opts.id)) throw new UsageError('--id: 1-64 characters of a-z 0-9 . _ -');
      const key = generateKeyPair();
      writeKeyFile(opts.out, { ...(opts.id ? { signer_id: opts.id } : {}), public_key: key.publicKey, secret_key: key.secretKey });
      process.stdout.write(key.publicKey + '\n');
    });
}

/** `--signer ID=PUBLIC_KEY` or `--signer ID=KEYFILE`. */
function signerEntry(spec: string): SignerEntry {
  const eq = spec.indexOf('=');
  const id = spec.slice(0, eq);
  const value = spec.slice(eq + 1);
  if (eq < 1 || !value) throw new UsageError(`--signer ${spec}: expected ID=PUBLIC_KEY or ID=KEYFILE`);
  if (!SIGNER_ID_RE.test(id)) throw new UsageError(`--signer ${spec}: a signer id is 1-64 characters of a-z 0-9 . _ -`);
  if (KEY_RE.test(value)) return { id, public_key: value };
  if (/^[0-9a-fA-F]{40,}$/.test(value) || !existsSync(value))
    throw new UsageError(`--signer ${spec}: ${value} is neither a public key (64 lowercase hex characters) nor a key file`);
  const key = readPublicKey(value, `--signer ${id}=`);
  if (key.signer_id !== undefined && key.signer_id !== id)
    throw new UsageError(`--signer ${spec}: that key file is ${key.signer_id}'s, not ${id}'s`);
  return { id, public_key: key.public_key };
}

export function genesisCommand(program: Command): void {
  const genesis = program
    .command('genesis')
    .summary('create a genesis payload, assemble the signed genesis record')
    .description(
      'A registry starts from a genesis record: `genesis create` writes the payload, signers `registry sign` it, `genesis assemble` makes the record.',
    );

  genesis
    .command('create')
    .summary('write a genesis payload: the registry id and its first signer set')
    .description('Writes a genesis payload: the registry id and its first signer set (signers sorted by id).')
    .addOption(needed('--registry-id <id>', 'the registry id (1-64 of A-Z a-z 0-9 . _ -)'))
    .addOption(needed('--threshold <m>', 'approvals needed, M of the N signers', wholeNumber(1, 64)))
    .addOption(
      needed('--signer <id=key>', 'a signer: ID=PUBLIC_KEY (64 hex) or ID=KEYFILE; repeat for each', (v: string, all: string[] = []) => [
        ...all,
        v,
      ]),
    )
    .option('--out <file>', 'write the payload here instead of stdout')
    .action((opts: { registryId: string; threshold: number; signer: string[]; out?: string }) => {
      if (!REGISTRY_ID_RE.test(opts.registryId)) throw new UsageError('--registry-id: 1-64 characters of A-Z a-z 0-9 . _ -');
      const signers = opts.signer.map(signerEntry);
      const seen = new Map<string, string>();
      for (const s of signers) {
        if (seen.has(s.id)) throw new UsageError(`--signer ${s.id} is given twice: each signer once`);
        const same = [...seen].find(([, k]) => k === s.public_key);
        if (same) throw new UsageError(`--signer ${s.id} has the same public key as ${same[0]}: each signer needs a key of their own`);
        seen.set(s.id, s.public_key);
      }
      if (opts.threshold > signers.length)
        throw new UsageError(
          `--threshold ${opts.threshold} is more than the ${signers.length} signer${signers.length === 1 ? '' : 's'}: no quorum could ever be reached`,
        );
      signers.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const set = { threshold: opts.threshold, signers };
      const problem = signerSetProblem(set);
      if (problem) throw new UsageError(`the signer set is not valid: ${problem}`);
      const payload = check(GenesisPayload, buildGenesisPayload(opts.registryId, set, formatTime(Date.now())), 'the genesis payload');
      output(payload, opts.out);
      process.stderr.write(
        `genesis payload ${hashOf(payload)}: have ${set.threshold} of the ${set.signers.length} signers run \`registry sign ${opts.out ?? 'PAYLOAD_FILE'} --key THEIR_KEY_FILE\`, then \`registry genesis assemble\`\n`,
      );
    });

  genesis
    .command('assemble')
    .summary('assemble and check the genesis record from the payload and approvals')
    .description("Assembles the genesis record from the payload and the signers' approvals, and checks it (signatures, quorum).")
    .argument('<payload-file>', 'the genesis payload (genesis create)')
    .addOption(needed('--approval <file>', 'an approval (registry sign); repeat for each', (v: string, all: string[] = []) => [...all, v]))
    .option('--out <file>', 'write the record here instead of stdout')
    .action((file: string, opts: { approval: string[]; out?: string }) => {
      const value = readJsonFile(file, 'PAYLOAD_FILE');
      const type = (value as { type?: unknown } | null)?.type;
      if (type === 'registry.commit')
        throw new UsageError(`${file} is already a genesis record: serve it with \`registry serve --genesis ${file}\``);
      if (type === 'registry.proposal') throw new UsageError(`${file} is a proposal payload, not a genesis payload (genesis create)`);
      const payload = check(GenesisPayload, value, `the genesis payload in ${file}`, (m) => new UsageError(m));
      const approvals = opts.approval.map((f) =>
        check(Approval, readJsonFile(f, '--approval'), `the approval in ${f}`, (m) => new UsageError(m)),
      );
      const record = assembleGenesis(payload, approvals);
      const checked = checkGenesisRecord(record);
      output(record, opts.out);
      process.stderr.write(`genesis record ${checked.hash}: this is the trust root clients pin\n`);
    });
}

export function signCommand(program: Command): void {
  program
    .command('sign')
    .summary('sign a genesis or proposal payload offline')
    .description('Prints your approval {signer_id, sig} of a genesis or proposal payload, for signers who never talk to the registry.')
    .argument('<payload-file>', 'the payload: a genesis payload (genesis create) or a proposal payload')
    .addOption(needed('--key <file>', 'your key file (registry keygen)'))
    .option('--id <signer-id>', "the signer you sign as (default: the key file's)")
    .action((file: string, opts: { key: string; id?: string }) => {
      const value = readJsonFile(file, 'PAYLOAD_FILE');
      const type = (value as { type?: unknown } | null)?.type;
      const fail = (m: string) => new UsageError(m);
      let payload;
      if (type === 'registry.proposal') payload = check(ProposalPayload, value, `the proposal payload in ${file}`, fail);
      else if (type === 'registry.genesis') payload = check(GenesisPayload, value, `the genesis payload in ${file}`, fail);
      else if (type === 'registry.commit')
        throw new UsageError(`${file} is a commit record, which carries its approvals already; \`registry sign\` signs a payload`);
      else
        throw new UsageError(
          `${file} is neither a genesis payload nor a proposal payload ("type" must be registry.genesis or registry.proposal)`,
        );
      const key = readKeyFile(opts.key);
      const signerId = opts.id ?? key.signer_id;
      if (!signerId) throw new UsageError(`--key ${opts.key} names no signer_id: pass --id`);
      // A genesis names its signers: a key that is not the named signer's would sign in vain.
      if (payload.type === 'registry.genesis') {
        const problem = keyProblem({ current: payload.signer_set }, signerId, key.public_key, payload.registry_id);
        if (problem) throw new CliError(problem.replace(/ on registry /, ' in the genesis of registry '), EXIT.WRONG_KEY);
      }
      const payloadHash = hashOf(payload);
      output({ signer_id: signerId, sig: signApproval(key.secret_key, payloadHash) });
      process.stderr.write(`signed ${payloadHash} as ${signerId}\n`);
    });
}
