// Unit tests of src/core/signers.ts (SPEC §3): signer-set rules, rotations, quorum.
import { describe, expect, it } from 'vitest';
import type { SignerSet } from '../../../src/core/schemas.js';
import { hasQuorum, keyOf, rotationProblem, signerSetProblem } from '../../../src/core/signers.js';
import { signers, signerSet } from '../../helpers/fixtures.js';
import { alice, bob, carol, dave, IDENTITY_KEY, set3 } from './fixtures.js';

describe('signerSetProblem (SPEC §3)', () => {
  it('accepts a well-formed set, threshold 1 to n', () => {
    expect(signerSetProblem(set3)).toBeUndefined();
    expect(signerSetProblem({ ...set3, threshold: 1 })).toBeUndefined();
    expect(signerSetProblem({ ...set3, threshold: 3 })).toBeUndefined();
  });

  it('refuses threshold 0', () => {
    expect(signerSetProblem({ ...set3, threshold: 0 })).toMatch(/threshold/);
  });

  it('refuses a threshold above the number of signers', () => {
    expect(signerSetProblem({ ...set3, threshold: 4 })).toMatch(/threshold/);
  });

  it('refuses signers not in ascending order of id', () => {
    const [a, b, c] = set3.signers;
    expect(signerSetProblem({ threshold: 2, signers: [b!, a!, c!] })).toMatch(/ascending/);
    expect(signerSetProblem({ threshold: 2, signers: [a!, c!, b!] })).toMatch(/ascending/);
  });

  it("compares ids by bytes ('-' < '.' < '0' < '_' < 'a'), not by locale", () => {
    const [x, y] = signers('x', 'y');
    // Signer ids are [a-z0-9._-]: '-' (0x2d) < '.' (0x2e) < '0' (0x30) < '_' (0x5f) < 'a'.
    const ids = ['a-b', 'a.b', 'a0', 'a_b'];
    const keys = [x!, y!, ...signers('z', 'w')];
    const set: SignerSet = { threshold: 1, signers: ids.map((id, i) => ({ id, public_key: keys[i]!.publicKey })) };
    expect(signerSetProblem(set)).toBeUndefined();
    expect(signerSetProblem({ threshold: 1, signers: [...set.signers].reverse() })).toMatch(/ascending/);
  });

  it('refuses a duplicate id', () => {
    const [a, b] = set3.signers;
    expect(signerSetProblem({ threshold: 2, signers: [a!, { id: 'alice', public_key: b!.public_key }] })).toMatch(/once|ascending/);
  });

  it('refuses a duplicate key under two ids', () => {
    const [a] = set3.signers;
    expect(signerSetProblem({ threshold: 1, signers: [a!, { id: 'zed', public_key: a!.public_key }] })).toMatch(/key/);
  });

  it('refuses a small-order key (the identity)', () => {
    const set: SignerSet = { threshold: 1, signers: [...set3.signers, { id: 'mallory', public_key: IDENTITY_KEY }] };
    expect(signerSetProblem(set)).toMatch(/small-order/);
  });

  it('refuses a key that is not a canonical point', () => {
    const nonCanonical = `ee${'ff'.repeat(30)}7f`; // y = p + 1
    expect(signerSetProblem({ threshold: 1, signers: [{ id: 'mallory', public_key: nonCanonical }] })).toMatch(/mallory/);
  });
});

describe('rotationProblem (SPEC §3: an id names one key)', () => {
  it('accepts dropping a signer and adding a new id with a new key', () => {
    const next = signerSet([alice!, bob!, dave!], 2);
    expect(rotationProblem([set3], next)).toBeUndefined();
  });

  it('refuses a kept id with a new key', () => {
    const next: SignerSet = {
      threshold: 2,
      signers: set3.signers.map((s) => (s.id === 'bob' ? { id: 'bob', public_key: dave!.publicKey } : s)),
    };
    expect(rotationProblem([set3], next)).toMatch(/bob/);
  });

  it('refuses an old key under a new id', () => {
    const next: SignerSet = {
      threshold: 2,
      signers: [set3.signers[0]!, set3.signers[1]!, { id: 'carol2', public_key: carol!.publicKey }],
    };
    expect(rotationProblem([set3], next)).toMatch(/carol/);
  });

  it('refuses an old key of a removed signer coming back under a new id', () => {
    const next: SignerSet = { threshold: 1, signers: [set3.signers[0]!, { id: 'zz', public_key: carol!.publicKey }] };
    expect(rotationProblem([set3], next)).toBeDefined();
  });
});

describe('quorum (SPEC §3)', () => {
  it('counts only approvals by signers of the set', () => {
    expect(hasQuorum({ current: set3 }, new Set(['alice']))).toBe(false);
    expect(hasQuorum({ current: set3 }, new Set(['alice', 'mallory']))).toBe(false);
    expect(hasQuorum({ current: set3 }, new Set(['alice', 'carol']))).toBe(true);
  });

  it('a rotation needs quorum under the current AND the proposed set', () => {
    const [erin, frank] = signers('erin', 'frank');
    const proposed = signerSet([alice!, erin!, frank!], 2);
    const electorate = { current: set3, proposed };
    expect(hasQuorum(electorate, new Set(['alice', 'bob']))).toBe(false); // 1 of the new set
    expect(hasQuorum(electorate, new Set(['erin', 'frank']))).toBe(false); // 0 of the current set
    expect(hasQuorum(electorate, new Set(['alice', 'bob', 'erin']))).toBe(true);
    expect(keyOf(electorate, 'erin')).toBe(erin!.publicKey);
    expect(keyOf(electorate, 'bob')).toBe(bob!.publicKey);
    expect(keyOf(electorate, 'mallory')).toBeUndefined();
  });
});
