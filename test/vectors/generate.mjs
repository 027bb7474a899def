#!/usr/bin/env node
// Test-vector generator for the registry wire contract (SPEC §1–§5, and §6/§9 admission).
//
// This is an INDEPENDENT implementation written from the SPEC page: it imports nothing from
// src/, only @noble/ed25519, @noble/hashes and canonicalize. Everything is deterministic
// (keys derived from fixed seeds, fixed timestamps, Ed25519 signing is deterministic), so
// running it again rewrites byte-identical files:
//
//     npm run vectors          # node test/vectors/generate.mjs
//
// Files written next to this script:
//   payload-hashes.json  b3(JCS(payload)) of proposal and genesis payloads, with the JCS text
//   approvals.json       approval signatures (§2), valid and invalid, and public keys that a
//                        signer set may or may not hold
//   records.json         a genesis record and commit records (§4), chained, with their hashes
//   state-roots.json     state roots (§5) of signer sets and descriptor lists, with follow-up steps
//   admission.json       which approvals a request may carry (§3, §6: electorate, a current signer
//                        first, another registry) and which refused ones are audited (§9: signed
//                        claims under a key the id has or had), computed from this file's reading
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { blake3 } from '@noble/hashes/blake3.js';
import canonicalize from 'canonicalize';

ed.hashes.sha512 = sha512;

const OUT = dirname(fileURLToPath(import.meta.url));
const utf8 = (text) => new TextEncoder().encode(text);
const hex = (bytes) => Buffer.from(bytes).toString('hex');
const unhex = (text) => Uint8Array.from(Buffer.from(text, 'hex'));
const concat = (parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

// ---------------------------------------------------------------------------------------
// §1 encodings: JCS text, UTF-8 bytes, BLAKE3-256 written b3:<hex>.
const jcs = (value) => {
  const text = canonicalize(value);
  if (typeof text !== 'string') throw new Error('no canonical form');
  return text;
};
const b3 = (bytes) => `b3:${hex(blake3(bytes))}`;
const hashOf = (value) => b3(utf8(jcs(value)));

// ---------------------------------------------------------------------------------------
// Ed25519 arithmetic (RFC 8032) on top of @noble/ed25519's Point.
const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const Point = ed.Point;
const B = Point.BASE;
const leToNum = (bytes) => {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
  return n;
};
const numToLe32 = (n) => {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  if (n !== 0n) throw new Error('does not fit in 32 bytes');
  return out;
};
const mulBase = (n) => (n % L === 0n ? Point.ZERO : B.multiply(n % L));
const mulPoint = (pt, n) => (n === 0n ? Point.ZERO : pt.multiply(n, false));
/** k = SHA-512(R ‖ A ‖ M) mod L. */
const challenge = (rBytes, aBytes, msg) => leToNum(sha512(concat([rBytes, aBytes, msg]))) % L;

const DOMAIN = 'registry-approval-v1:';
const approvalMessage = (payloadHash) => utf8(DOMAIN + payloadHash);

/** Secret key i: 32 bytes of blake3('vector-key-' + i). */
const secretKey = (i) => blake3(utf8(`vector-key-${i}`));
const publicKey = (sk) => hex(ed.getPublicKey(sk));
const sign = (sk, msg) => hex(ed.sign(msg, sk));
const scalarOf = (sk) => ed.utils.getExtendedPublicKey(sk).scalar;
/** A deterministic nonce scalar for hand-built signatures. */
const nonce = (label) => leToNum(sha512(utf8(`vector-nonce-${label}`))) % L;

/** Decodes a point per RFC 8032 §5.1.3, strictly: y < p, and x = 0 only with sign bit 0. */
function decodeStrict(bytes) {
  if (bytes.length !== 32) return undefined;
  const y = leToNum(Uint8Array.from(bytes, (b, i) => (i === 31 ? b & 0x7f : b)));
  if (y >= P) return undefined;
  try {
    return Point.fromBytes(bytes, false);
  } catch {
    return undefined;
  }
}

// The registry's acceptance rule for a public key (§1, §3): 32 bytes of lowercase hex, a
// canonical point encoding, not of small order. We also require a torsion-free point (in the
// prime-order subgroup): a mixed-order key (prime-order point + small torsion) makes
// cofactored and cofactorless verifiers disagree, and an honest key never has a torsion part.
function keyProblem(pkHex) {
  if (!/^[0-9a-f]{64}$/.test(pkHex)) return 'not 64 lowercase hex characters';
  const A = decodeStrict(unhex(pkHex));
  if (!A) return 'not a canonical point encoding';
  if (A.clearCofactor().is0()) return 'small-order point';
  if (!A.isTorsionFree()) return 'mixed-order point (has a torsion component)';
  return undefined;
}

/** The reference verifier these vectors are checked against: RFC 8032 strict, cofactorless
 * ([S]B = R + [k]A), canonical R and A, S < L, key rules above. */
function verifyReference(pkHex, payloadHash, sigHex) {
  if (keyProblem(pkHex) !== undefined) return false;
  if (!/^[0-9a-f]{128}$/.test(sigHex)) return false;
  const sig = unhex(sigHex);
  const rBytes = sig.subarray(0, 32);
  const S = leToNum(sig.subarray(32));
  if (S >= L) return false;
  const R = decodeStrict(rBytes);
  if (!R) return false;
  const A = decodeStrict(unhex(pkHex));
  const k = challenge(rBytes, unhex(pkHex), approvalMessage(payloadHash));
  return mulBase(S).equals(R.add(mulPoint(A, k)));
}

// Small-order points: identity and a point of order 8.
const IDENTITY = '0100000000000000000000000000000000000000000000000000000000000000';
const ORDER8 = 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a';
const T8 = Point.fromHex(ORDER8, false);
if (!T8.clearCofactor().is0() || T8.double().double().is0()) throw new Error('ORDER8 is not of order 8');
/** y = p + 1: a non-canonical encoding of the identity. */
const IDENTITY_NONCANONICAL = hex(numToLe32(P + 1n));
/** y = p + 3: a non-canonical encoding of a (mixed-order) curve point, not of small order. */
const NONCANONICAL_POINT = hex(numToLe32(P + 3n));
if (!Point.fromBytes(unhex(NONCANONICAL_POINT), true) || Point.fromBytes(unhex(NONCANONICAL_POINT), true).clearCofactor().is0()) {
  throw new Error('y = p + 3 should decode leniently to a point not of small order');
}
const ZERO_S = '00'.repeat(32);

// ---------------------------------------------------------------------------------------
// Fixed signers and times.
const KEYS = Array.from({ length: 6 }, (_, i) => {
  const sk = secretKey(i);
  return { index: i, secret_key: hex(sk), public_key: publicKey(sk), sk };
});
const SIGNER_IDS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];
const signer = (i) => ({ id: SIGNER_IDS[i], public_key: KEYS[i].public_key });
const signerSet = (threshold, ...indices) => ({
  threshold,
  signers: indices.map(signer).sort((a, b) => Buffer.compare(Buffer.from(a.id), Buffer.from(b.id))),
});
const approval = (i, payloadHash) => ({ signer_id: SIGNER_IDS[i], sig: sign(KEYS[i].sk, approvalMessage(payloadHash)) });
const sortApprovals = (list) => [...list].sort((a, b) => Buffer.compare(Buffer.from(a.signer_id), Buffer.from(b.signer_id)));

const T0 = Date.parse('2026-11-22T17:00:00.000Z');
const at = (minutes) => new Date(T0 + minutes * 60_000).toISOString();
const REGISTRY_ID = 'prod-eu';

// ---------------------------------------------------------------------------------------
// §5 state root, computed from scratch.
function stateRoot(descriptors, set) {
  const buckets = Array.from({ length: 256 }, () => []);
  for (const d of descriptors) {
    const key = blake3(utf8(d.id));
    const leaf = blake3(utf8(jcs(d)));
    buckets[key[0]].push({ key, leaf });
  }
  const parts = [utf8('registry-state-v1')];
  for (const bucket of buckets) {
    bucket.sort((x, y) => Buffer.compare(Buffer.from(x.key), Buffer.from(y.key)));
    parts.push(blake3(concat(bucket.flatMap((e) => [e.key, e.leaf]))));
  }
  parts.push(blake3(utf8(jcs(set))));
  return b3(concat(parts));
}

/** Applies ops to a Map id → descriptor and a signer set (no validation: the inputs are valid). */
function applyOps(state, ops) {
  for (const op of ops) {
    if (op.op === 'put') state.descriptors.set(op.descriptor.id, op.descriptor);
    else if (op.op === 'delete') state.descriptors.delete(op.id);
    else state.signerSet = op.signer_set;
  }
}

// ---------------------------------------------------------------------------------------
// Descriptors and payloads.
const descriptor = (id, kind, labels, body, expiresAt) => ({
  id,
  kind,
  labels,
  body,
  ...(expiresAt === undefined ? {} : { expires_at: expiresAt }),
});

const proposal = (base, ops, extra = {}) => ({
  type: 'registry.proposal',
  schema_version: 1,
  registry_id: REGISTRY_ID,
  base_version: base.version,
  base_hash: base.hash,
  ops,
  created_at: extra.created_at ?? at(0),
  ...(extra.reason === undefined ? {} : { reason: extra.reason }),
  ...(extra.expires_at === undefined ? {} : { expires_at: extra.expires_at }),
});

const unicodeDescriptor = descriptor(
  'svc-storage@us-east-1',
  'service',
  { region: 'us-east-1', city: 'Zürich', 'team/owner': '東京チーム', emoji: '😀🚀', 'a.b-c_d': '' },
  {
    // JCS sorts keys by UTF-16 code units: '😀' (U+D83D…) sorts before '｡' (U+FF61),
    // though its code point is higher; 'é' after 'z'; 'B' before 'a'.
    '｡': 'halfwidth ideographic full stop',
    '😀': 'grinning face',
    é: 'e acute',
    z: 'zed',
    a: 'lower a',
    B: 'upper b',
    '': 'empty key',
    text: 'line\nbreak, tab\t, quote ", backslash \\, control \u0001, del \u007f, nbsp \u00a0, e\u0301 combining',
  },
  '2027-01-01T00:00:00.000Z',
);

const numbersDescriptor = descriptor(
  'node-17',
  'node',
  { weight: '10' },
  {
    big: 1e21,
    bigger: 1.2345678901234568e20,
    tenth: 0.1,
    negZero: -0,
    tiny: 1e-7,
    small: 0.000001,
    minSubnormal: 5e-324,
    max: 1.7976931348623157e308,
    maxSafe: 9007199254740991,
    negative: -42.5,
    third: 1 / 3,
    exp: 1e-300,
  },
);

const nestedDescriptor = descriptor(
  'a/b:c.d@e-f_g',
  'config',
  {},
  {
    caps: ['x', 'y', { z: [1, [2, [3, { deep: true }]]] }],
    nested: { z: { y: { x: { w: null, v: false, u: [] } } }, a: {} },
    arr: [3, 1, 2],
    flags: { on: true, off: false, nothing: null },
  },
);

const payloadCases = [
  {
    name: 'put with unicode labels and body, expires_at, reason',
    payload: proposal({ version: 41, hash: hashOf({ seed: 'base-41' }) }, [{ op: 'put', descriptor: unicodeDescriptor }], {
      reason: 'Ünïcødé reason — 理由 🚀',
      expires_at: at(72 * 60),
    }),
  },
  {
    name: 'put with numbers 1e21, 0.1, -0, 1e-7, 5e-324, max double (JCS number serialization)',
    payload: proposal({ version: 7, hash: hashOf({ seed: 'base-7' }) }, [{ op: 'put', descriptor: numbersDescriptor }]),
  },
  {
    name: 'put with nested objects and arrays',
    payload: proposal({ version: 1, hash: hashOf({ seed: 'base-1' }) }, [{ op: 'put', descriptor: nestedDescriptor }], {
      reason: '',
    }),
  },
  {
    name: 'delete',
    payload: proposal({ version: 41, hash: hashOf({ seed: 'base-41' }) }, [{ op: 'delete', id: 'node-17' }], {
      reason: 'decommissioned',
      expires_at: at(30 * 24 * 60),
    }),
  },
  {
    name: 'set_signers',
    payload: proposal({ version: 100, hash: hashOf({ seed: 'base-100' }) }, [{ op: 'set_signers', signer_set: signerSet(2, 0, 1, 3) }]),
  },
  {
    name: 'put, delete and set_signers in one proposal',
    payload: proposal(
      { version: 41, hash: hashOf({ seed: 'base-41' }) },
      [
        { op: 'put', descriptor: descriptor('svc-a', 'service', { status: 'online' }, {}) },
        { op: 'delete', id: 'svc-b' },
        { op: 'set_signers', signer_set: signerSet(1, 0) },
      ],
      { reason: 'mixed', created_at: at(1), expires_at: at(2) },
    ),
  },
  {
    name: 'genesis payload',
    payload: {
      type: 'registry.genesis',
      schema_version: 1,
      registry_id: REGISTRY_ID,
      signer_set: signerSet(2, 0, 1, 2),
      created_at: at(0),
    },
  },
];
const payloadVectors = payloadCases.map(({ name, payload }) => {
  const text = jcs(payload);
  return { name, payload, jcs: text, hash: b3(utf8(text)) };
});

// ---------------------------------------------------------------------------------------
// §2 approval signatures.
const hashA = payloadVectors[0].hash;
const hashB = payloadVectors[1].hash;
const hashC = payloadVectors[4].hash;

const sigA0 = sign(KEYS[0].sk, approvalMessage(hashA));
const flipBit = (sigHex, byte, bit) => {
  const bytes = unhex(sigHex);
  bytes[byte] ^= 1 << bit;
  return hex(bytes);
};
const sPlusL = (sigHex) => {
  const bytes = unhex(sigHex);
  const S = leToNum(bytes.subarray(32));
  return hex(concat([bytes.subarray(0, 32), numToLe32(S + L)]));
};

/** A signature whose R is rB + T (T of order 8): cofactored verifiers accept, cofactorless reject. */
function mixedOrderRSignature(i, payloadHash) {
  const msg = approvalMessage(payloadHash);
  const a = scalarOf(KEYS[i].sk);
  const A = unhex(KEYS[i].public_key);
  const r = nonce(`mixed-r-${i}`);
  const R = mulBase(r).add(T8).toBytes();
  const k = challenge(R, A, msg);
  return hex(concat([R, numToLe32((r + k * a) % L)]));
}

/** A key A' = aB + T (T of order 8) and a signature by `a` under it, chosen so that
 * k ≡ 0 (mod 8) or not: cofactorless verifiers accept only the first, cofactored both. */
function mixedOrderKeySignature(i, payloadHash, kMultipleOf8) {
  const msg = approvalMessage(payloadHash);
  const a = scalarOf(KEYS[i].sk);
  const Aprime = mulBase(a).add(T8).toBytes();
  for (let n = 0; ; n++) {
    const r = nonce(`mixed-key-${i}-${n}`);
    const R = mulBase(r).toBytes();
    const k = challenge(R, Aprime, msg);
    if ((k % 8n === 0n) === kMultipleOf8) {
      return { public_key: hex(Aprime), sig: hex(concat([R, numToLe32((r + k * a) % L)])) };
    }
  }
}

/** A trivially-valid-looking signature for a key whose discrete log we know: R is `rEncoding`
 * (an encoding of the identity), S = k·a, so [S]B = [k]A and R decodes to the identity. */
function identityRSignature(i, payloadHash, rEncoding) {
  const msg = approvalMessage(payloadHash);
  const a = scalarOf(KEYS[i].sk);
  const R = unhex(rEncoding);
  const k = challenge(R, unhex(KEYS[i].public_key), msg);
  return hex(concat([R, numToLe32((k * a) % L)]));
}

const mixedKeyK0 = mixedOrderKeySignature(2, hashA, true);
const mixedKeyK1 = mixedOrderKeySignature(2, hashA, false);

const approvalCases = [
  { name: 'valid: key 0 over payload 0', public_key: KEYS[0].public_key, payload_hash: hashA, sig: sigA0, valid: true },
  {
    name: 'valid: key 1 over payload 1',
    public_key: KEYS[1].public_key,
    payload_hash: hashB,
    sig: sign(KEYS[1].sk, approvalMessage(hashB)),
    valid: true,
  },
  {
    name: 'valid: key 2 over the set_signers payload',
    public_key: KEYS[2].public_key,
    payload_hash: hashC,
    sig: sign(KEYS[2].sk, approvalMessage(hashC)),
    valid: true,
  },
  {
    name: 'valid: key 3 over the genesis payload',
    public_key: KEYS[3].public_key,
    payload_hash: payloadVectors[6].hash,
    sig: sign(KEYS[3].sk, approvalMessage(payloadVectors[6].hash)),
    valid: true,
  },
  {
    name: 'valid: R is the identity, S = k·a (RFC 8032 §5.1.7 accepts it; only the key holder can make it)',
    public_key: KEYS[4].public_key,
    payload_hash: hashA,
    sig: identityRSignature(4, hashA, IDENTITY),
    valid: true,
  },
  {
    name: 'wrong key',
    public_key: KEYS[1].public_key,
    payload_hash: hashA,
    sig: sigA0,
    valid: false,
    why: 'signed by key 0, checked under key 1',
  },
  {
    name: 'signature over a different payload hash',
    public_key: KEYS[0].public_key,
    payload_hash: hashA,
    sig: sign(KEYS[0].sk, approvalMessage(hashB)),
    valid: false,
    why: 'the signature is over registry-approval-v1:<hash of payload 1>',
  },
  {
    name: 'flipped bit in R',
    public_key: KEYS[0].public_key,
    payload_hash: hashA,
    sig: flipBit(sigA0, 0, 0),
    valid: false,
    why: 'bit 0 of byte 0 of a valid signature flipped',
  },
  {
    name: 'flipped bit in S',
    public_key: KEYS[0].public_key,
    payload_hash: hashA,
    sig: flipBit(sigA0, 40, 3),
    valid: false,
    why: 'bit 3 of byte 40 of a valid signature flipped',
  },
  {
    name: 'flipped bit in the payload hash',
    public_key: KEYS[0].public_key,
    payload_hash: `b3:${hashA.slice(3, 66)}${hashA[66] === '0' ? '1' : '0'}`,
    sig: sigA0,
    valid: false,
    why: 'the last hex digit of the payload hash changed',
  },
  {
    name: 'signature of 63 bytes',
    public_key: KEYS[0].public_key,
    payload_hash: hashA,
    sig: sigA0.slice(0, 126),
    valid: false,
    why: 'wrong length: 63 bytes (the last byte dropped)',
  },
  {
    name: 'signature of 65 bytes',
    public_key: KEYS[0].public_key,
    payload_hash: hashA,
    sig: `${sigA0}00`,
    valid: false,
    why: 'wrong length: 65 bytes (a zero byte appended)',
  },
  {
    name: 'empty signature',
    public_key: KEYS[0].public_key,
    payload_hash: hashA,
    sig: '',
    valid: false,
    why: 'wrong length: 0 bytes',
  },
  {
    name: 'upper-case signature hex',
    public_key: KEYS[0].public_key,
    payload_hash: hashA,
    sig: sigA0.toUpperCase(),
    valid: false,
    why: 'a signature is 128 lowercase hex characters (§1)',
  },
  {
    name: 'upper-case public key hex',
    public_key: KEYS[0].public_key.toUpperCase(),
    payload_hash: hashA,
    sig: sigA0,
    valid: false,
    why: 'a public key is 64 lowercase hex characters (§1)',
  },
  {
    name: 'non-canonical S (S + L)',
    public_key: KEYS[0].public_key,
    payload_hash: hashA,
    sig: sPlusL(sigA0),
    valid: false,
    why: 'S + L, still 64 bytes: RFC 8032 strict requires S < L (signature malleability)',
  },
  {
    name: 'small-order public key: the identity, with R = identity and S = 0',
    public_key: IDENTITY,
    payload_hash: hashA,
    sig: IDENTITY + ZERO_S,
    valid: false,
    why: 'the identity key verifies this trivial signature for every message; small-order keys are refused',
  },
  {
    name: 'small-order public key: a point of order 8, with R = identity and S = 0',
    public_key: ORDER8,
    payload_hash: hashA,
    sig: IDENTITY + ZERO_S,
    valid: false,
    why: 'a small-order key; cofactored verifiers accept this trivial signature for every message',
  },
  {
    name: 'non-canonical public key: the identity encoded with y = p + 1, with R = identity and S = 0',
    public_key: IDENTITY_NONCANONICAL,
    payload_hash: hashA,
    sig: IDENTITY + ZERO_S,
    valid: false,
    why: 'y >= p is not a canonical encoding (and the point is the identity)',
  },
  {
    name: 'non-canonical public key: y = p + 3, not of small order',
    public_key: NONCANONICAL_POINT,
    payload_hash: hashA,
    sig: sigA0,
    valid: false,
    why: 'y >= p is not a canonical encoding',
  },
  {
    name: 'non-canonical R: the identity encoded with y = p + 1, S = k·a',
    public_key: KEYS[4].public_key,
    payload_hash: hashA,
    sig: identityRSignature(4, hashA, IDENTITY_NONCANONICAL),
    valid: false,
    why: 'R must be a canonical encoding (ZIP-215 verifiers accept this, RFC 8032 strict does not)',
  },
  {
    name: 'domain separator missing',
    public_key: KEYS[0].public_key,
    payload_hash: hashA,
    sig: sign(KEYS[0].sk, utf8(hashA)),
    valid: false,
    why: 'signed over the payload hash string alone, without "registry-approval-v1:"',
  },
  {
    name: 'another domain separator',
    public_key: KEYS[0].public_key,
    payload_hash: hashA,
    sig: sign(KEYS[0].sk, utf8(`registry-approval-v2:${hashA}`)),
    valid: false,
    why: 'signed over "registry-approval-v2:<hash>"',
  },
  {
    name: 'mixed-order R (rB + a point of order 8), S = r + k·a',
    public_key: KEYS[0].public_key,
    payload_hash: hashA,
    sig: mixedOrderRSignature(0, hashA),
    valid: false,
    why:
      'cofactored verification ([8]SB = [8]R + [8]kA) accepts it, cofactorless ([S]B = R + [k]A, node:crypto, libsodium) refuses it; ' +
      'both verifiers of the registry must give one answer, and the fast path refuses it',
  },
  {
    name: 'mixed-order public key (aB + a point of order 8), k ≢ 0 mod 8',
    public_key: mixedKeyK1.public_key,
    payload_hash: hashA,
    sig: mixedKeyK1.sig,
    valid: false,
    why:
      'a key with a torsion component: cofactored verifiers accept every signature, cofactorless ones only when k ≡ 0 mod 8; ' +
      'such keys are refused so that both verifiers agree',
  },
  {
    name: 'mixed-order public key (aB + a point of order 8), k ≡ 0 mod 8',
    public_key: mixedKeyK0.public_key,
    payload_hash: hashA,
    sig: mixedKeyK0.sig,
    valid: false,
    why: 'the same key as above; here even a cofactorless verifier accepts the equation, so only the key check refuses it',
  },
];

for (const v of approvalCases) {
  const got = verifyReference(v.public_key, v.payload_hash, v.sig);
  if (got !== v.valid) throw new Error(`reference verifier disagrees with the vector "${v.name}": ${got}`);
  if (v.valid && !ed.verify(unhex(v.sig), approvalMessage(v.payload_hash), unhex(v.public_key), { zip215: false })) {
    throw new Error(`@noble/ed25519 refuses the valid vector "${v.name}"`);
  }
}

const keyCases = [
  ...KEYS.map((k) => ({ name: `vector key ${k.index}`, public_key: k.public_key, acceptable: true })),
  { name: 'identity', public_key: IDENTITY, acceptable: false, why: 'small order (1)' },
  { name: 'order 2 (y = -1)', public_key: hex(numToLe32(P - 1n)), acceptable: false, why: 'small order (2)' },
  { name: 'order 4 (y = 0)', public_key: '00'.repeat(32), acceptable: false, why: 'small order (4)' },
  { name: 'order 8', public_key: ORDER8, acceptable: false, why: 'small order (8)' },
  { name: 'identity with y = p + 1', public_key: IDENTITY_NONCANONICAL, acceptable: false, why: 'non-canonical encoding (y >= p)' },
  { name: 'y = p + 3', public_key: NONCANONICAL_POINT, acceptable: false, why: 'non-canonical encoding (y >= p)' },
  {
    name: 'identity with the sign bit set',
    public_key: `${IDENTITY.slice(0, 62)}80`,
    acceptable: false,
    why: 'x = 0 with the sign bit set is not a canonical encoding (RFC 8032 §5.1.3), and the point is of small order',
  },
  { name: 'not on the curve (y = 2)', public_key: hex(numToLe32(2n)), acceptable: false, why: 'no x for y = 2' },
  { name: 'mixed order', public_key: mixedKeyK1.public_key, acceptable: false, why: 'a torsion component (aB + T8)' },
  { name: 'upper-case hex', public_key: KEYS[0].public_key.toUpperCase(), acceptable: false, why: 'not lowercase hex' },
  { name: '31 bytes', public_key: KEYS[0].public_key.slice(0, 62), acceptable: false, why: 'wrong length' },
];
for (const k of keyCases) {
  if ((keyProblem(k.public_key) === undefined) !== k.acceptable) throw new Error(`key rule disagrees with "${k.name}"`);
}

// ---------------------------------------------------------------------------------------
// §4 records: a genesis and three commits, chained.
const genesisSet = signerSet(2, 0, 1, 2); // alice, bob, carol; 2 of 3
const genesisPayload = {
  type: 'registry.genesis',
  schema_version: 1,
  registry_id: REGISTRY_ID,
  signer_set: genesisSet,
  created_at: at(0),
};
const chainState = { descriptors: new Map(), signerSet: genesisSet };
const record = (version, prevHash, payload, approverIndices, committedAt) => {
  const payloadHash = hashOf(payload);
  if (payload.type === 'registry.proposal') applyOps(chainState, payload.ops);
  return {
    type: 'registry.commit',
    schema_version: 1,
    registry_id: REGISTRY_ID,
    version,
    prev_hash: prevHash,
    payload,
    payload_hash: payloadHash,
    approvals: sortApprovals(approverIndices.map((i) => approval(i, payloadHash))),
    state_root: stateRoot([...chainState.descriptors.values()], chainState.signerSet),
    committed_at: committedAt,
  };
};
const records = [];
const pushRecord = (name, r) => {
  records.push({ name, record: r, hash: hashOf(r) });
  return { version: r.version, hash: hashOf(r) };
};
let head = pushRecord('genesis: alice, bob, carol, threshold 2', record(0, null, genesisPayload, [1, 0], genesisPayload.created_at)); // §4: a genesis is committed at its created_at
head = pushRecord(
  'v1: three puts, approved by alice and carol',
  record(
    1,
    head.hash,
    proposal(
      head,
      [
        { op: 'put', descriptor: unicodeDescriptor },
        { op: 'put', descriptor: numbersDescriptor },
        { op: 'put', descriptor: descriptor('svc-b', 'service', { status: 'online', region: 'us-west' }, { port: 8080 }) },
      ],
      { created_at: at(10), reason: 'initial services' },
    ),
    [2, 0],
    at(11),
  ),
);
head = pushRecord(
  'v2: delete, replace, and rotate to alice, bob, dave (threshold 2); approved by alice, bob and dave',
  record(
    2,
    head.hash,
    proposal(
      head,
      [
        { op: 'delete', id: 'node-17' },
        { op: 'put', descriptor: descriptor('svc-b', 'service', { status: 'offline', region: 'us-west' }, { port: 8081 }) },
        { op: 'set_signers', signer_set: signerSet(2, 0, 1, 3) },
      ],
      { created_at: at(20), expires_at: at(20 + 24 * 60) },
    ),
    [3, 1, 0],
    at(25),
  ),
);
head = pushRecord(
  'v3: a put under the new set, approved by bob and dave',
  record(
    3,
    head.hash,
    proposal(head, [{ op: 'put', descriptor: nestedDescriptor }], { created_at: at(30), reason: 'config' }),
    [1, 3],
    at(31),
  ),
);

// ---------------------------------------------------------------------------------------
// §5 state roots.
const manyDescriptors = (count, prefix) =>
  Array.from({ length: count }, (_, i) =>
    descriptor(`${prefix}-${String(i).padStart(4, '0')}`, i % 3 === 0 ? 'node' : 'service', { region: `r${i % 7}`, n: String(i) }, { i }),
  );

function stateCase(name, set, descriptors, steps = []) {
  const state = { descriptors: new Map(descriptors.map((d) => [d.id, d])), signerSet: set };
  const root = stateRoot([...state.descriptors.values()], state.signerSet);
  const outSteps = steps.map(({ name: stepName, ops }) => {
    applyOps(state, ops);
    return { name: stepName, ops, root: stateRoot([...state.descriptors.values()], state.signerSet) };
  });
  return { name, signer_set: set, descriptors, root, ...(outSteps.length ? { steps: outSteps } : {}) };
}

const many = manyDescriptors(1000, 'svc');
const bucketCounts = new Map();
for (const d of many) {
  const b = blake3(utf8(d.id))[0];
  bucketCounts.set(b, (bucketCounts.get(b) ?? 0) + 1);
}
const multiBuckets = [...bucketCounts.values()].filter((n) => n >= 3).length;
if (multiBuckets < 150 || Math.max(...bucketCounts.values()) < 6) throw new Error('expected most buckets to hold several descriptors');

const stateCases = [
  stateCase('empty state, one signer', signerSet(1, 0), []),
  stateCase('empty state, three signers, threshold 2', genesisSet, []),
  stateCase('one descriptor', genesisSet, [descriptor('svc-a', 'service', {}, {})]),
  stateCase('a few descriptors (unicode, numbers, nested, expires_at)', genesisSet, [
    unicodeDescriptor,
    numbersDescriptor,
    nestedDescriptor,
    descriptor('svc-b', 'service', { status: 'online' }, {}, '2026-01-01T00:00:00.000Z'),
  ]),
  stateCase(
    `1000 descriptors (${bucketCounts.size} buckets used, ${multiBuckets} with 3 or more, the fullest ${Math.max(...bucketCounts.values())})`,
    genesisSet,
    many,
    [
      {
        name: 'delete 100',
        ops: many
          .slice(0, 1000)
          .filter((_, i) => i % 10 === 0)
          .map((d) => ({ op: 'delete', id: d.id })),
      },
      {
        name: 'replace 50 and add 25',
        ops: [
          ...many
            .filter((_, i) => i % 20 === 1)
            .map((d) => ({ op: 'put', descriptor: { ...d, labels: { ...d.labels, status: 'changed' } } })),
          ...manyDescriptors(25, 'new').map((d) => ({ op: 'put', descriptor: d })),
        ],
      },
      { name: 'set_signers only', ops: [{ op: 'set_signers', signer_set: signerSet(2, 0, 1, 3) }] },
      {
        name: 'delete a descriptor and put it back unchanged, in two steps (first the delete)',
        ops: [{ op: 'delete', id: many[5].id }],
      },
      { name: '… then the put', ops: [{ op: 'put', descriptor: many[5] }] },
    ],
  ),
];
// Deleting and putting back must restore the root of the state before the delete.
{
  const steps = stateCases[4].steps;
  if (steps[4].root !== steps[2].root) throw new Error('delete + put back did not restore the root');
}

// ---------------------------------------------------------------------------------------
// §2, §3, §6, §9 admission: which approvals a request may carry, and which refused ones are
// audited. The registry of records.json, at its head (v3): genesis alice, bob, carol (2 of 3),
// then v2 rotated to alice, bob, dave (2 of 3), so carol is a removed signer.
//
// This generator's reading of the SPEC:
// - An approval is judged against its proposal's electorate: the set in force and, for a
//   set_signers proposal, the proposed set (§3, §4, §6). An id outside it is refused ("not a
//   signer"); an id inside it whose signature does not verify under its key is refused ("bad
//   signature"). Any refusal refuses the whole request (422 BadSignature, §6, §7). A valid
//   approval that travels with a faulty one is not itself refused: the request is.
// - A new proposal needs at least one approval by a current signer (§6). Without one, every
//   approval is refused. Until a current signer's approval verifies, the proposed set is the
//   sender's say-so: its keys are not checked and its ids not trusted (the project's choice).
// - A proposal for another registry: every approval is refused (§3, §6).
// - §9 (2026-11-23): a refused approval is audited when it is a signed claim, i.e. its
//   signature verifies under the key its id has or had in THIS registry (any set of the
//   history, never a proposed set that is not yet in force). A bad signature, or an id the
//   registry never had, proves nothing and is not audited. One approval_refused event per
//   signer id, the first signed refusal's reason, in order.
const ADMISSION_IDS = [...SIGNER_IDS, 'mallory'];
/** Secret keys: alice…frank use vector keys 0–5; mallory (never a signer) has her own seed. */
const admissionSk = (id) => (id === 'mallory' ? blake3(utf8('admission-key-mallory')) : KEYS[SIGNER_IDS.indexOf(id)].sk);
const admissionPk = (id) => publicKey(admissionSk(id));
const idSet = (threshold, ...ids) => ({
  threshold,
  signers: ids.map((id) => ({ id, public_key: admissionPk(id) })).sort((a, b) => Buffer.compare(Buffer.from(a.id), Buffer.from(b.id))),
});

const GENESIS = idSet(2, 'alice', 'bob', 'carol'); // genesis of records.json
const S1 = idSet(2, 'alice', 'bob', 'dave'); // in force since v2 of records.json
const S2 = idSet(2, 'alice', 'bob', 'frank'); // a second rotation: dave came and went
const PROPOSED = idSet(3, 'bob', 'dave', 'erin', 'frank'); // proposed: alice leaves, erin and frank join
if (jcs(GENESIS) !== jcs(genesisSet) || jcs(S1) !== jcs(chainState.signerSet))
  throw new Error('admission history is not the chain of records.json');
const HISTORY_A = [GENESIS, S1];
const HISTORY_B = [GENESIS, S1, S2];

const plainPayload = proposal(
  head,
  [{ op: 'put', descriptor: descriptor('svc-admission', 'service', { status: 'online' }, { port: 9000 }) }],
  {
    created_at: at(40),
    reason: 'admission vectors',
  },
);
const rotationPayload = proposal(head, [{ op: 'set_signers', signer_set: PROPOSED }], {
  created_at: at(41),
  reason: 'rotate to bob, dave, erin, frank',
});
const foreignPayload = { ...plainPayload, registry_id: 'prod-us' };
const laterPayload = proposal({ version: 4, hash: hashOf({ seed: 'admission-base-4' }) }, [{ op: 'delete', id: 'svc-admission' }], {
  created_at: at(50),
});
const PLAIN = hashOf(plainPayload);
const ROTATION = hashOf(rotationPayload);
const FOREIGN = hashOf(foreignPayload);
const LATER = hashOf(laterPayload);

// Approval makers: [approval, note].
const good = (id, hash) => [{ signer_id: id, sig: sign(admissionSk(id), approvalMessage(hash)) }, `${id}: valid, own key`];
const otherKey = (id, keyId, hash) => [
  { signer_id: id, sig: sign(admissionSk(keyId), approvalMessage(hash)) },
  `${id}: signed with ${keyId}'s key`,
];
const flipped = (id, hash) => [
  { signer_id: id, sig: flipBit(sign(admissionSk(id), approvalMessage(hash)), 33, 2) },
  `${id}: own key, one bit of S flipped`,
];
const junk = (id) => [
  { signer_id: id, sig: hex(concat([blake3(utf8(`junk-${id}-r`)), blake3(utf8(`junk-${id}-s`))])) },
  `${id}: 64 junk bytes`,
];
const otherPayload = (id, hash, otherHash) => [
  { signer_id: id, sig: sign(admissionSk(id), approvalMessage(otherHash)) },
  `${id}: own key, over another proposal`,
];

/** The key an id has or had in this registry: an id names one key for the registry's life. */
function historyKeys(history) {
  const keys = new Map();
  for (const set of history) {
    for (const s of set.signers) {
      if (keys.has(s.id) && keys.get(s.id) !== s.public_key) throw new Error(`${s.id} changed key`);
      keys.set(s.id, s.public_key);
    }
  }
  return keys;
}
const signedClaim = (c, a) => {
  const key = historyKeys(c.history).get(a.signer_id);
  return key !== undefined && verifyReference(key, c.proposal_id, a.sig);
};

/** The refusals for one admission case, in the order of its approvals: [id, signed, kind]. */
function admissionRefusals(c) {
  const currentKeys = new Map(c.current.signers.map((s) => [s.id, s.public_key]));
  const electorateKeys = new Map([...(c.proposed?.signers ?? []).map((s) => [s.id, s.public_key]), ...currentKeys]);
  const all = (kind) => c.approvals.map((a) => [a.signer_id, signedClaim(c, a), kind]);
  const judge = (a, keys) => {
    const key = keys.get(a.signer_id);
    if (key === undefined) return [a.signer_id, signedClaim(c, a), 'not_a_signer'];
    return verifyReference(key, c.proposal_id, a.sig) ? undefined : [a.signer_id, false, 'bad_signature'];
  };
  if (c.mode === 'foreign') return all('other_registry');
  if (c.mode === 'known') return c.approvals.map((a) => judge(a, electorateKeys)).filter(Boolean);
  // mode 'new'
  if (!c.approvals.some((a) => currentKeys.has(a.signer_id))) return all('no_current_signer');
  const currentOk = c.approvals.every((a) => !currentKeys.has(a.signer_id) || judge(a, currentKeys) === undefined);
  if (currentOk) return c.approvals.map((a) => judge(a, electorateKeys)).filter(Boolean);
  // A current signer's approval failed: the proposed set stays untrusted, so approvals by its
  // ids are not judged; any other id outside the current set is refused all the same.
  const proposedIds = new Set((c.proposed?.signers ?? []).map((s) => s.id));
  return c.approvals
    .map((a) => (currentKeys.has(a.signer_id) ? judge(a, currentKeys) : proposedIds.has(a.signer_id) ? undefined : judge(a, currentKeys)))
    .filter(Boolean);
}

function admissionCase(name, mode, { history = HISTORY_A, current = S1, proposed, proposalId = PLAIN, approvals }) {
  const c = {
    name,
    mode,
    history,
    current,
    ...(proposed === undefined ? {} : { proposed }),
    proposal_id: proposalId,
    approvals: approvals.map(([a]) => a),
    notes: approvals.map(([, note]) => note),
  };
  if (jcs(current) !== jcs(history[history.length - 1])) throw new Error(`${name}: current is not the last set of history`);
  const refused = admissionRefusals(c);
  if (refused.length === 0) return { ...c, ok: true };
  const audited = [];
  for (const [id, signed] of refused) if (signed && !audited.includes(id)) audited.push(id);
  return {
    ...c,
    ok: false,
    refusals: refused.map(([id, signed]) => [id, signed]),
    refusal_kinds: refused.map(([, , kind]) => kind),
    audited,
  };
}

const admissionCases = [
  // judgeApprovals: a proposal the registry already holds, no rotation.
  admissionCase('known: two current signers, both valid', 'known', { approvals: [good('alice', PLAIN), good('bob', PLAIN)] }),
  admissionCase("known: a member's name signed with another key (bob's name, mallory's key)", 'known', {
    approvals: [good('alice', PLAIN), otherKey('bob', 'mallory', PLAIN)],
  }),
  admissionCase("known: a flipped bit in a current signer's signature", 'known', {
    approvals: [flipped('alice', PLAIN), good('bob', PLAIN)],
  }),
  admissionCase('known: an id the registry never had (mallory), valid under her own key', 'known', {
    approvals: [good('alice', PLAIN), good('mallory', PLAIN)],
  }),
  admissionCase('known: a removed signer (carol), valid under her old key, is audited', 'known', {
    approvals: [good('alice', PLAIN), good('carol', PLAIN), good('bob', PLAIN)],
  }),
  admissionCase('known: a removed signer (carol) with a junk signature is not audited', 'known', { approvals: [junk('carol')] }),
  admissionCase('known: a removed signer (carol) replaying her signature of another proposal is not audited', 'known', {
    approvals: [otherPayload('carol', PLAIN, LATER)],
  }),
  admissionCase('known: a signer removed two sets back (dave, in force only in the middle set), valid under his old key', 'known', {
    history: HISTORY_B,
    current: S2,
    proposalId: LATER,
    approvals: [good('frank', LATER), good('dave', LATER), good('carol', LATER)],
  }),
  admissionCase("known: a would-be signer's valid approval of a proposal that is not a rotation (erin)", 'known', {
    approvals: [good('alice', PLAIN), good('erin', PLAIN)],
  }),
  admissionCase('known: a duplicate approval by the same current signer, both valid', 'known', {
    approvals: [good('alice', PLAIN), good('alice', PLAIN)],
  }),
  admissionCase('known: a removed signer twice, a junk signature then a valid one: one event, for the signed one', 'known', {
    approvals: [junk('carol'), good('bob', PLAIN), good('carol', PLAIN), good('carol', PLAIN)],
  }),
  admissionCase('known: everything at once (valid, stranger, bad signature, removed junk, removed valid)', 'known', {
    approvals: [
      good('alice', PLAIN),
      good('mallory', PLAIN),
      flipped('bob', PLAIN),
      junk('carol'),
      good('carol', PLAIN),
      otherKey('dave', 'carol', PLAIN),
    ],
  }),
  // judgeApprovals for a rotation: the electorate is the current set plus the proposed set.
  admissionCase('known rotation: current and proposed signers, all valid', 'known', {
    proposed: PROPOSED,
    proposalId: ROTATION,
    approvals: [good('alice', ROTATION), good('bob', ROTATION), good('dave', ROTATION), good('erin', ROTATION), good('frank', ROTATION)],
  }),
  admissionCase('known rotation: proposed signers only, valid (the proposal is already vouched for)', 'known', {
    proposed: PROPOSED,
    proposalId: ROTATION,
    approvals: [good('erin', ROTATION), good('frank', ROTATION)],
  }),
  admissionCase('known rotation: a removed signer (carol) is not in the proposed set either', 'known', {
    proposed: PROPOSED,
    proposalId: ROTATION,
    approvals: [good('bob', ROTATION), good('carol', ROTATION)],
  }),
  // judgeNewProposal.
  admissionCase('new: one valid current signer', 'new', { approvals: [good('bob', PLAIN)] }),
  admissionCase('new: a duplicate approval by the same current signer, the second flipped', 'new', {
    approvals: [good('bob', PLAIN), flipped('bob', PLAIN)],
  }),
  admissionCase('new: no current signer: a removed signer (valid old key, audited) and a stranger', 'new', {
    approvals: [good('carol', PLAIN), good('mallory', PLAIN)],
  }),
  admissionCase('new rotation: proposed signers only, valid under their proposed keys: refused, not audited', 'new', {
    proposed: PROPOSED,
    proposalId: ROTATION,
    approvals: [good('erin', ROTATION), good('frank', ROTATION)],
  }),
  admissionCase('new rotation: no current signer: a proposed signer, a removed signer twice (valid, junk)', 'new', {
    proposed: PROPOSED,
    proposalId: ROTATION,
    approvals: [good('erin', ROTATION), good('carol', ROTATION), junk('carol')],
  }),
  admissionCase('new rotation: current and proposed signers, all valid', 'new', {
    proposed: PROPOSED,
    proposalId: ROTATION,
    approvals: [good('erin', ROTATION), good('alice', ROTATION), good('frank', ROTATION), good('bob', ROTATION), good('dave', ROTATION)],
  }),
  admissionCase("new rotation: a current signer valid, a proposed signer's flipped signature", 'new', {
    proposed: PROPOSED,
    proposalId: ROTATION,
    approvals: [good('alice', ROTATION), flipped('erin', ROTATION)],
  }),
  admissionCase('new rotation: a current signer valid, a removed signer valid under her old key (audited)', 'new', {
    proposed: PROPOSED,
    proposalId: ROTATION,
    approvals: [good('dave', ROTATION), good('carol', ROTATION)],
  }),
  admissionCase("new rotation: a current signer's bad signature: the proposed signers are not judged", 'new', {
    proposed: PROPOSED,
    proposalId: ROTATION,
    approvals: [otherKey('alice', 'mallory', ROTATION), good('erin', ROTATION), flipped('frank', ROTATION)],
  }),
  admissionCase("new: a current signer's bad signature next to a removed signer's valid one (still audited)", 'new', {
    approvals: [otherKey('alice', 'mallory', PLAIN), good('carol', PLAIN)],
  }),
  // refuseAll: a proposal for another registry.
  admissionCase(
    'foreign: a proposal for another registry: signed claims by current and removed signers are audited, once each',
    'foreign',
    {
      proposalId: FOREIGN,
      approvals: [
        good('alice', FOREIGN),
        good('carol', FOREIGN),
        good('mallory', FOREIGN),
        flipped('bob', FOREIGN),
        good('erin', FOREIGN),
        good('alice', FOREIGN),
      ],
    },
  ),
];
{
  // Every branch is covered, and the notes say what the reference verifier finds.
  const kinds = new Set(admissionCases.flatMap((c) => c.refusal_kinds ?? []));
  for (const k of ['not_a_signer', 'bad_signature', 'no_current_signer', 'other_registry'])
    if (!kinds.has(k)) throw new Error(`no ${k} case`);
  for (const mode of ['known', 'new'])
    if (!admissionCases.some((c) => c.mode === mode && c.ok)) throw new Error(`no accepted ${mode} case`);
  for (const mode of ['known', 'new', 'foreign'])
    if (!admissionCases.some((c) => c.mode === mode && !c.ok)) throw new Error(`no refused ${mode} case`);
  if (!admissionCases.some((c) => c.refusals?.some(([, s]) => s) && c.refusals.some(([, s]) => !s))) throw new Error('no mixed case');
  if (
    !admissionCases.some(
      (c) => c.audited && new Set(c.refusals.filter(([, s]) => s).map(([id]) => id)).size < c.refusals.filter(([, s]) => s).length,
    )
  ) {
    throw new Error('no case where audit events are deduplicated');
  }
  for (const c of admissionCases) {
    c.approvals.forEach((a, i) => {
      const ownKey = verifyReference(admissionPk(a.signer_id), c.proposal_id, a.sig);
      if (ownKey !== c.notes[i].endsWith('valid, own key')) throw new Error(`${c.name}: note "${c.notes[i]}" is wrong`);
    });
  }
  if (new Set(admissionCases.map((c) => c.name)).size !== admissionCases.length) throw new Error('duplicate admission case names');
  if (ADMISSION_IDS.some((id) => !/^[a-z0-9._-]{1,64}$/.test(id))) throw new Error('bad signer id');
}

// ---------------------------------------------------------------------------------------
const write = (file, value) => writeFileSync(join(OUT, file), `${JSON.stringify(value, null, 2)}\n`);
const note =
  'Generated by test/vectors/generate.mjs (npm run vectors), an implementation of SPEC §1–§5 independent of src/. Do not edit by hand.';

write('payload-hashes.json', {
  description: `${note} hash = "b3:" + hex(BLAKE3-256(UTF-8(jcs))), jcs = RFC 8785 text of payload. Note: JSON cannot carry -0, so "negZero" reads back as 0; its JCS form is 0 either way.`,
  vectors: payloadVectors,
});
write('approvals.json', {
  description: `${note} sig is an Ed25519 signature over the ASCII bytes of "registry-approval-v1:" + payload_hash; valid says whether the registry must accept it (both verifiers).`,
  domain: DOMAIN,
  keys: KEYS.map(({ index, secret_key, public_key }) => ({ index, seed: `vector-key-${index}`, secret_key, public_key })),
  vectors: approvalCases,
  public_keys: keyCases,
});
write('records.json', {
  description: `${note} hash = b3(JCS(record)); records[i].record.prev_hash = records[i-1].hash; signer ids alice, bob, carol, dave use vector keys 0, 1, 2, 3 of approvals.json.`,
  registry_id: REGISTRY_ID,
  signers: SIGNER_IDS.slice(0, 4).map((id, i) => ({ id, secret_key: KEYS[i].secret_key, public_key: KEYS[i].public_key })),
  records,
});
write('admission.json', {
  description:
    `${note} Which approvals a request may carry (§3, §6) and which refusals are audited (§9). mode "known": the approvals of a proposal ` +
    'the registry holds, judged against its electorate (current set, plus proposed set for a rotation); "new": the approvals sent with a ' +
    'new proposal (at least one by a current signer, whose approvals are checked before the proposed set is trusted); "foreign": a ' +
    'proposal for another registry (all refused). history lists every signer set in force so far, genesis first; current is its last. ' +
    'When ok is false, refusals lists [signer_id, signed] in order (signed: the signature verifies under the key the id has or had in ' +
    'history), refusal_kinds the reason of each, and audited the signer ids of the approval_refused events, in order (one per id, ' +
    'signed refusals only). notes say what each approval is. The whole request is refused (422 BadSignature) when any approval is.',
  registry_id: REGISTRY_ID,
  signers: ADMISSION_IDS.map((id) => ({ id, secret_key: hex(admissionSk(id)), public_key: admissionPk(id) })),
  payloads: [
    { name: 'plain: a put on the head of records.json', payload: plainPayload, hash: PLAIN },
    { name: 'rotation: set_signers to the proposed set', payload: rotationPayload, hash: ROTATION },
    { name: 'foreign: the plain payload for registry prod-us', payload: foreignPayload, hash: FOREIGN },
    { name: 'later: a delete on a later head (history with two rotations)', payload: laterPayload, hash: LATER },
  ],
  cases: admissionCases,
});
write('state-roots.json', {
  description: `${note} root = b3("registry-state-v1" ‖ bucket_hash(0..255) ‖ b3(JCS(signer_set))); each step's ops apply to the state after the previous step, and root is the state root after them.`,
  vectors: stateCases,
});
console.log(
  `wrote ${payloadVectors.length} payload hashes, ${approvalCases.length} approvals + ${keyCases.length} keys, ${records.length} records, ${stateCases.length} state roots, ${admissionCases.length} admission cases to ${OUT}`,
);
