// BLAKE3 in WebAssembly (hash-wasm), about 10x the pure-JS @noble speed measured here. The
// server injects it where bytes add up: state roots (leaves and buckets), payload ids and
// record hashes in the writer (payloads reach 1 MiB), and start-up replay. The pure core's
// default stays @noble; test/unit/fast-digest.test.ts proves the two agree.
import { createBLAKE3 } from 'hash-wasm';
import type { Digest32 } from './encoding.js';

export async function fastDigest(): Promise<Digest32> {
  const hasher = await createBLAKE3(256);
  return (bytes) => {
    hasher.init();
    hasher.update(bytes);
    return hasher.digest('binary');
  };
}
