// The auditor's signature paths: --fast (Node's crypto) must give strict @noble/ed25519's verdict
// on every vector, small-order and mixed-order keys included; the worker pool must report the
// first failure in the order the replay took the approvals, whatever order the threads finish in;
// and BLAKE3 in WebAssembly must hash as @noble does.
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { signApproval, generateKeyPair } from '../../../src/core/crypto.js';
import { b3, b3raw, fastHashes, verifyApproval, verifyApprovalFast } from '../../../src/verify/primitives.js';
import { LogError, Replay } from '../../../src/verify/replay.js';
import { IN_THREAD_BELOW, SignatureVerifier, type SignatureJob } from '../../../src/verify/signatures.js';
import { assertBuilt } from '../../helpers/cli.js';

const approvals = JSON.parse(readFileSync(new URL('../../vectors/approvals.json', import.meta.url), 'utf8')) as {
  vectors: { name: string; public_key: string; payload_hash: string; sig: string; valid: boolean }[];
};
const records = JSON.parse(readFileSync(new URL('../../vectors/records.json', import.meta.url), 'utf8')) as {
  records: { record: Record<string, unknown>; hash: string }[];
};

describe('--fast: Node crypto Ed25519', () => {
  it.each(approvals.vectors.map((v) => [v.name, v] as const))('gives the strict verdict on vector %s', (_name, v) => {
    expect(verifyApprovalFast(v.public_key, v.payload_hash, v.sig)).toBe(v.valid);
    expect(verifyApprovalFast(v.public_key, v.payload_hash, v.sig)).toBe(verifyApproval(v.public_key, v.payload_hash, v.sig));
  });

  it('refuses a small-order key itself, where OpenSSL alone would accept a signature under it', () => {
    // The identity point (y = 1) has order 1: with it, R = [S]B verifies for ANY message.
    const identity = '01' + '00'.repeat(31);
    const sBytes = Buffer.alloc(32);
    sBytes[0] = 1;
    // R = [1]B, the base point's encoding
    const base = '5866666666666666666666666666666666666666666666666666666666666666';
    const sig = base + sBytes.toString('hex');
    const hash = 'b3:' + '7'.repeat(64);
    const spki = createPublicKey({ key: Buffer.from('302a300506032b6570032100' + identity, 'hex'), format: 'der', type: 'spki' });
    expect(cryptoVerify(null, Buffer.from(`registry-approval-v1:${hash}`), spki, Buffer.from(sig, 'hex'))).toBe(true);
    expect(verifyApprovalFast(identity, hash, sig)).toBe(false);
    expect(verifyApproval(identity, hash, sig)).toBe(false);
  });
});

const keys = generateKeyPair();
const hashOf = (i: number) => 'b3:' + i.toString(16).padStart(64, '0');
const job = (i: number, valid: boolean): SignatureJob => ({
  key: keys.publicKey,
  payloadHash: hashOf(i),
  sig: signApproval(keys.secretKey, hashOf(valid ? i : i + 1)),
  failure: () => new Error(`job ${i}`),
});

describe('the signature pool', () => {
  it('verifies on worker threads and reports the FIRST failing job in the order taken', async () => {
    assertBuilt();
    for (const fast of [false, true]) {
      const sigs = new SignatureVerifier({ workers: 2, fast });
      try {
        // 300 jobs in batches of 128 over two threads; 150 and 290 fail, 290's batch is the last
        for (let i = 0; i < 300; i++) {
          sigs.add(job(i, i !== 150 && i !== 290));
          if (sigs.mustWait) await sigs.wait().catch(() => undefined);
        }
        const first = await sigs.settle();
        expect(first?.message).toBe('job 150');
        expect(sigs.threads).toBe(2);
        expect(sigs.verified).toBe(300);
        expect(sigs.describe()).toMatch(fast ? /Node crypto .* on 2 worker threads/ : /strict .* on 2 worker threads/);
      } finally {
        await sigs.close();
      }
    }
  });

  it('reports the first failure in order even when a later batch comes back first', async () => {
    // 0..63 go to one thread, 64..191 (150 fails) to the other; 192 (fails) goes, alone, to the
    // first thread once it is free, and so comes back long before the 128 of the second thread.
    const sigs = new SignatureVerifier({ workers: 2 });
    try {
      for (let i = 0; i < 193; i++) sigs.add(job(i, i !== 150 && i !== 192));
      expect((await sigs.settle())?.message).toBe('job 150');
    } finally {
      await sigs.close();
    }
  });

  it('wait() throws the first failure once known, having settled everything taken before it', async () => {
    const sigs = new SignatureVerifier({ workers: 1 });
    try {
      let thrown: unknown;
      for (let i = 0; i < 2000 && thrown === undefined; i++) {
        sigs.add(job(i, i !== 70));
        if (sigs.mustWait) await sigs.wait().catch((e: unknown) => (thrown = e));
      }
      expect((thrown as Error).message).toBe('job 70');
      // it stopped the replay early: far fewer than the 2000 jobs were taken
      expect(sigs.verified).toBeLessThan(1500);
    } finally {
      await sigs.close();
    }
  });

  it(`verifies in-thread when fewer than ${IN_THREAD_BELOW} signatures come, or with workers: 0 (where a failure throws at once)`, async () => {
    const small = new SignatureVerifier({ workers: 2 });
    for (let i = 0; i < IN_THREAD_BELOW - 1; i++) small.add(job(i, i !== 5));
    expect((await small.settle())?.message).toBe('job 5');
    expect(small.threads).toBe(0);
    expect(small.describe()).toMatch(/in-thread \(fewer than 64\)/);
    await small.close();

    const none = new SignatureVerifier({ workers: 0 });
    none.add(job(0, true));
    expect(() => none.add(job(1, false))).toThrow('job 1');
    expect(none.describe()).toMatch(/, in-thread$/);
    await none.close();
  });

  it('feeds a replay: every approval of records.json goes through it, named by version and signer when it fails', () => {
    const taken: SignatureJob[] = [];
    const replay = new Replay((j) => taken.push(j));
    const list = records.records.map((r) => structuredClone(r.record));
    // A signature of version 3 changed (still 128 hex digits): the replay goes on, the job fails.
    const approvalsOf3 = list[3]!.approvals as { signer_id: string; sig: string }[];
    approvalsOf3[1]!.sig = approvalsOf3[0]!.sig;
    list.forEach((r, v) => replay.apply(r, v));
    expect(taken).toHaveLength(9);
    const failing = taken.filter((j) => !verifyApproval(j.key, j.payloadHash, j.sig)).map((j) => j.failure());
    expect(failing).toHaveLength(1);
    expect(failing[0]).toBeInstanceOf(LogError);
    expect(failing[0]!.message).toBe(`version 3: the approval of ${approvalsOf3[1]!.signer_id} does not verify under its key`);
  });
});

describe('BLAKE3', () => {
  it('hash-wasm (fastHashes) gives @noble digests, on sizes around its block and chunk boundaries', async () => {
    const sizes = [0, 1, 63, 64, 65, 1023, 1024, 1025, 8241, 70_000];
    const inputs = sizes.map((n) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff));
    const noble = inputs.map((x) => Buffer.from(b3raw(x)).toString('hex'));
    expect(b3('')).toBe('b3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262');
    await fastHashes();
    // each digest is its own copy, not a view that the next call overwrites
    const wasm = inputs.map((x) => b3raw(x));
    expect(wasm.map((d) => Buffer.from(d).toString('hex'))).toEqual(noble);
    expect(b3('')).toBe('b3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262');
    const replay = new Replay();
    records.records.forEach((r, v) => replay.apply(structuredClone(r.record), v));
    expect(replay.history.map((c) => c.hash)).toEqual(records.records.map((r) => r.hash));
  });
});
