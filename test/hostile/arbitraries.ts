// The hostile campaign's generators (fast-check): requests to every route of the registry,
// generated from nothing and mutated from valid ones. Two classes, kept apart because SPEC §9
// audits the refusal of a signed claim:
//
// - `unsignedRequest`: nothing in it is a signature that verifies under a key that its signer
//   id has, or had, in this registry, over the proposal it is sent for. Such a request may
//   change neither the head nor the audit log, whatever else it holds.
// - `signedRequest`: proposals and approvals signed by the registry's own keys (current and
//   removed signers), over payloads mutated BEFORE signing. They may commit, and their
//   refusals may be audited, but only under the proposal ids they carry (`mayTouch`).
//
// Big values are built at generation time from small numbers (a length, a depth), so a
// counterexample prints short.
import { createPrivateKey, sign as nodeSign, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { APPROVAL_DOMAIN } from '../../src/core/crypto.js';
import { canonicalJson, hashOf } from '../../src/core/encoding.js';
import type { Approval, Op, ProposalPayload, SignerSet } from '../../src/core/schemas.js';
import { proposal, type TestSigner } from '../helpers/fixtures.js';
import { describeRequest, type HostileRequest } from '../helpers/hostile-http.js';

/** What the generators know of the registry when a phase starts. */
export interface Ctx {
  registryId: string;
  head: { version: number; hash: string };
  /** Milliseconds: the created_at of generated proposals. */
  now: number;
  /** Descriptor ids at the head (expired ones included). */
  ids: string[];
  labelKeys: string[];
  kinds: string[];
  proposals: { pending: string[]; stale: string[]; expired: string[]; committed: string[] };
  listingCursors: string[];
  proposalCursors: string[];
  etags: string[];
  signers: { current: TestSigner[]; removed: TestSigner[]; strangers: TestSigner[] };
  /** The signer set in force. */
  signerSet: SignerSet;
  /** Approvals by the registry's signers over OTHER proposal ids, and by strangers: each
   * verifies nowhere it can be sent in this registry. */
  foreignSigs: Approval[];
}

/** A request and the proposal ids whose audit events and commits it may cause. */
export interface Generated {
  request: HostileRequest;
  mayTouch: string[];
}

/** A Generated that fast-check prints in one line (counterexamples hold megabyte bodies). */
function generated(request: HostileRequest, mayTouch: string[]): Generated {
  return { request, mayTouch, [fc.toStringMethod]: () => describeRequest(request) } as Generated;
}

// ---------------------------------------------------------------------------------------------
// Small pieces

const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const privateKeys = new Map<string, KeyObject>();
/** An Ed25519 signature over any message, with the key object kept (making one per signature
 * cost more than the signature). */
export function signRaw(secretKeyHex: string, message: string): string {
  let key = privateKeys.get(secretKeyHex);
  if (!key) {
    key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, Buffer.from(secretKeyHex, 'hex')]), format: 'der', type: 'pkcs8' });
    privateKeys.set(secretKeyHex, key);
  }
  return nodeSign(null, Buffer.from(message), key).toString('hex');
}
/** An approval signature (SPEC §2), as signApproval makes it. */
export const signApproval = (secretKeyHex: string, payloadHash: string): string => signRaw(secretKeyHex, APPROVAL_DOMAIN + payloadHash);

const L = 2n ** 252n + 27742317777372353535851937790883648493n;
/** The same signature with S + L: a non-canonical encoding that strict verifiers refuse. */
export function nonCanonical(sigHex: string): string {
  const s = BigInt('0x' + Buffer.from(sigHex.slice(64), 'hex').reverse().toString('hex')) + L;
  return sigHex.slice(0, 64) + Buffer.from(s.toString(16).padStart(64, '0'), 'hex').reverse().toString('hex');
}

/** The proposal id of a payload, or a stand-in when canonical JSON cannot hold it (a lone surrogate). */
function idOf(payload: unknown): string {
  try {
    return hashOf(payload);
  } catch {
    return `b3:${'0'.repeat(64)}`;
  }
}

/** A new connection for about a third of the requests, a kept-alive one for the rest. */
const fresh = fc.nat(2).map((n) => n === 0);

const hex = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => Buffer.from(b).toString('hex'));
/** One of `list`; an absent proposal id when the list is empty (every list here is one of ids). */
const pick = <T>(list: readonly T[]) => (list.length ? fc.constantFrom(...list) : fc.constant(`b3:${'0'.repeat(64)}` as unknown as T));

/** Text of any kind: ASCII, every Unicode plane, lone surrogates, controls. One arbitrary per
 * length, made once: fast-check builds lookup tables per grapheme arbitrary, which cost more
 * than the values they make when rebuilt per phase. */
const texts = new Map<number, fc.Arbitrary<string>>();
/** Any UTF-16 code unit (lone surrogates included) or astral character. fast-check's own
 * 'binary' unit takes seconds to build its lookup tables. */
const codeUnit = fc.oneof(
  fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
  fc.integer({ min: 0x10000, max: 0x10ffff }).map((c) => String.fromCodePoint(c)),
);
const anyText = (maxLength = 40): fc.Arbitrary<string> => {
  // Two sizes only: each grapheme arbitrary costs about 100 ms to build.
  const size = maxLength <= 12 ? 8 : 40;
  let a = texts.get(size);
  if (!a) texts.set(size, (a = makeText(size)));
  return a;
};
const makeText = (maxLength: number) =>
  fc.oneof(
    fc.string({ maxLength }),
    fc.string({ unit: 'grapheme', maxLength }),
    fc.string({ unit: codeUnit, maxLength }),
    fc.constantFrom('', ' ', '\u0000', '\ud800', '\udfff\ud800', '\u202e', '\ufeff', 'ﬀ', 'İ', '𝒳', '..', '%', '\\', "'", '"', '\r\n'),
  );

/** RawJson texts met by the toText call under way (JSON.stringify calls toJSON without context). */
let spliced: string[] = [];

/** A JSON text the generators splice in where JSON.stringify could not write it. */
export class RawJson {
  constructor(readonly text: string) {}
  /** A marker that toText replaces with the text. */
  toJSON(): string {
    spliced.push(this.text);
    return `\u0002raw${spliced.length - 1}\u0002`;
  }
  toString(): string {
    return this.text.length > 80 ? `RawJson(${this.text.slice(0, 40)}…${this.text.length})` : `RawJson(${this.text})`;
  }
}

const rawNumber = fc.constantFrom(
  '9007199254740993',
  '-9007199254740993',
  '9007199254740992',
  '18446744073709551616',
  '123456789012345678901234567890',
  '1e999',
  '-1e999',
  '1E400',
  '-0',
  '0.0',
  '1.0',
  '1e2',
  '1.5e300',
  '5e-324',
  '1e-400',
  '0.1e1',
  '2.0e0',
);

/** Values of the wrong kind, too big, too deep, or not JSON at all. */
const junkValue: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.constantFrom(null, true, false, 0, -1, 1, 2 ** 31, -(2 ** 53) + 1, 2 ** 53 - 1, 1.5, 1e308, -1e-308, '', [], {}),
  },
  { weight: 3, arbitrary: anyText() },
  { weight: 2, arbitrary: rawNumber.map((t) => new RawJson(t)) },
  { weight: 1, arbitrary: fc.double().filter(Number.isFinite) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 2 }).map((v) => JSON.parse(JSON.stringify(v ?? null) ?? 'null') as unknown) },
  {
    weight: 1,
    arbitrary: fc
      .record({ depth: fc.integer({ min: 10, max: 100_000 }), kind: fc.constantFrom('[', '{') })
      .map(
        ({ depth, kind }) =>
          new RawJson(kind === '[' ? '['.repeat(depth) + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)),
      ),
  },
  {
    weight: 1,
    arbitrary: fc
      .oneof({ weight: 4, arbitrary: fc.integer({ min: 1_000, max: 50_000 }) }, fc.integer({ min: 1_040_000, max: 1_050_000 }))
      .map((n) => 'x'.repeat(n)),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 100, max: 5_000 }).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]))),
  },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 5_000 }).map((n) => Array.from({ length: n }, (_, i) => i)) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      new RawJson('"\\ud800"'),
      new RawJson('"a\\udfffb"'),
      new RawJson('"\\u0000"'),
      new RawJson('{"__proto__":{"polluted":1}}'),
      new RawJson('{"constructor":{"prototype":{"polluted":1}}}'),
      new RawJson('{"a":1,"a":2}'),
      new RawJson('NaN'),
      new RawJson('undefined'),
      new RawJson("'single'"),
      new RawJson('[1,]'),
      new RawJson('{,}'),
      new RawJson('0x10'),
      new RawJson('.5'),
      new RawJson('+1'),
      new RawJson('01'),
    ),
  },
);

const junkKey = fc.oneof(
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'hasOwnProperty',
    'extra',
    '',
    ' ',
    'id ',
    'ID',
    '$ref',
    'x-as-stored',
  ),
  anyText(20),
);

// ---------------------------------------------------------------------------------------------
// Structured and textual mutation of JSON documents

export type Mutation =
  | { t: 'delete'; at: number }
  | { t: 'set'; at: number; value: unknown }
  | { t: 'addKey'; at: number; key: string; value: unknown }
  | { t: 'dupKey'; at: number; value: unknown }
  | { t: 'wrap'; at: number; inArray: boolean };

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ t: fc.constant('delete' as const), at: fc.nat() }),
  { weight: 3, arbitrary: fc.record({ t: fc.constant('set' as const), at: fc.nat(), value: junkValue }) },
  fc.record({ t: fc.constant('addKey' as const), at: fc.nat(), key: junkKey, value: junkValue }),
  fc.record({ t: fc.constant('dupKey' as const), at: fc.nat(), value: junkValue }),
  fc.record({ t: fc.constant('wrap' as const), at: fc.nat(), inArray: fc.boolean() }),
);

type Slot = { parent: Record<string, unknown> | unknown[]; key: string | number };

/** The places in a document, at most MAX_SLOTS of them (big documents are mutated near their start). */
const MAX_SLOTS = 2000;
function slots(value: unknown, out: Slot[] = []): Slot[] {
  if (typeof value !== 'object' || value === null || value instanceof RawJson || out.length >= MAX_SLOTS) return out;
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      out.push({ parent: value, key: i });
      slots(v, out);
    });
  } else {
    for (const [k, v] of Object.entries(value)) {
      out.push({ parent: value as Record<string, unknown>, key: k });
      slots(v, out);
    }
  }
  return out;
}

const DUP = '\u0001dup\u0001';

/** A deep copy that keeps RawJson values (structuredClone makes them plain objects) and own
 * members named `__proto__`. */
function clone(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || value instanceof RawJson) return value;
  if (Array.isArray(value)) return value.map(clone);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value))
    Object.defineProperty(out, k, { value: clone(v), enumerable: true, configurable: true, writable: true });
  return out;
}

/** Applies mutations to a deep copy of `doc`. Duplicate keys are left as markers that `toText`
 * turns into a second member of the same name. */
export function mutate(doc: unknown, mutations: readonly Mutation[]): unknown {
  const copy = clone(doc);
  const root = { doc: copy };
  for (const m of mutations) {
    // A copy of the value: fast-check hands out one instance of a constant ([] or {}) to every
    // value that draws it, and a later mutation must change this document only (nor make a cycle).
    const value = 'value' in m ? clone(m.value) : undefined;
    const all = [{ parent: root as unknown as Record<string, unknown>, key: 'doc' }, ...slots(root.doc)];
    const slot = all[m.at % all.length]!;
    const parent = slot.parent as Record<string | number, unknown>;
    const here = parent[slot.key];
    switch (m.t) {
      case 'delete':
        if (Array.isArray(parent)) parent.splice(slot.key as number, 1);
        else if (parent !== (root as unknown)) delete parent[slot.key];
        break;
      case 'set':
        parent[slot.key] = value;
        break;
      case 'addKey':
      case 'dupKey': {
        const target = typeof here === 'object' && here !== null && !Array.isArray(here) && !(here instanceof RawJson) ? here : undefined;
        if (!target) {
          parent[slot.key] = value;
          break;
        }
        const obj = target as Record<string, unknown>;
        if (m.t === 'addKey') {
          // `__proto__` as an own data property, as JSON.parse would make it.
          Object.defineProperty(obj, m.key, { value, enumerable: true, configurable: true, writable: true });
        } else {
          const names = Object.keys(obj);
          if (names.length) obj[`${DUP}${names[m.at % names.length]!}`] = value;
        }
        break;
      }
      case 'wrap':
        parent[slot.key] = m.inArray ? [here] : { value: here };
        break;
    }
  }
  return root.doc;
}

/** JSON text of a generated document, RawJson spliced in and duplicate-key markers named.
 * No replacer function: it made JSON.stringify several times slower on big documents. */
export function toText(doc: unknown): string {
  spliced = [];
  let text = JSON.stringify(doc) ?? 'null';
  const raws = spliced;
  spliced = [];
  if (raws.length) text = text.replace(/"\\u0002raw(\d+)\\u0002"/g, (_m, i: string) => raws[Number(i)]!);
  if (text.includes('\\u0001dup\\u0001')) text = text.replace(/"\\u0001dup\\u0001/g, '"');
  return text;
}

export type TextMutation =
  | { t: 'truncate'; at: number }
  | { t: 'insert'; at: number; s: string }
  | { t: 'cut'; at: number; n: number }
  | { t: 'bom' }
  | { t: 'trail'; s: string }
  | { t: 'pad'; n: number }
  | { t: 'byte'; at: number; b: number }
  | { t: 'quotes' }
  | { t: 'canonical' }
  | { t: 'spaced' };

export const textMutation: fc.Arbitrary<TextMutation> = fc.oneof(
  fc.record({ t: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    t: fc.constant('insert' as const),
    at: fc.nat(),
    s: fc.oneof(anyText(4), fc.constantFrom(',', ':', '{', '}', '[', ']', '"', '\\', '/*x*/')),
  }),
  fc.record({ t: fc.constant('cut' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }),
  fc.constant({ t: 'bom' as const }),
  fc.record({ t: fc.constant('trail' as const), s: fc.constantFrom(' ', '\n', 'x', '{}', ',', '\u0000', '//') }),
  fc.record({
    t: fc.constant('pad' as const),
    n: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 4096 }) }, fc.integer({ min: 1_048_000, max: 1_049_600 })),
  }),
  fc.record({
    t: fc.constant('byte' as const),
    at: fc.nat(),
    b: fc.constantFrom(0x00, 0x80, 0xc0, 0xc3, 0xe2, 0xed, 0xf0, 0xf8, 0xfe, 0xff),
  }),
  fc.constant({ t: 'quotes' as const }),
  fc.constant({ t: 'canonical' as const }),
  fc.constant({ t: 'spaced' as const }),
);

export function mutateText(text: string, m: TextMutation): Buffer {
  const at = (n: number) => (text.length ? n % (text.length + 1) : 0);
  switch (m.t) {
    case 'truncate':
      return Buffer.from(text.slice(0, at(m.at)));
    case 'insert':
      return Buffer.from(text.slice(0, at(m.at)) + m.s + text.slice(at(m.at)));
    case 'cut':
      return Buffer.from(text.slice(0, at(m.at)) + text.slice(at(m.at) + m.n));
    case 'bom':
      return Buffer.from('\ufeff' + text);
    case 'trail':
      return Buffer.from(text + m.s);
    case 'pad':
      return Buffer.from(' '.repeat(m.n) + text);
    case 'byte': {
      const b = Buffer.from(text);
      const i = b.length ? m.at % b.length : 0;
      return Buffer.concat([b.subarray(0, i), Buffer.from([m.b]), b.subarray(i)]);
    }
    case 'quotes':
      return Buffer.from(text.replace(/"/g, "'"));
    case 'canonical':
      // The same document written canonically: a semantic no-op.
      try {
        return Buffer.from(canonicalJson(JSON.parse(text)));
      } catch {
        return Buffer.from(text);
      }
    case 'spaced':
      // Not on a body past the registry's limit (a 413 whatever its spacing): V8 cannot build the
      // replacement of a multi-megabyte run of brackets (a fatal "invalid size" that kills the worker).
      return Buffer.from(text.length > 2 ** 20 ? text : text.replace(/([,:[{])/g, '$1 \n\t'));
  }
}

// ---------------------------------------------------------------------------------------------
// Headers, methods, paths and queries

const JSON_TYPE: [string, string] = ['Content-Type', 'application/json'];

const contentType: fc.Arbitrary<[string, string][]> = fc.oneof(
  { weight: 12, arbitrary: fc.constant<[string, string][]>([JSON_TYPE]) },
  {
    weight: 4,
    arbitrary: fc
      .constantFrom(
        'application/json; charset=utf-8',
        'application/json; charset=utf-16',
        'application/json; charset=latin1',
        'APPLICATION/JSON',
        'application/json;;;',
        'application/json; boundary=x',
        'application/jsonx',
        'application/json5',
        'application/merge-patch+json',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=xyz',
        'text/plain',
        'text/json',
        'application/octet-stream',
        '*/*',
        '',
        'json',
        'application/',
        '/json',
        'application/json\t',
        'application/json, text/plain',
      )
      .map((t): [string, string][] => [['Content-Type', t]]),
  },
  { weight: 1, arbitrary: fc.constant([] as [string, string][]) },
  {
    weight: 1,
    arbitrary: fc.constant([JSON_TYPE, ['Content-Type', 'text/plain']] as [string, string][]),
  },
);

const contentEncoding = fc.constantFrom(
  'gzip',
  'deflate',
  'br',
  'zstd',
  'compress',
  'identity',
  'IDENTITY',
  ' identity ',
  'gzip, identity',
  'x',
  '',
);

const headerName = fc.oneof(
  fc.constantFrom('X-Junk', 'Accept', 'Accept-Encoding', 'Accept-Language', 'Cookie', 'Authorization', 'Referer', 'User-Agent', 'Origin'),
  fc.constantFrom(
    'X-Forwarded-For',
    'X-Real-IP',
    'Forwarded',
    'Via',
    'X-HTTP-Method-Override',
    'If-Modified-Since',
    'Range',
    'TE',
    'Prefer',
  ),
  fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,40}$/),
);
/** Header values node:http will write: visible ASCII, space, tab and latin-1 high bytes. */
const headerValue = fc.oneof(
  fc.stringMatching(/^[\x20-\x7e]{0,80}$/),
  fc.string({ unit: fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength: 20 }),
  fc.integer({ min: 1_000, max: 15_000 }).map((n) => 'v'.repeat(n)),
  fc.constantFrom('', ' ', '\t', '*', '0', '-1', 'null', 'undefined', '../../etc/passwd', '${jndi:ldap://x}', '<script>', "' OR 1=1 --"),
);

const requestId = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/),
  fc.constantFrom('', ' ', 'a b', 'x'.repeat(129), 'é', '\t', '<id>'),
);

/** Headers any request may carry besides its own. */
function extraHeaders(ctx: Ctx): fc.Arbitrary<[string, string][]> {
  const one: fc.Arbitrary<[string, string]> = fc.oneof(
    { weight: 4, arbitrary: fc.tuple(headerName, headerValue) },
    { weight: 2, arbitrary: requestId.map((v): [string, string] => ['X-Request-Id', v]) },
    { weight: 2, arbitrary: contentEncoding.map((v): [string, string] => ['Content-Encoding', v]) },
    {
      weight: 2,
      arbitrary: fc
        .oneof(
          pick(ctx.etags),
          pick(ctx.etags).map((e) => `W/${e}`),
          fc.constantFrom('*', '""', 'W/', '"b3:x"', 'x', ', , ,'),
          fc.integer({ min: 2, max: 3000 }).map((n) => Array.from({ length: n }, (_, i) => `"e${i}"`).join(', ')),
        )
        .map((v): [string, string] => ['If-None-Match', v ?? '*']),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom<[string, string]>(
        ['Connection', 'close'],
        ['Connection', 'keep-alive'],
        ['Connection', 'Upgrade'],
        ['Upgrade', 'websocket'],
        ['Upgrade', 'h2c'],
        ['Expect', '100-continue'],
        ['Transfer-Encoding', 'identity'],
        ['Host', ''],
        ['Host', 'evil.example:99999'],
        ['Host', 'a'.repeat(300)],
        ['Last-Event-ID', 'x'],
      ),
    },
  );
  return fc.array(one, { maxLength: 4 });
}

const METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'TRACE',
  'PROPFIND',
  'PROPPATCH',
  'MKCOL',
  'COPY',
  'MOVE',
  'LOCK',
  'UNLOCK',
  'SEARCH',
  'PURGE',
  'REPORT',
  'MERGE',
  'M-SEARCH',
  'NOTIFY',
  'SUBSCRIBE',
  'LINK',
  'UNLINK',
  'QUERY',
  'FOO',
  'X',
];

/** Encodes a query value: as a browser would, not at all, every byte, twice, or wrongly. */
type Enc = 'uri' | 'raw' | 'every' | 'twice' | 'plus' | 'broken';
const encoding: fc.Arbitrary<Enc> = fc.oneof(
  { weight: 8, arbitrary: fc.constant('uri' as const) },
  { weight: 1, arbitrary: fc.constantFrom<Enc>('raw', 'every', 'twice', 'plus', 'broken') },
);

function encode(value: string, how: Enc): string {
  switch (how) {
    case 'uri':
      return encodeURIComponentSafe(value);
    case 'raw':
      // Only what node:http writes: no controls or spaces; bytes above 0x7e go out as latin-1.
      return [...value].map((c) => (/[\u0021-\u00ff]/.test(c) && c !== '#' && c !== '&' ? c : encodeURIComponentSafe(c))).join('');
    case 'every':
      return [...Buffer.from(value, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join('');
    case 'twice':
      return encodeURIComponentSafe(encodeURIComponentSafe(value));
    case 'plus':
      return encodeURIComponentSafe(value).replace(/%20/g, '+');
    case 'broken':
      return `${encodeURIComponentSafe(value)}%${value.length % 2 ? 'zz' : 'e9'}%`;
  }
}

/** encodeURIComponent, with lone surrogates written as their UTF-8 replacement instead of throwing. */
function encodeURIComponentSafe(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
  }
}

function queryString(pairs: [string, string | undefined][], how: Enc): string {
  if (!pairs.length) return '';
  return '?' + pairs.map(([k, v]) => (v === undefined ? encode(k, how) : `${encode(k, how)}=${encode(v, how)}`)).join('&');
}

/** Extra query members: unknown names, repeats, prototype names, bracket syntax. */
const junkQueryPairs = fc.array(
  fc.tuple(
    fc.oneof(fc.constantFrom('__proto__', 'constructor', 'x', 'a[]', 'a[b]', '', '&', '=', 'limit', 'filter', 'from'), anyText(10)),
    fc.option(anyText(20), { nil: undefined }),
  ),
  { maxLength: 3 },
);

/** Mutates a path (without its query) a little: case, slashes, dots, encodings, length. */
const pathMutation = fc.oneof(
  fc.constantFrom(
    (p: string) => p.toUpperCase(),
    (p: string) => `${p}/`,
    (p: string) => p.replace(/\//g, '//'),
    (p: string) => `${p}/..`,
    (p: string) => `${p}/.`,
    (p: string) => `/registry/..${p}`,
    (p: string) => p.replace(/\//g, '%2F'),
    (p: string) => p.replace(/^\//, '/%2e/'),
    (p: string) => p.slice(1),
    (p: string) => `http://127.0.0.1${p}`,
    (p: string) => `${p};a=b`,
    (p: string) => `${p}#frag`,
    (p: string) => `${p}%00`,
    (p: string) => `${p}%`,
    (p: string) => `${p}\\`,
    (p: string) => p.replace(/r/, '%72'),
    (p: string) => p.replace(/e/, 'é'),
    () => '*',
    () => '/',
    () => '',
  ),
  fc.integer({ min: 100, max: 20_000 }).map((n) => (p: string) => `${p}/${'a'.repeat(n)}`),
  fc.tuple(fc.nat(), anyText(6)).map(([at, s]) => (p: string) => {
    const i = at % (p.length + 1);
    return p.slice(0, i) + encodeURIComponentSafe(s) + p.slice(i);
  }),
);

// ---------------------------------------------------------------------------------------------
// Values of the registry's own vocabulary, right and wrong

const versionText = (ctx: Ctx) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 0, max: ctx.head.version }).map(String) },
    { weight: 1, arbitrary: fc.integer({ min: ctx.head.version + 1, max: ctx.head.version + 3 }).map(String) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        '-1',
        '01',
        '1.0',
        '1e3',
        '0x1',
        ' 1',
        '1 ',
        '+1',
        '9007199254740991',
        '9007199254740992',
        '9007199254740993',
        '99999999999999999999999',
        'head',
        'Head',
        'HEAD',
        'latest',
        'NaN',
        'Infinity',
        '-0',
        '０',
        '١',
        '%31',
        '1%00',
        '',
        'descriptors',
        'proposals',
        'stream',
      ),
    },
    { weight: 1, arbitrary: anyText(12) },
  );

const descriptorId = (ctx: Ctx) =>
  fc.oneof(
    { weight: 4, arbitrary: pick(ctx.ids) },
    { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9._:@/-]{1,40}$/) },
    { weight: 1, arbitrary: fc.integer({ min: 250, max: 2000 }).map((n) => 'a'.repeat(n)) },
    { weight: 1, arbitrary: anyText(20) },
    {
      weight: 1,
      arbitrary: fc.constantFrom('..', '.', '/', '//', 'a//b', '%2F', 'svc a', 'svc\u0000a', 'é', '😀', '\ud800', 'a?b', 'a#b'),
    },
  );

const proposalIdText = (ctx: Ctx) =>
  fc.oneof(
    {
      weight: 4,
      arbitrary: fc.oneof(
        pick(ctx.proposals.pending),
        pick(ctx.proposals.stale),
        pick(ctx.proposals.expired),
        pick(ctx.proposals.committed),
      ),
    },
    { weight: 2, arbitrary: hex(32).map((h) => `b3:${h}`) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          pick(ctx.proposals.committed),
          fc.constantFrom<(id: string) => string>(
            (id) => id.toUpperCase(),
            (id) => id.slice(0, -1),
            (id) => `${id}0`,
            (id) => id.replace('b3:', 'b3%3A'),
            (id) => id.replace('b3:', 'b3%253A'),
            (id) => id.replace('b3:', 'B3:'),
            (id) => id.replace('b3:', 'sha256:'),
            (id) => id.slice(3),
            (id) => ` ${id}`,
            (id) => `${id}%00`,
          ),
        )
        .map(([id, f]) => f(id ?? 'b3:00')),
    },
    { weight: 1, arbitrary: anyText(70) },
  );

const filterField = (ctx: Ctx) =>
  fc.oneof(
    fc.constantFrom('id', 'kind'),
    pick(ctx.labelKeys).map((k) => `labels.${k}`),
    fc.stringMatching(/^[A-Za-z0-9._/-]{1,70}$/).map((k) => `labels.${k}`),
    fc.array(fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/), { minLength: 1, maxLength: 6 }).map((s) => `body.${s.join('.')}`),
    fc.constantFrom(
      'labels.',
      'body.',
      'body..a',
      'labels',
      'body',
      'ID',
      'descriptor.id',
      'labels.é',
      'body.__proto__',
      'body.constructor',
    ),
  );

const quote = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

const filterLiteral = fc.oneof(
  anyText(12).map(quote),
  fc.constantFrom("'online'", "'eu-west'", "'service'", "'node'", "'10'", "''", "'\\'", "'a\\x'", "'unterminated"),
  fc.double().filter(Number.isFinite).map(String),
  fc.integer().map(String),
  fc.constantFrom('true', 'false', 'null', '1e999', '-0', '9007199254740993', '0x10', '1.', '.5', 'NaN', 'Infinity', '--1', '1e', 'TRUE'),
);

/** Regular expressions: ordinary, pathological for backtracking engines, and ones RE2 refuses. */
const pattern = fc.oneof(
  fc.constantFrom(
    '^svc-',
    'node-\\\\d+$',
    '(a*)*b',
    '(a|aa)+$',
    '(a|a)*c',
    '^(([a-z])+.)+[A-Z]([a-z])+$',
    '(x+x+)+y',
    '.*.*.*.*.*.*.*.*=',
    '(.*a){20}',
    'a{1000}',
    'a{1001}',
    '(a{100}){100}',
    '((a{100}){100}){100}',
    '.{0,1000}',
    '[\\\\s\\\\S]{0,1000}[\\\\s\\\\S]{0,1000}',
    '(?:ab{1000}|ac{1000}|ad{1000})',
    '(a)\\\\1',
    '(?=a)',
    '(?<=a)b',
    '(?!a)',
    'a++',
    '(?i)SVC',
    '(?P<name>x)',
    '\\\\p{Greek}+',
    '\\\\pL',
    '[[:alpha:]]',
    '[z-a]',
    '(',
    ')',
    '[',
    '*',
    '+?',
    'a**',
    '\\\\',
    '\\\\Q.*\\\\E',
    '\\\\C',
    '\\\\z',
    '$^',
    '',
    '\u0000',
    '😀+',
  ),
  fc.integer({ min: 2, max: 4000 }).map((n) => '(a|b)'.repeat(Math.max(1, Math.floor(n / 5)))),
  fc.integer({ min: 2, max: 2000 }).map((n) => '('.repeat(n) + 'a' + ')'.repeat(n)),
  fc.integer({ min: 1, max: 4000 }).map((n) => 'a?'.repeat(Math.floor(n / 2)) + 'a'.repeat(Math.floor(n / 2))),
  fc.string({ maxLength: 30 }),
);

function filterExpr(ctx: Ctx): fc.Arbitrary<string> {
  const term = fc.oneof(
    fc
      .tuple(filterField(ctx), fc.constantFrom('==', '!=', '<', '<=', '>', '>=', '=', '<>', '=>', '==='), filterLiteral)
      .map(([f, o, l]) => `${f} ${o} ${l}`),
    fc.tuple(filterField(ctx), fc.array(filterLiteral, { maxLength: 5 })).map(([f, ls]) => `${f} IN [${ls.join(',')}]`),
    fc.tuple(filterField(ctx), filterLiteral).map(([f, l]) => `${f} CONTAINS ${l}`),
    fc.tuple(filterField(ctx), pattern).map(([f, p]) => `${f} MATCHES '${p.replace(/'/g, "\\'")}'`),
    filterField(ctx).map((f) => `${f} EXISTS`),
  );
  const { expr } = fc.letrec<{ expr: string }>((tie) => ({
    expr: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      { weight: 4, arbitrary: term },
      {
        weight: 1,
        arbitrary: fc
          .tuple(tie('expr'), fc.constantFrom('AND', 'OR', 'and', '&&', 'XOR'), tie('expr'))
          .map(([a, o, b]) => `${a} ${o} ${b}`),
      },
      { weight: 1, arbitrary: tie('expr').map((e) => `NOT ${e}`) },
      { weight: 1, arbitrary: tie('expr').map((e) => `(${e})`) },
    ),
  }));
  return fc.oneof(
    { weight: 6, arbitrary: expr },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        '',
        ' ',
        '(',
        ')',
        'AND',
        'NOT',
        'id ==',
        "id == 'a' AND",
        "id == 'a' OR OR id == 'b'",
        'kind IN []',
        "kind IN ['a',]",
        "labels.x == 'a' labels.y == 'b'",
        "id MATCHES 'a' MATCHES 'b'",
      ),
    },
    // Past the limits: nesting, terms, length.
    { weight: 1, arbitrary: fc.integer({ min: 9, max: 200 }).map((n) => `${'NOT '.repeat(n)}id EXISTS`) },
    { weight: 1, arbitrary: fc.integer({ min: 9, max: 5000 }).map((n) => `${'('.repeat(n)}id EXISTS${')'.repeat(n)}`) },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 60, max: 400 }).map((n) => Array.from({ length: n }, (_, i) => `labels.k${i} EXISTS`).join(' OR ')),
    },
    { weight: 1, arbitrary: fc.integer({ min: 4090, max: 9000 }).map((n) => `id == '${'x'.repeat(n)}'`) },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 2, max: 64 }).map((n) => Array.from({ length: n }, () => `id MATCHES '(a{100}){100}'`).join(' OR ')),
    },
    { weight: 1, arbitrary: anyText(60) },
    // A valid filter with one character changed.
    {
      weight: 1,
      arbitrary: fc
        .tuple(expr, fc.nat(), anyText(1))
        .map(([e, at, c]) => e.slice(0, at % (e.length + 1)) + c + e.slice((at % (e.length + 1)) + 1)),
    },
  );
}

/** Cursors: issued ones, and forged, truncated, altered and borrowed ones. */
function cursor(issued: string[], otherIssued: string[]): fc.Arbitrary<string> {
  return fc.oneof(
    pick(issued),
    pick(otherIssued),
    fc.tuple(pick(issued), fc.nat(), fc.integer({ min: 0, max: 63 })).map(([c, at, v]) => {
      const s = c ?? 'x';
      const i = at % s.length;
      return s.slice(0, i) + 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'[v] + s.slice(i + 1);
    }),
    fc.tuple(pick(issued), fc.nat()).map(([c, at]) => (c ?? 'x').slice(0, at % ((c ?? 'x').length + 1))),
    pick(issued).map((c) => (c ?? 'a.b').split('.').reverse().join('.')),
    pick(issued).map((c) => `${c ?? ''}.x`),
    fc
      .oneof(
        fc.constantFrom(
          '{"after":-1}',
          '{"after":1e20}',
          '{"after":"1"}',
          '{"after":1,"x":2}',
          '[1,"a"]',
          '[9007199254740993,"a"]',
          '[-1,""]',
          'null',
          '"',
        ),
        fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
      )
      .chain((body) =>
        fc.oneof(
          fc.constant(Buffer.from(body).toString('base64url')),
          hex(16).map((mac) => `${Buffer.from(body).toString('base64url')}.${Buffer.from(mac, 'hex').toString('base64url')}`),
        ),
      ),
    fc.integer({ min: 200, max: 5000 }).map((n) => 'A'.repeat(n)),
    anyText(30),
  );
}

const limitText = fc.oneof(
  fc.integer({ min: 1, max: 1000 }).map(String),
  fc.constantFrom('0', '-1', '1001', '1e3', '1.5', '0x10', ' 5', '5 ', '+5', '05', '', 'all', '9007199254740993', '99999999999999999'),
);
const boolText = fc.constantFrom('true', 'false', 'TRUE', '1', '0', 'yes', '', 'true ', 'truefalse');

// ---------------------------------------------------------------------------------------------
// Bodies

function ops(ctx: Ctx, bulk: boolean): fc.Arbitrary<Op[]> {
  const label = fc.dictionary(fc.stringMatching(/^[A-Za-z0-9._/-]{1,20}$/), fc.string({ maxLength: 20 }), { maxKeys: 4 });
  const put = fc
    .record({
      id: fc.oneof(pick(ctx.ids), fc.stringMatching(/^[A-Za-z0-9._:@/-]{1,30}$/)),
      kind: fc.oneof(pick(ctx.kinds), fc.stringMatching(/^[a-z0-9._-]{1,12}$/)),
      labels: label,
      body: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
    })
    .map((d): Op => ({ op: 'put', descriptor: d }));
  const del = pick(ctx.ids).map((id): Op => ({ op: 'delete', id: id ?? 'x' }));
  const rotate = fc.integer({ min: 1, max: Math.max(1, ctx.signerSet.signers.length) }).map((threshold): Op => ({
    op: 'set_signers',
    signer_set: { threshold, signers: ctx.signerSet.signers },
  }));
  const many = fc
    .oneof(fc.constant(10_001), fc.integer({ min: 100, max: 2_000 }))
    .map((n) =>
      Array.from({ length: n }, (_, i): Op => ({ op: 'put', descriptor: { id: `bulk-${i}`, kind: 'bulk', labels: {}, body: {} } })),
    );
  const few = fc.array(fc.oneof({ weight: 4, arbitrary: put }, { weight: 1, arbitrary: del }, { weight: 1, arbitrary: rotate }), {
    minLength: 1,
    maxLength: 4,
  });
  // Ten thousand ops only where they cannot commit: a log of them would slow every later read.
  return bulk ? fc.oneof({ weight: 40, arbitrary: few }, { weight: 1, arbitrary: many }) : few;
}

function payload(ctx: Ctx, bulk: boolean): fc.Arbitrary<ProposalPayload> {
  return fc
    .record({
      ops: ops(ctx, bulk),
      ttl: fc.oneof(fc.constant(3_600_000), fc.integer({ min: 60_000, max: 40 * 24 * 3_600_000 })),
      base: fc.oneof(
        { weight: 5, arbitrary: fc.constant(ctx.head) },
        { weight: 1, arbitrary: fc.constant({ version: Math.max(0, ctx.head.version - 1), hash: ctx.head.hash }) },
      ),
      reason: fc.oneof(fc.constant('hostile'), anyText(30)),
    })
    .map(({ ops: o, ttl, base, reason }) => proposal(ctx.registryId, base, o, { now: ctx.now, ttlMs: ttl, reason }));
}

/** An approval that verifies under no key that its id has or had here, for `id`. */
function forgedApproval(ctx: Ctx, id: string): fc.Arbitrary<unknown> {
  const known = [...ctx.signers.current, ...ctx.signers.removed];
  const s = pick(known);
  return fc.oneof(
    pick(ctx.foreignSigs),
    fc.tuple(s, hex(64)).map(([k, sig]) => ({ signer_id: k.id, sig })),
    fc.tuple(s, pick(ctx.foreignSigs)).map(([k, a]) => ({ signer_id: k.id, sig: a.sig })),
    s.map((k) => ({ signer_id: k.id, sig: nonCanonical(signApproval(k.secretKey, id)) })),
    s.map((k) => ({ signer_id: k.id, sig: signApproval(k.secretKey, id).toUpperCase() })),
    fc.tuple(s, fc.constantFrom('', 'registry-approval-v2:', 'registry-approval-v1: ', 'REGISTRY-APPROVAL-V1:')).map(([k, prefix]) => ({
      signer_id: k.id,
      sig: signRaw(k.secretKey, prefix + id),
    })),
    fc
      .tuple(s, s)
      .filter(([a, b]) => a.id !== b.id)
      .map(([a, b]) => ({ signer_id: b.id, sig: signApproval(a.secretKey, id) })),
    fc
      .tuple(
        s,
        fc.constantFrom(
          (x: string) => `${x} `,
          (x: string) => x.toUpperCase(),
          (x: string) => `${x}\u0000`,
          (x: string) => x.replace('a', 'а'),
        ),
      )
      .map(([k, f]) => ({ signer_id: f(k.id), sig: signApproval(k.secretKey, id) })),
    pick(ctx.signers.strangers).map((k) => ({ signer_id: k.id, sig: signApproval(k.secretKey, id) })),
    // One bit of R flipped: certainly another signature. (Setting S's last byte to 00 was not:
    // S < 2^253, so that byte is already 00 in about one signature in sixteen.)
    s.map((k) => {
      const sig = signApproval(k.secretKey, id);
      return { signer_id: k.id, sig: (parseInt(sig.slice(0, 2), 16) ^ 1).toString(16).padStart(2, '0') + sig.slice(2) };
    }),
    fc.record({ signer_id: junkValue, sig: junkValue }),
  );
}

/** A document: as is, mutated structurally, textually, or both; then its bytes. */
function bytesOf(doc: unknown): fc.Arbitrary<Buffer> {
  return fc
    .record({
      structural: fc.oneof(
        { weight: 2, arbitrary: fc.constant([] as Mutation[]) },
        { weight: 5, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 3 }) },
      ),
      textual: fc.option(textMutation, { freq: 3 }),
    })
    .map(({ structural, textual }) => {
      const text = toText(structural.length ? mutate(doc, structural) : doc);
      return textual ? mutateText(text, textual) : Buffer.from(text);
    });
}

// ---------------------------------------------------------------------------------------------
// Requests

interface Base {
  route: string;
  method: string;
  path: string;
  headers?: [string, string][];
  body?: Buffer;
  label: string;
}

/** Dresses a request: extra headers, sometimes another method or a mangled path, a fresh
 * connection or a kept one. */
function dress(ctx: Ctx, base: fc.Arbitrary<Base>): fc.Arbitrary<HostileRequest> {
  return fc
    .record({
      base,
      extra: extraHeaders(ctx),
      method: fc.option(fc.constantFrom(...METHODS), { freq: 12 }),
      pathMutation: fc.option(pathMutation, { freq: 15 }),
      fresh,
    })
    .map(({ base: b, extra, method, pathMutation: pm, fresh }) => {
      // Header values node:http writes: tab, visible ASCII and latin-1 high bytes.
      const headers = [...(b.headers ?? []), ...extra].map(([k, v]): [string, string] => [k, v.replace(/[^\t\x20-\x7e\x80-\xff]/g, '?')]);
      let path = b.path;
      if (pm) {
        const q = path.indexOf('?');
        path = q < 0 ? pm(path) : pm(path.slice(0, q)) + path.slice(q);
      }
      const m = method ?? b.method;
      // A body goes with its own method; a GET or HEAD with a body is sent too, now and then.
      return {
        route: b.route,
        method: m,
        // What node:http writes: no controls, spaces or characters beyond latin-1 (the raw
        // socket requests send those).
        path: [...(path || '/')].map((c) => (/[\u0021-\u00ff]/.test(c) ? c : encodeURIComponentSafe(c))).join(''),
        headers,
        body: b.body,
        fresh,
        label: `${b.label}${method ? ` as ${method}` : ''}${pm ? ' (path mangled)' : ''}`,
      };
    });
}

function withBody(route: string, path: string, label: string, body: fc.Arbitrary<Buffer>): fc.Arbitrary<Base> {
  return fc.tuple(body, contentType).map(([b, ct]) => ({ route, method: 'POST', path, headers: ct, body: b, label }));
}

export function unsignedRequest(ctx: Ctx): fc.Arbitrary<Generated> {
  const get = (route: string, path: fc.Arbitrary<string>, label: string): fc.Arbitrary<Base> =>
    path.map((p) => ({ route: `GET ${route}`, method: 'GET', path: p, label }));
  const listingQuery = fc
    .record({
      filter: fc.option(filterExpr(ctx), { freq: 2 }),
      kind: fc.option(fc.oneof(pick(ctx.kinds), anyText(10), fc.constant('x'.repeat(65))), { freq: 3 }),
      limit: fc.option(limitText, { freq: 2 }),
      cursor: fc.option(cursor(ctx.listingCursors, ctx.proposalCursors), { freq: 3 }),
      include_expired: fc.option(boolText, { freq: 3 }),
      junk: fc.option(junkQueryPairs, { freq: 4 }),
      how: encoding,
    })
    .map((q) =>
      queryString(
        [
          ...(['filter', 'kind', 'limit', 'cursor', 'include_expired'] as const).flatMap((k): [string, string][] =>
            q[k] === null ? [] : [[k, q[k]]],
          ),
          ...(q.junk ?? []),
        ],
        q.how,
      ),
    );
  const simpleQuery = (names: Record<string, fc.Arbitrary<string>>) =>
    fc
      .record({
        values: fc.record(
          Object.fromEntries(Object.entries(names).map(([k, a]) => [k, fc.option(a, { freq: 2 })])) as Record<
            string,
            fc.Arbitrary<string | null>
          >,
        ),
        junk: fc.option(junkQueryPairs, { freq: 4 }),
        how: encoding,
      })
      .map(({ values, junk, how }) =>
        queryString(
          [...Object.entries(values).flatMap(([k, v]): [string, string][] => (v === null ? [] : [[k, v]])), ...(junk ?? [])],
          how,
        ),
      );

  const submission = payload(ctx, true).chain((p) => {
    const id = idOf(p);
    return fc
      .array(forgedApproval(ctx, id), { minLength: 0, maxLength: 4 })
      .chain((approvals) =>
        fc.oneof(
          { weight: 6, arbitrary: fc.constant<unknown>({ payload: p, approvals }) },
          {
            weight: 1,
            arbitrary: fc
              .integer({ min: 129, max: 300 })
              .map((n) => ({ payload: p, approvals: Array.from({ length: n }, () => approvals[0] ?? ctx.foreignSigs[0]) })),
          },
          { weight: 1, arbitrary: junkValue },
        ),
      )
      .chain(bytesOf);
  });
  const approvalBody = (id: string) => forgedApproval(ctx, id).chain(bytesOf);
  const batchBody = fc
    .record({
      ids: fc.oneof(
        { weight: 5, arbitrary: fc.array(descriptorId(ctx), { minLength: 1, maxLength: 20 }) },
        { weight: 1, arbitrary: fc.integer({ min: 990, max: 1100 }).map((n) => Array.from({ length: n }, (_, i) => `id-${i}`)) },
        { weight: 1, arbitrary: pick(ctx.ids).map((id) => [id, id]) },
        { weight: 1, arbitrary: fc.constant([]) },
      ),
      include_expired: fc.option(fc.oneof(fc.boolean(), junkValue), { nil: undefined, freq: 2 }),
    })
    .map((b) => (b.include_expired === undefined ? { ids: b.ids } : b))
    .chain(bytesOf);

  const streamBase: fc.Arbitrary<Base> = fc
    .record({
      q: simpleQuery({ filter: filterExpr(ctx), kind: fc.oneof(pick(ctx.kinds), anyText(8)), from: versionText(ctx) }),
      lastEventId: fc.option(
        fc.oneof(
          versionText(ctx),
          fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength: 30 }),
          fc.integer({ min: 1000, max: 12_000 }).map((n) => '9'.repeat(n)),
        ),
        { freq: 2 },
      ),
    })
    .map(({ q, lastEventId }) => ({
      route: 'GET /registry/stream',
      method: 'GET',
      path: `/registry/stream${q}`,
      headers: lastEventId === null ? [] : [['Last-Event-ID', lastEventId]],
      label: 'stream',
    }));

  const routes: fc.Arbitrary<Base>[] = [
    get('/registry/head', fc.constant('/registry/head'), 'head'),
    get(
      '/registry/:version',
      versionText(ctx).map((v) => `/registry/${encodeURIComponentSafe(v)}`),
      'version',
    ),
    get(
      '/registry/head/descriptors',
      listingQuery.map((q) => `/registry/head/descriptors${q}`),
      'listing at head',
    ),
    get(
      '/registry/:version/descriptors',
      fc.tuple(versionText(ctx), listingQuery).map(([v, q]) => `/registry/${encodeURIComponentSafe(v)}/descriptors${q}`),
      'listing at version',
    ),
    get(
      '/registry/descriptors/*',
      fc
        .tuple(
          descriptorId(ctx),
          fc.constantFrom<'uri' | 'slash' | 'raw' | 'every'>('uri', 'slash', 'raw', 'every'),
          simpleQuery({ include_expired: boolText }),
        )
        .map(([id, how, q]) => {
          const enc =
            how === 'uri'
              ? encodeURIComponentSafe(id)
              : how === 'slash'
                ? encodeURIComponentSafe(id).replace(/%2F/g, '/')
                : how === 'raw'
                  ? encode(id, 'raw')
                  : encode(id, 'every');
          return `/registry/descriptors/${enc}${q}`;
        }),
      'lookup',
    ),
    withBody('POST /registry/descriptors::batch', '/registry/descriptors:batch', 'batch', batchBody),
    get(
      '/registry/diff',
      simpleQuery({ from: versionText(ctx), to: versionText(ctx) }).map((q) => `/registry/diff${q}`),
      'diff',
    ),
    get(
      '/registry/proposals',
      simpleQuery({
        status: fc.oneof(fc.constantFrom('pending', 'committed', 'stale', 'expired'), anyText(10)),
        limit: limitText,
        cursor: cursor(ctx.proposalCursors, ctx.listingCursors),
      }).map((q) => `/registry/proposals${q}`),
      'proposal list',
    ),
    get(
      '/registry/proposals/:id',
      proposalIdText(ctx).map((id) => `/registry/proposals/${id.includes('%') ? id : encode(id, 'raw')}`),
      'proposal',
    ),
    withBody('POST /registry/proposals', '/registry/proposals', 'submission', submission),
    proposalIdText(ctx).chain((id) =>
      withBody(
        'POST /registry/proposals/:id/approvals',
        `/registry/proposals/${id.includes('%') ? id : encode(id, 'raw')}/approvals`,
        'approval',
        approvalBody(id),
      ),
    ),
    get(
      '/registry/audit',
      simpleQuery({ from_seq: limitText, limit: limitText }).map((q) => `/registry/audit${q}`),
      'audit',
    ),
    streamBase,
    get(
      '/openapi.json',
      simpleQuery({}).map((q) => `/openapi.json${q}`),
      'openapi',
    ),
    get(
      '/healthz',
      simpleQuery({}).map((q) => `/healthz${q}`),
      'healthz',
    ),
    get(
      '/readyz',
      simpleQuery({}).map((q) => `/readyz${q}`),
      'readyz',
    ),
    get(
      '/version',
      simpleQuery({}).map((q) => `/version${q}`),
      'version info',
    ),
  ];
  // HEAD of every GET route, and nowhere routes.
  const head = fc
    .oneof(...routes.slice(0, 9).concat(routes.slice(11)))
    .map((b) => (b.method === 'GET' ? { ...b, route: b.route.replace(/^GET /, 'HEAD '), method: 'HEAD', label: `${b.label} (HEAD)` } : b));
  const nowhere = fc
    .oneof(
      fc.constantFrom('/', '/registry', '/registry/', '/metrics/x', '/registry/head/x', '/.env', '/admin', '/registry/proposals/x/y'),
      anyText(20).map((s) => `/${encodeURIComponentSafe(s)}`),
    )
    .map((p): Base => ({ route: '(no route)', method: 'GET', path: p, label: 'nowhere' }));

  const bodyRoutes = new Set([5, 9, 10]);
  const weighted = routes.map((arbitrary, i) => ({ weight: bodyRoutes.has(i) ? 6 : 3, arbitrary }));
  return dress(ctx, fc.oneof(...weighted, { weight: 4, arbitrary: head }, { weight: 1, arbitrary: nowhere })).map((request) =>
    generated(request, []),
  );
}

/** Other routes the service has (added after this file was written) get generic hostile
 * requests: their own method and path with junk queries, headers and bodies. */
export function genericRequest(ctx: Ctx, method: string, url: string): fc.Arbitrary<Generated> {
  const path = url.replace(/::/g, ':').replace(/:[A-Za-z0-9_]+|\*$/g, 'x');
  const base = fc
    .record({
      q: junkQueryPairs,
      how: encoding,
      body: fc.option(
        junkValue.map((v) => Buffer.from(toText(v))),
        { freq: 2 },
      ),
      ct: contentType,
    })
    .map(({ q, how, body, ct }): Base => ({
      route: `${method} ${url}`,
      method,
      path: path + queryString(q, how),
      headers: body === null ? [] : ct,
      body: body ?? undefined,
      label: `generic ${method} ${url}`,
    }));
  return dress(ctx, base).map((request) => generated(request, []));
}

// ---------------------------------------------------------------------------------------------
// Signed requests

export function signedRequest(ctx: Ctx): fc.Arbitrary<Generated> {
  const known = [...ctx.signers.current, ...ctx.signers.removed];
  const signerSubset = fc.subarray([...known, ...ctx.signers.strangers], { minLength: 1, maxLength: 3 });

  const submission: fc.Arbitrary<Generated> = fc
    .record({
      p: payload(ctx, false),
      mutations: fc.oneof(
        { weight: 2, arbitrary: fc.constant([] as Mutation[]) },
        { weight: 3, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 2 }) },
      ),
      who: signerSubset,
      forged: fc.option(fc.constant(true), { freq: 4 }),
      textual: fc.option(fc.constantFrom<TextMutation>({ t: 'canonical' }, { t: 'spaced' }, { t: 'pad', n: 7 }), { freq: 3 }),
      fresh,
    })
    .chain(({ p, mutations, who, forged, textual, fresh }) => {
      // Signed after the mutation: the signature is good, whatever the payload became.
      const doc = mutations.length ? mutate(p, mutations) : p;
      let id: string;
      try {
        id = idOf(JSON.parse(toText(doc)));
      } catch {
        id = idOf(p);
      }
      const approvals: unknown[] = who.map((k) => ({ signer_id: k.id, sig: signApproval(k.secretKey, id) }));
      return (forged ? forgedApproval(ctx, id).map((f) => [...approvals, f]) : fc.constant(approvals)).map((all): Generated => {
        const text = toText({ payload: doc, approvals: all });
        return generated(
          {
            route: 'POST /registry/proposals',
            method: 'POST',
            path: '/registry/proposals',
            headers: [JSON_TYPE],
            body: textual ? mutateText(text, textual) : Buffer.from(text),
            fresh,
            label: `signed submission by ${who.map((k) => k.id).join('+')}${mutations.length ? ' (mutated, then signed)' : ''}`,
          },
          [id, idOf(p)],
        );
      });
    });

  const target = fc.oneof(
    pick(ctx.proposals.pending),
    pick(ctx.proposals.stale),
    pick(ctx.proposals.expired),
    pick(ctx.proposals.committed),
    hex(32).map((h) => `b3:${h}`),
  );
  const approval: fc.Arbitrary<Generated> = fc
    .record({
      id: target,
      other: fc.option(target, { freq: 4 }),
      who: fc.constantFrom(...known, ...ctx.signers.strangers),
      encoded: fc.boolean(),
      mutations: fc.option(fc.array(mutation, { minLength: 1, maxLength: 2 }), { freq: 4 }),
      fresh,
    })
    .map(({ id, other, who, encoded, mutations, fresh }): Generated => {
      // Sent to `id`'s path; signed over `other` when one is drawn (a replay elsewhere).
      const over = other ?? id;
      const body = { signer_id: who.id, sig: signApproval(who.secretKey, over) };
      return generated(
        {
          route: 'POST /registry/proposals/:id/approvals',
          method: 'POST',
          path: `/registry/proposals/${encoded ? encodeURIComponent(id) : id}/approvals`,
          headers: [JSON_TYPE],
          body: Buffer.from(toText(mutations ? mutate(body, mutations) : body)),
          fresh,
          label: `signed approval by ${who.id}${other ? ' (signed for another proposal)' : ''}${mutations ? ' (mutated after signing)' : ''}`,
        },
        [id, over],
      );
    });
  return fc.oneof({ weight: 3, arbitrary: submission }, { weight: 2, arbitrary: approval });
}

/** Raw request heads node:http will not write: broken request lines and headers, framing
 * tricks, odd methods and versions. Each ends its connection (the socket is half-closed). */
export function rawRequest(): fc.Arbitrary<{ bytes: Buffer; label: string }> {
  // Not the stream: a half-closed connection may still read an endless stream.
  const target = fc.constantFrom(
    '/registry/head',
    '/registry/0',
    '/healthz',
    '/registry/descriptors:batch',
    '/registry/proposals',
    '*',
    '/',
  );
  const method = fc.constantFrom('GET', 'POST', 'CONNECT', 'get', 'G ET', 'GET\t', '', 'PRI', 'FOO', 'DELETE', 'OPTIONS');
  const version = fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/0.9', 'HTTP/1.1 ', 'http/1.1', 'HTTP/1.10', '', 'HTTP/1');
  const header = fc.oneof(
    fc.constantFrom(
      'Host: x',
      'Host: x\r\nHost: y',
      'Content-Length: 5',
      'Content-Length: -1',
      'Content-Length: 99999999999999999999',
      'Content-Length: 2\r\nContent-Length: 3',
      'Content-Length: 0x10',
      'Transfer-Encoding: chunked',
      'Transfer-Encoding: gzip, chunked',
      'Transfer-Encoding: chunked\r\nContent-Length: 3',
      'Transfer-Encoding: xchunked',
      'Content-Type: application/json',
      'Content-Encoding: gzip',
      'Expect: 100-continue',
      'Expect: 200-ok',
      'Upgrade: websocket\r\nConnection: Upgrade',
      'Connection: close',
      'X-Folded: a\r\n  b',
      ' X-Leading-Space: a',
      'X-No-Colon',
      'X-Space : a',
      'X-Nul: a\u0000b',
      'X-Bare-LF: a\nX-Other: b',
      'X-High: \u00e9\u00ff',
      ':',
      'Last-Event-ID: 0',
    ),
    fc.tuple(fc.stringMatching(/^[\x21-\x7e]{1,20}$/), fc.stringMatching(/^[\x20-\x7e]{0,40}$/)).map(([k, v]) => `${k}: ${v}`),
  );
  const body = fc.constantFrom(
    '',
    '{}',
    '{"ids":["a"]}',
    '5\r\nhello\r\n0\r\n\r\n',
    'zz\r\n',
    '0\r\n\r\n',
    '3;ext=1\r\n{"i\r\n0\r\nTrailer: x\r\n\r\n',
    '{"payload":',
  );
  const line = fc.oneof(
    fc.tuple(method, target, version).map(([m, t, v]) => `${m} ${t} ${v}`.trimEnd()),
    fc.constantFrom('GET', '\r\n', 'GET /  HTTP/1.1', 'GET /registry/head HTTP/1.1 extra', 'GET\u0000/ HTTP/1.1', 'GET /\u00e9 HTTP/1.1'),
  );
  return fc
    .record({ line, headers: fc.array(header, { maxLength: 4 }), host: fc.boolean(), body, lf: fc.boolean() })
    .map(({ line: l, headers, host, body: b, lf }) => {
      const eol = lf ? '\n' : '\r\n';
      const all = host ? ['Host: x', ...headers] : headers;
      const text = `${l}${eol}${all.map((h) => `${h}${eol}`).join('')}${eol}${b}`;
      const label = JSON.stringify(text.slice(0, 300));
      return { bytes: Buffer.from(text, 'latin1'), label, [fc.toStringMethod]: () => label };
    });
}
