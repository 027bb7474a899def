// BLAKE3 in WebAssembly (hash-wasm), about 10x the pure-JS @noble speed measured here, for
// the bulk hashing of state roots (leaves and buckets). Request-sized hashing stays in the
// pure core with @noble; test/unit/fast-digest.test.ts proves the two agree.
import { createBLAKE3 } from 'hash-wasm';
import type { Digest32 } from '../core/encoding.js';

export async function fastDigest(): Promise<Digest32> {
  const hasher = await createBLAKE3(256);
  return (bytes) => {
    hasher.init();
    hasher.update(bytes);
    return hasher.digest('binary');
  };
}
