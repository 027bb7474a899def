// The signer's command line, end to end (issue 17): review before signing, the key checked
// against the registry, help and usage, errors that name the cause and the fix, no dead ends.
// Every scenario runs twice: as a user runs it (a child process of dist/cli/main.js) and in
// this process (the same code from src/, so that coverage sees it). The registry is always a
// real `registry serve` on a real port with a real SQLite file.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { writeKeyFile } from '../../src/cli/keyfile.js';
import { hashOf } from '../../src/core/encoding.js';
import type { GenesisPayload, Op } from '../../src/core/schemas.js';
import type { ProposalView } from '../../src/state/proposal-view.js';
import { SERVICE_VERSION } from '../../src/version.js';
import { assertBuilt, CLI, killChildren, runCli, runInProcess, serveOk, type CliRun, type Served } from '../helpers/cli.js';
import { del, genesisRecord, proposal, put, setSigners, signers, signerSet, type TestSigner } from '../helpers/fixtures.js';
import type { ProposalJson } from '../helpers/responses.js';
import { request, startTestRegistry } from '../helpers/server.js';

const REG = 'e2e-review';
const hasScript = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const RUNNERS = { 'as a process': runCli, 'in process': runInProcess } as const;

const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });

beforeAll(() => assertBuilt());
afterAll(() => killChildren());

describe.each(Object.entries(RUNNERS))('registry CLI (%s)', { timeout: 60_000 }, (runnerName, runner) => {
  const keys: Record<string, TestSigner> = {};
  let dir = '';
  let server: Served;
  let url = '';
  let files = 0;

  const cli = (...args: string[]): Promise<CliRun> => runner(args, { cwd: dir });
  const ok = async (...args: string[]): Promise<string> => {
    const r = await cli(...args);
    if (r.code !== 0) throw new Error(`registry ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r.stdout;
  };
  const file = (content: unknown, name = `f${++files}.json`): string => {
    writeFileSync(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content, null, 2));
    return name;
  };
  const propose = async (ops: Op[], ...extra: string[]): Promise<string> =>
    (await ok('propose', '--url', url, '--key', 'alice.key', '--ops', file(ops), '--quiet', ...extra)).trim();
  const status = async (id: string): Promise<ProposalJson> => JSON.parse(await ok('status', '--url', url, id)) as ProposalJson;
  const approvers = async (id: string): Promise<string[]> => (await status(id)).approvals.map((a) => a.signer_id);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'registry-review-'));
    for (const s of signers('alice', 'bob', 'carol', 'dave', 'mallory')) {
      keys[s.id] = s;
      writeKeyFile(join(dir, `${s.id}.key`), { signer_id: s.id, public_key: s.publicKey, secret_key: s.secretKey });
    }
    writeFileSync(join(dir, 'genesis.json'), JSON.stringify(genesisRecord(REG, [keys.alice!, keys.bob!, keys.carol!], 2)));
    server = await serveOk(['--genesis', 'genesis.json', '--db', 'registry.db', '--port', '0', '--log-level', 'warn'], { cwd: dir });
    url = server.url;
  });

  afterAll(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('has help for the program and each command, a version, and one-line usage errors with the nearest flag', async () => {
    const [help, approveHelp, createHelp, version, typo, extra, unknown, missing] = await Promise.all([
      cli('--help'),
      cli('approve', '--help'),
      cli('genesis', 'create', '--help'),
      cli('--version'),
      cli('approve', 'b3:00', '--urll', url),
      cli('status', '--url', url, 'a', 'b'),
      cli('aprove'),
      cli('approve', '--url', url),
    ]);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toContain('review [options] <proposal-id>');
    expect(help.stdout).toMatch(/Exit codes:[\s\S]*3 {2}the proposal is stale/);
    expect(approveHelp.code).toBe(0);
    expect(approveHelp.stdout).toMatch(/^Usage: registry approve \[options\] <proposal-id>/);
    expect(approveHelp.stdout).toContain('--yes');
    expect(createHelp.stdout).toContain('ID=KEYFILE');
    expect(version).toEqual({ code: 0, stdout: `${SERVICE_VERSION}\n`, stderr: '' });
    expect(typo).toEqual({ code: 2, stdout: '', stderr: "registry approve: unknown option '--urll' (did you mean --url?)\n" });
    expect(extra.code).toBe(2);
    expect(extra.stderr).toMatch(
      /^registry status: too many arguments for 'status' \(expected 1 argument but got 2\); see registry status --help\n$/,
    );
    expect(unknown).toEqual({ code: 2, stdout: '', stderr: "registry: unknown command 'aprove' (did you mean approve?)\n" });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe("registry approve: missing required argument 'proposal-id'; see registry approve --help\n");
  });

  it('names the cause and the fix: a refused connection, a URL without a scheme, a missing or broken file, a file that is no key', async () => {
    const closed = await freePort();
    const ops = file([put('svc-x')]);
    const broken = file('[\n  {"op": "put",}\n]');
    const badProposal = file({ type: 'registry.proposal', schema_version: 1, ops: [] });
    const [refused, scheme, missingFile, brokenJson, notAKey, proposalSchema, record] = await Promise.all([
      cli('status', '--url', `http://127.0.0.1:${closed}`),
      cli('status', '--url', '127.0.0.1:8080'),
      cli('propose', '--url', url, '--key', 'alice.key', '--ops', 'nothing-here.json'),
      cli('propose', '--url', url, '--key', 'alice.key', '--ops', broken),
      cli('propose', '--url', url, '--key', 'genesis.json', '--ops', ops),
      cli('sign', badProposal, '--key', 'alice.key'),
      cli('sign', 'genesis.json', '--key', 'alice.key'),
    ]);
    expect(refused).toEqual({
      code: 1,
      stdout: '',
      stderr: `registry: cannot connect to http://127.0.0.1:${closed} (ECONNREFUSED): is the registry running?\n`,
    });
    expect(scheme).toMatchObject({ code: 2, stderr: 'registry: --url must start with http:// or https:// (got 127.0.0.1:8080)\n' });
    expect(missingFile).toMatchObject({ code: 2, stderr: 'registry: --ops: no such file: nothing-here.json\n' });
    expect(brokenJson.code).toBe(2);
    expect(brokenJson.stderr).toMatch(new RegExp(`^registry: --ops: ${broken} is not valid JSON: .*\\(line 2, column \\d+\\)\\n$`));
    expect(notAKey.code).toBe(2);
    expect(notAKey.stderr).toMatch(/^registry: --key genesis\.json is not a key file .*registry keygen/);
    expect(notAKey.stderr).not.toMatch(/chmod/);
    expect(proposalSchema.code).toBe(2);
    expect(proposalSchema.stderr).toMatch(new RegExp(`^registry: the proposal payload in ${badProposal} is not valid`));
    expect(proposalSchema.stderr).not.toMatch(/genesis/);
    expect(record.stderr).toMatch(/genesis\.json is a commit record/);
  });

  it('genesis create refuses what assemble would, accepts ID=KEYFILE; assembling twice gives the same record', async () => {
    const pk = (id: string) => keys[id]!.publicKey;
    const [over, twice, sameKey, othersFile] = await Promise.all([
      cli(
        'genesis',
        'create',
        '--registry-id',
        'g',
        '--threshold',
        '4',
        '--signer',
        `alice=${pk('alice')}`,
        '--signer',
        `bob=${pk('bob')}`,
        '--signer',
        `carol=${pk('carol')}`,
      ),
      cli(
        'genesis',
        'create',
        '--registry-id',
        'g',
        '--threshold',
        '1',
        '--signer',
        `alice=${pk('alice')}`,
        '--signer',
        `alice=${pk('bob')}`,
      ),
      cli('genesis', 'create', '--registry-id', 'g', '--threshold', '1', '--signer', `alice=${pk('alice')}`, '--signer', 'bob=alice.key'),
      cli('genesis', 'create', '--registry-id', 'g', '--threshold', '1', '--signer', 'carol=dave.key'),
    ]);
    expect(over).toMatchObject({
      code: 2,
      stdout: '',
      stderr: 'registry: --threshold 4 is more than the 3 signers: no quorum could ever be reached\n',
    });
    expect(twice).toMatchObject({ code: 2, stderr: 'registry: --signer alice is given twice: each signer once\n' });
    expect(sameKey).toMatchObject({ code: 2, stderr: "registry: --signer bob=alice.key: that key file is alice's, not bob's\n" });
    expect(othersFile.code).toBe(2);

    await ok(
      'genesis',
      'create',
      '--registry-id',
      'g',
      '--threshold',
      '2',
      '--signer',
      'bob=bob.key',
      '--signer',
      `alice=${pk('alice')}`,
      '--signer',
      'carol=carol.key',
      '--out',
      'gp.json',
    );
    const payload = JSON.parse(readFileSync(join(dir, 'gp.json'), 'utf8')) as GenesisPayload;
    expect(payload.signer_set).toEqual(signerSet([keys.alice!, keys.bob!, keys.carol!], 2));
    const [a, b, m] = await Promise.all([
      cli('sign', 'gp.json', '--key', 'alice.key'),
      cli('sign', 'gp.json', '--key', 'bob.key'),
      cli('sign', 'gp.json', '--key', 'mallory.key'),
    ]);
    expect(m.code).toBe(9);
    expect(m.stderr).toMatch(/mallory is not a signer in the genesis of registry g/);
    const approvals = ['--approval', file(a.stdout), '--approval', file(b.stdout)];
    await ok('genesis', 'assemble', 'gp.json', ...approvals, '--out', 'g1.json');
    await ok('genesis', 'assemble', 'gp.json', ...approvals, '--out', 'g2.json');
    expect(readFileSync(join(dir, 'g1.json'), 'utf8')).toBe(readFileSync(join(dir, 'g2.json'), 'utf8'));
    const again = await cli('genesis', 'assemble', 'g1.json', ...approvals);
    expect(again).toMatchObject({
      code: 2,
      stderr: 'registry: g1.json is already a genesis record: serve it with `registry serve --genesis g1.json`\n',
    });
  });

  it('serve refuses a port in use, a --db folder that does not exist, a genesis payload and another registry’s database, creating nothing', async () => {
    const busy = createServer();
    const port = await new Promise<number>((resolve) => busy.listen(0, '127.0.0.1', () => resolve((busy.address() as AddressInfo).port)));
    try {
      const inUse = await cli('serve', '--port', String(port), '--data-dir', 'fresh', '--log-level', 'warn');
      expect(inUse).toMatchObject({
        code: 1,
        stdout: '',
        stderr: `registry: cannot start: port ${port} is in use (--port to choose another)\n`,
      });
      expect(existsSync(join(dir, 'fresh'))).toBe(false);
    } finally {
      busy.close();
    }
    const [noFolder, payload] = await Promise.all([
      cli(
        'serve',
        '--genesis',
        'genesis.json',
        '--db',
        'nowhere/registry.db',
        '--port',
        '0',
        '--data-dir',
        'fresh2',
        '--log-level',
        'warn',
      ),
      cli('serve', '--genesis', 'gp.json', '--db', 'other.db', '--port', '0', '--log-level', 'warn'),
    ]);
    expect(noFolder.code).toBe(1);
    expect(noFolder.stderr).toBe(
      'registry: cannot start: the folder of the database nowhere/registry.db does not exist: create nowhere, or choose another --db\n',
    );
    expect(existsSync(join(dir, 'nowhere'))).toBe(false);
    expect(existsSync(join(dir, 'fresh2'))).toBe(false);
    expect(payload.code).toBe(1);
    expect(payload.stderr).toMatch(
      /^registry: cannot start: gp\.json is a genesis payload, not the genesis record: .*`registry genesis assemble`/,
    );
    expect(existsSync(join(dir, 'other.db'))).toBe(false);

    // A database of registry `one`, served with the genesis of registry g.
    const other = await startTestRegistry(genesisRecord('one', [keys.alice!], 1));
    await other.close();
    const foreign = await cli('serve', '--genesis', 'g1.json', '--db', other.db, '--port', '0', '--log-level', 'warn');
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toMatch(
      /^registry: cannot start: the database holds another registry: one \(genesis b3:[0-9a-f]{64}\), not g \(genesis b3:/,
    );
    rmSync(other.dir, { recursive: true, force: true });
  });

  it('answers HTTP errors with hints: no route, a body that is not JSON', async () => {
    const noRoute = await fetch(`${url}/registr/head`);
    expect(noRoute.status).toBe(404);
    expect(((await noRoute.json()) as { error: { hint: string } }).error.hint).toMatch(/under \/registry\/ \(GET \/registry\/head\)/);
    const text = await fetch(`${url}/registry/proposals`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
    expect(text.status).toBe(415);
    expect(((await text.json()) as { error: { hint: string } }).error.hint).toBe('send Content-Type: application/json');
  });

  let seedId = '';

  it('proposes and approves (with --yes), and checks the key against the signer set before signing', async () => {
    seedId = await propose(
      [
        put('svc-a', { region: 'eu', tier: 'gold' }, { port: 443, tls: { cert: 'a' } }),
        put('svc-b', { region: 'eu' }, { port: 80 }),
        put('svc-c', {}, { x: 1 }),
      ],
      '--reason',
      'seed',
    );
    expect(seedId).toMatch(/^b3:[0-9a-f]{64}$/);
    const approved = JSON.parse(
      await ok('approve', seedId, '--url', url, '--key', 'bob.key', '--registry-id', REG, '--yes'),
    ) as ProposalView;
    expect(approved).toMatchObject({ proposal_id: seedId, status: 'committed', version: 1 });

    const ops = file([put('svc-x')]);
    const [stranger, borrowed] = await Promise.all([
      cli('propose', '--url', url, '--key', 'mallory.key', '--ops', ops),
      cli('propose', '--url', url, '--key', 'mallory.key', '--id', 'alice', '--ops', ops),
    ]);
    expect(stranger).toMatchObject({
      code: 9,
      stdout: '',
      stderr: `registry: mallory is not a signer on registry ${REG} (its signers: alice, bob, carol); check --key, or name the signer with --id\n`,
    });
    expect(borrowed.code).toBe(9);
    expect(borrowed.stderr).toMatch(
      new RegExp(
        `^registry: this key's public key ${keys.mallory!.publicKey.slice(0, 4)}[0-9a-f]*… is not alice's key on registry ${REG} \\(${keys.alice!.publicKey.slice(0, 4)}[0-9a-f]*…\\); check --key\\n$`,
      ),
    );
    expect((await ok('proposals', '--url', url, '--status', 'pending')).trim()).toBe('');
  });

  let pending = '';

  it('reviews a pending proposal (also by a prefix of its id) and refuses to sign twice, with a wrong key, registry or no terminal', async () => {
    pending = await propose([put('svc-d', { region: 'us' })], '--reason', 'add svc-d');
    const [full, prefix] = await Promise.all([cli('review', pending, '--url', url), cli('review', pending.slice(0, 10), '--url', url)]);
    expect(full.code).toBe(0);
    expect(prefix).toEqual(full);
    expect(full.stdout).toContain(`proposal  ${pending}\n          (the payload was hashed here and matches this id)\n`);
    expect(full.stdout).toContain(`registry  ${REG} (as the registry at ${url} says; pass --registry-id ${REG} to check it)`);
    expect(full.stdout).toMatch(/^base {6}version 1 b3:[0-9a-f]{64} \(the head\)$/m);
    expect(full.stdout).toMatch(/^expires {3}\S+ \(in 2 d 23 h\)$/m);
    expect(full.stdout).toContain('reason    add svc-d\nstatus    pending: 1 approval (alice), 2 needed; as the registry reports\n');
    expect(full.stdout).toMatch(/ {2}\+ svc-d: added\n {6}kind +"service"\n {6}labels\.region +"us"\n {6}body +\{\}\n/);
    expect(full.stdout).toMatch(/PENDING on the current head: it can be approved \(exit 0\)\n$/);

    const [again, wrongKey, wrongRegistry, noTty] = await Promise.all([
      cli('approve', pending, '--url', url, '--key', 'alice.key', '--yes'),
      cli('approve', pending, '--url', url, '--key', 'mallory.key', '--id', 'carol', '--yes'),
      cli('approve', pending, '--url', url, '--key', 'bob.key', '--registry-id', 'prod-eu', '--yes'),
      cli('approve', pending, '--url', url, '--key', 'bob.key'),
    ]);
    expect(again.code).toBe(8);
    expect(again.stderr).toMatch(/\nregistry: alice has already approved b3:[0-9a-f]{64} \(1 of 2 approvals\): nothing was signed\n$/);
    expect(wrongKey.code).toBe(9);
    expect(wrongKey.stderr).toMatch(
      /\nregistry: this key's public key [0-9a-f]+… is not carol's key on registry e2e-review \([0-9a-f]+…\); check --key\n$/,
    );
    expect(wrongRegistry).toMatchObject({ code: 7, stderr: `registry: the registry at ${url} is ${REG}, not prod-eu (--registry-id)\n` });
    expect(noTty.code).toBe(2);
    expect(noTty.stderr).toMatch(
      /\nregistry: approve asks for confirmation, and stdin is not a terminal: pass --yes to approve without asking\n$/,
    );
    expect(noTty.stdout).toBe('');
    expect(await approvers(pending)).toEqual(['alice']);
  });

  it.runIf(hasScript && runnerName === 'as a process')('asks for confirmation on a terminal: no signs nothing, yes approves', async () => {
    const command = [process.execPath, CLI, 'approve', pending.slice(0, 12), '--url', url, '--key', 'bob.key', '--registry-id', REG]
      .map((a) => `'${a}'`)
      .join(' ');
    const tty = (answer: string) =>
      new Promise<{ code: number; output: string }>((resolve) => {
        try {
          const output = execFileSync('script', ['-qec', command, '/dev/null'], { cwd: dir, input: answer, encoding: 'utf8' });
          resolve({ code: 0, output });
        } catch (e) {
          const err = e as { status: number; stdout: string };
          resolve({ code: err.status, output: err.stdout });
        }
      });
    const no = await tty('n\n');
    expect(no.code).toBe(1);
    expect(no.output).toContain(`approve ${pending} as bob on registry ${REG}? [y/N]`);
    expect(no.output).toContain('registry: not approved: nothing was signed');
    expect(await approvers(pending)).toEqual(['alice']);
    const yes = await tty('y\n');
    expect(yes.code).toBe(0);
    expect(yes.output).toMatch(/approved b3:[0-9a-f]{64} as bob: committed as version 2/);
  });

  it('says a proposal is stale before anything is signed, and signs nothing', async () => {
    if ((await status(pending)).status === 'pending') await ok('approve', pending, '--url', url, '--key', 'bob.key', '--yes');
    const head = JSON.parse(await ok('status', '--url', url)) as { version: number };
    const first = await propose([put('svc-e')]);
    const second = await propose([put('svc-f')]);
    await ok('approve', first, '--url', url, '--key', 'carol.key', '--yes');
    const [review, approve] = await Promise.all([
      cli('review', second, '--url', url),
      cli('approve', second, '--url', url, '--key', 'bob.key', '--yes'),
    ]);
    expect(review.code).toBe(3);
    expect(review.stderr).toBe('');
    expect(review.stdout).toMatch(
      new RegExp(`^base {6}version ${head.version} b3:[0-9a-f]{64}; the head is version ${head.version + 1} b3:`, 'm'),
    );
    expect(review.stdout).toContain(
      'ops (1 put, 0 deletes; the base is not the head, so they are shown without its descriptors):\n  put svc-f\n',
    );
    expect(review.stdout).toMatch(
      /STALE: its base, version \d+, is not the head \(version \d+\); it can never commit: propose it again on the head \(exit 3\)\n$/,
    );
    expect(approve.code).toBe(3);
    expect(approve.stderr).toMatch(
      /\nregistry: b3:[0-9a-f]{64} is stale: its base \(version \d+\) is not the head \(version \d+\); nothing was signed/,
    );
    expect(await status(second)).toMatchObject({ status: 'stale', approvals: [{ signer_id: 'alice' }] });
  });

  it('says a proposal has expired', async () => {
    const id = await propose([put('svc-g')], '--ttl-hours', '0.0003');
    // Its expiry, once the registry's sweep (every second) has settled it: then both refuse it.
    await vi.waitFor(
      async () => expect((await request<ProposalJson>(url, 'GET', `/registry/proposals/${id}`)).json.status).toBe('expired'),
      {
        timeout: 10_000,
        interval: 50,
      },
    );
    const [review, approve] = await Promise.all([
      cli('review', id, '--url', url),
      cli('approve', id, '--url', url, '--key', 'bob.key', '--yes'),
    ]);
    expect(review.code).toBe(5);
    expect(review.stdout).toMatch(/EXPIRED: it can no longer be approved \(exit 5\)\n$/);
    expect(approve.code).toBe(5);
    expect(approve.stderr).toMatch(/registry: b3:[0-9a-f]{64} has expired: nothing was signed; propose it again\n$/);
  });

  it('shows puts, deletes and a rotation field by field, before and after the commit; a proposed signer’s key is checked against the proposed set', async () => {
    const rotation = signerSet([keys.alice!, keys.bob!, keys.dave!], 3);
    const id = await propose(
      [
        put('svc-a', { region: 'us', owner: 'ops' }, { port: 8443, tls: { cert: 'b' } }),
        del('svc-b'),
        put('svc-new', { tier: 'bronze' }, { addr: '10.0.0.9:443', list: [1, 2] }),
        put('svc-c', {}, { x: 1 }),
        setSigners(rotation),
      ],
      '--reason',
      'rotate and tidy \u001b[2K',
    );
    const pendingReview = await cli('review', id, '--url', url, '--registry-id', REG);
    expect(pendingReview.code).toBe(0);
    const changes = (out: string) => out.slice(out.indexOf('changes against the base'), out.lastIndexOf('\n\n'));
    const shown = changes(pendingReview.stdout);
    const dave = keys.dave!.publicKey;
    const carol = keys.carol!.publicKey;
    expect(shown.split('\n')).toEqual([
      'changes against the base (3 puts, 1 delete, a new signer set):',
      '  ~ svc-a: changed',
      '      labels.owner   added "ops"',
      '      labels.region  "eu" → "us"',
      '      labels.tier    removed (was "gold")',
      '      body.port      443 → 8443',
      '      body.tls.cert  "a" → "b"',
      '  - svc-b: removed',
      '      kind           "service"',
      '      labels.region  "eu"',
      '      body.port      80',
      '  + svc-new: added',
      '      kind         "service"',
      '      labels.tier  "bronze"',
      '      body.addr    "10.0.0.9:443"',
      '      body.list    [1,2]',
      '  = svc-c: unchanged (the same descriptor again)',
      '',
      'signer set: threshold 2 of 3 → 3 of 3',
      `    alice        ${keys.alice!.publicKey}  kept`,
      `    bob          ${keys.bob!.publicKey}  kept`,
      `  + dave         ${dave}  added`,
      `  - carol        ${carol}  removed`,
    ]);
    expect(pendingReview.stdout).toContain('registry  e2e-review (as expected: --registry-id)');
    expect(pendingReview.stdout).toContain('reason    rotate and tidy \\u001b[2K\n');
    expect(pendingReview.stdout).toContain(
      'status    pending: 1 approval (alice), 2 needed, and 3 of the proposed signers; as the registry reports',
    );

    // dave is no signer yet, but his key is the proposed set's: his approval counts there.
    const byDave = JSON.parse(await ok('approve', id, '--url', url, '--key', 'dave.key', '--yes')) as ProposalView;
    expect(byDave).toMatchObject({ status: 'pending', approvals: [{ signer_id: 'alice' }, { signer_id: 'dave' }] });
    const committed = JSON.parse(await ok('approve', id, '--url', url, '--key', 'bob.key', '--yes')) as ProposalView;
    expect(committed.status).toBe('committed');

    const [after, late] = await Promise.all([
      cli('review', id, '--url', url),
      cli('approve', id, '--url', url, '--key', 'carol.key', '--yes'),
    ]);
    expect(after.code).toBe(4);
    expect(changes(after.stdout)).toBe(shown);
    expect(after.stdout).toMatch(new RegExp(`COMMITTED as version ${committed.version}: there is nothing to approve \\(exit 4\\)\\n$`));
    expect(late.code).toBe(4);
    expect(late.stderr).toMatch(
      new RegExp(`registry: ${id} is already committed \\(version ${committed.version}\\): nothing was signed\\n$`),
    );
  });

  it('lists proposals, reads the audit log and gets descriptors', async () => {
    const [committed, json, audit, got, gone] = await Promise.all([
      ok('proposals', '--url', url, '--status', 'committed'),
      ok('proposals', '--url', url, '--json', '--limit', '2'),
      cli('audit', '--url', url, '--from-seq', '1', '--limit', '3'),
      ok('get', 'svc-new', '--url', url),
      cli('get', 'svc-b', '--url', url),
    ]);
    const lines = committed.trim().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^${seedId} {2}committed 2/2 alice,bob {2}\\S+ version 1$`));
    expect(lines.every((l) => / committed /.test(l))).toBe(true);
    expect(
      json
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as ProposalView).proposal_id)[0],
    ).toBe(seedId);
    expect(audit.code).toBe(0);
    expect(audit.stdout.trim().split('\n')).toEqual([
      expect.stringMatching(new RegExp(`^1 \\S+ proposal_received ${seedId}$`)),
      expect.stringMatching(new RegExp(`^2 \\S+ approval_accepted ${seedId} by alice$`)),
      expect.stringMatching(new RegExp(`^3 \\S+ approval_accepted ${seedId} by bob$`)),
    ]);
    expect(audit.stderr).toBe('more may follow: registry audit --from-seq 4\n');
    expect(JSON.parse(got)).toMatchObject({ descriptor: { id: 'svc-new', labels: { tier: 'bronze' } } });
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/404 NotFound no descriptor svc-b/);
  });

  describe('against a registry that lies', () => {
    let fake: HttpServer;
    let fakeUrl = '';
    const posted: string[] = [];
    const served = new Map<string, unknown>();

    beforeAll(async () => {
      const head = { version: 0, hash: `b3:${'0'.repeat(64)}` };
      fake = createHttpServer((req, res) => {
        const path = decodeURIComponent(req.url ?? '');
        if (req.method === 'POST') posted.push(path);
        const id = /^\/registry\/proposals\/(b3:[0-9a-f]{64})$/.exec(path)?.[1];
        const body =
          path === '/version'
            ? { service: 'fake', version: '0', schema_version: 1, registry_id: REG, genesis_hash: head.hash }
            : path === '/registry/head'
              ? {
                  ...head,
                  prev_hash: null,
                  state_root: head.hash,
                  committed_at: '2026-01-01T00:00:00.000Z',
                  descriptor_count: 0,
                  signer_set: signerSet([keys.alice!, keys.bob!], 2),
                }
              : id && served.has(id)
                ? { proposal_id: id, status: 'pending', approvals: [{ signer_id: 'alice' }], threshold: 2, payload: served.get(id) }
                : undefined;
        res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body ?? { error: { code: 'NotFound', message: 'no', hint: '', retryable: false, request_id: 'x' } }));
      });
      await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
      fakeUrl = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
      const base = { version: 0, hash: `b3:${'0'.repeat(64)}` };
      const honest = proposal(REG, base, [put('svc-z')], { reason: 'what alice signed' });
      served.set(hashOf(honest), { ...honest, reason: 'what the server shows' });
      const foreign = proposal('prod-eu', base, [put('svc-z')]);
      served.set(hashOf(foreign), foreign);
    });
    afterAll(() => new Promise<void>((resolve) => fake.close(() => resolve())));

    it('refuses a payload that does not hash to the id asked for, and a proposal for another registry, signing nothing', async () => {
      const [tampered, foreign] = [...served.keys()];
      const [review, approve, other] = await Promise.all([
        cli('review', tampered!, '--url', fakeUrl),
        cli('approve', tampered!, '--url', fakeUrl, '--key', 'bob.key', '--yes'),
        cli('approve', foreign!, '--url', fakeUrl, '--key', 'bob.key', '--yes'),
      ]);
      expect(review.code).toBe(6);
      expect(review.stdout).toBe('');
      expect(review.stderr).toMatch(
        new RegExp(
          `^registry: the registry at ${fakeUrl} served a payload that hashes to b3:[0-9a-f]{64}, not ${tampered}: it is not the proposal asked for; nothing was signed\\n$`,
        ),
      );
      expect(approve.code).toBe(6);
      expect(other.code).toBe(7);
      expect(other.stderr).toBe(
        `registry: the proposal is for registry prod-eu, not ${REG} (the registry at ${fakeUrl}): an approval would count there, not here\n`,
      );
      expect(posted).toEqual([]);
    });
  });
});
