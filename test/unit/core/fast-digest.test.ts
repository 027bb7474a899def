import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { blake3Digest, toHex } from '../../../src/core/encoding.js';
import type { Descriptor } from '../../../src/core/schemas.js';
import { planOps, RegistryState } from '../../../src/core/state.js';
import { fastDigest } from '../../../src/core/fast-digest.js';
import { signers, signerSet } from '../../helpers/fixtures.js';

describe('the WebAssembly BLAKE3 used for state roots', () => {
  it('agrees with @noble on random inputs of every size', async () => {
    const fast = await fastDigest();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), (bytes) => {
        expect(toHex(fast(bytes))).toBe(toHex(blake3Digest(bytes)));
      }),
      { numRuns: 300 },
    );
    const big = new Uint8Array(3_000_000).map((_, i) => i * 7);
    expect(toHex(fast(big))).toBe(toHex(blake3Digest(big)));
  });

  it('gives the same state root as @noble', async () => {
    const set = signerSet(signers('alice', 'bob'), 1);
    const fast = new RegistryState(set, await fastDigest());
    const noble = new RegistryState(set);
    const descriptors: Descriptor[] = Array.from({ length: 700 }, (_, i) => ({
      id: `d-${i}`,
      kind: 'node',
      labels: { n: String(i) },
      body: { i, s: 'é€😀' },
    }));
    for (const state of [fast, noble])
      state.apply(
        planOps(
          state,
          descriptors.map((descriptor) => ({ op: 'put' as const, descriptor })),
          1,
        ),
      );
    expect(fast.root()).toBe(noble.root());
    const change = [
      { op: 'delete' as const, id: 'd-3' },
      { op: 'put' as const, descriptor: { id: 'new', kind: 'x', labels: {}, body: {} } },
    ];
    expect(fast.rootAfter(planOps(fast, change, 2))).toBe(noble.rootAfter(planOps(noble, change, 2)));
  });
});
