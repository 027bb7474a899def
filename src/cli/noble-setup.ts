// @noble/ed25519's synchronous functions need a SHA-512 implementation handed to them. The
// program's edge does that once, here (the CLI at start, the tests in their setup file),
// instead of the core doing it as a side effect of being imported.
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';

export function useNobleSha512(): void {
  ed.hashes.sha512 ??= sha512;
}
