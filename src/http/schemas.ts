// The schemas of the HTTP surface (SPEC §6, §7). Each serves three purposes: Fastify validates
// requests with them (and the type provider types `request.query`, `params` and `body` from
// them), serializes object answers with them (fast-json-stringify), and @fastify/swagger
// documents the surface from them at GET /openapi.json (./openapi.ts).
//
// Many answers are pre-built bytes (commit records and audit events served exactly as hashed,
// precomputed head, lookup and listing bodies with their ETags): Fastify sends a Buffer or a
// string as it is, so their schemas describe those bytes without ever serializing them.
// fast-json-stringify drops the fields an object answer's schema does not list: the schemas
// of object answers list every field their handlers send.
import Type, { type Static, type TSchema } from 'typebox';
import { HASH_PATTERN } from '../core/encoding.js';
import { ERROR_STATUS, type ErrorCode } from '../core/errors.js';
import {
  Approval,
  type AuditKind,
  CommitRecord as CommitRecordBody,
  Descriptor,
  DescriptorId,
  GenesisPayload,
  Hash,
  PROPOSAL_STATUSES,
  ProposalPayload,
  ProposalSubmission as ProposalSubmissionBody,
  RegistryId,
  SignerId,
  SignerSet,
  Time,
} from '../core/schemas.js';
import { MAX_FREEZE_REASON } from '../core/freeze.js';
import * as EX from './examples.js';
import { HEAD_CACHE, IMMUTABLE } from './send.js';

// ---------------------------------------------------------------------------------------------
// Document-only annotations

/** Keyword of a schema served as stored: see `asStored`. */
export const AS_STORED = 'x-as-stored';

/** A signed document embedded in an answer as it was stored (canonical JSON, the bytes that were
 * hashed): fast-json-stringify writes it with JSON.stringify, keeping every byte and its key
 * order (it would put required keys first), and the document shows `schema`, which the value
 * was validated against when it was received. */
const asStored = <T extends TSchema>(schema: T) => Type.Unsafe<Static<T>>({ [AS_STORED]: schema });

/** Schemas shown once under components/schemas and referenced wherever they appear, keyed by
 * the schema object itself (TypeBox composes by reference). */
export const COMPONENTS = new Map<object, string>();
/** The schema each component name stands for. */
export const COMPONENT_SCHEMAS: Record<string, TSchema> = {};

function component<T extends TSchema>(name: string, schema: T, canonical = true): T {
  COMPONENTS.set(schema, name);
  if (canonical) COMPONENT_SCHEMAS[name] = schema;
  return schema;
}
component('Descriptor', Descriptor);
component('SignerSet', SignerSet);
component('Approval', Approval);
component('ProposalPayload', ProposalPayload);
component('GenesisPayload', GenesisPayload);

// ---------------------------------------------------------------------------------------------
// The error envelope (SPEC §7)

const ERROR_CODES = Object.keys(ERROR_STATUS) as ErrorCode[];

const ErrorBody = Type.Object({
  code: Type.Enum(ERROR_CODES, { description: 'Stable across releases; the HTTP status follows from it (SPEC §7).' }),
  message: Type.String({ description: 'What was wrong, for a person; not stable.' }),
  hint: Type.String({ description: 'What to do about it; empty when there is nothing to add.' }),
  retryable: Type.Boolean({ description: 'True when the same request may succeed later (429, 503).' }),
  request_id: Type.String({ description: 'The request id, also sent as X-Request-Id.' }),
});

export const ErrorEnvelope = component(
  'ErrorEnvelope',
  Type.Object({ error: ErrorBody }, { description: 'The error envelope of every refusal (SPEC §7).', examples: [EX.ERROR] }),
);

const WHEN: Record<ErrorCode, string> = {
  BadRequest: 'malformed JSON, a schema violation, an unknown field, a bad parameter or filter',
  NotFound: 'no such version, proposal, descriptor or route',
  StaleVersion: 'the proposal base is not the head, or the proposal is stale',
  Gone: 'the proposal has expired, or retention pruned the version, state or payload asked for (see the hint)',
  PayloadTooLarge: 'the body is over 1 MiB',
  UnsupportedMediaType: 'the body is not application/json, or it is compressed',
  BadSignature: 'an invalid signature, an unknown or removed signer, or another registry id',
  RateLimited: 'a per-client limit was reached; see Retry-After',
  Unavailable: 'the registry is shutting down, or the write plane is frozen, degraded or overloaded; see Retry-After',
};

const RETRY_AFTER = {
  'retry-after': { type: 'integer', minimum: 0, description: 'Seconds to wait before trying again.' },
};

/** The answer for one error code: the envelope, described for its status. */
const errorAnswer = (code: ErrorCode) =>
  component(
    'ErrorEnvelope',
    Type.Object(
      { error: ErrorBody },
      {
        description: `${code}: ${WHEN[code]}.`,
        ...(code === 'RateLimited' || code === 'Unavailable' ? { headers: RETRY_AFTER } : {}),
      },
    ),
    false,
  );
const ERROR_ANSWERS = Object.fromEntries(ERROR_CODES.map((code) => [code, errorAnswer(code)])) as Record<
  ErrorCode,
  ReturnType<typeof errorAnswer>
>;

/** Any route may answer these: a malformed URL (400), a compressed body (415), shutdown or an
 * internal error (503). */
const ANY_ROUTE: ErrorCode[] = ['BadRequest', 'UnsupportedMediaType', 'Unavailable'];

/** The error answers of a route, by status: those of every route and `codes`. */
export function errorAnswers(...codes: ErrorCode[]) {
  const answers: Record<number, typeof ErrorEnvelope> = {};
  for (const code of [...ANY_ROUTE, ...codes]) answers[ERROR_STATUS[code]] = ERROR_ANSWERS[code];
  return answers;
}

// ---------------------------------------------------------------------------------------------
// Cache headers and revalidation (SPEC §6)

const cacheHeaders = (cacheControl: string) => ({
  etag: { type: 'string', description: 'A strong tag of the bytes served: send it back in If-None-Match to revalidate.' },
  'cache-control': { type: 'string', description: `\`${cacheControl}\`.` },
});
const HEAD_CACHE_HEADERS = cacheHeaders(HEAD_CACHE);
const IMMUTABLE_HEADERS = cacheHeaders(IMMUTABLE);

export const NotModified = Type.Null({ description: 'Not Modified: If-None-Match holds the current ETag; no body.' });

// ---------------------------------------------------------------------------------------------
// Path parameters and queries. Path parameters carry no pattern: the handlers parse them, so
// that a word is a 404 and a malformed number a 400 with its own message.

export const VersionParams = Type.Object({
  version: Type.String({
    description: 'A version: a non-negative integer in canonical decimal (no sign, no leading zero).',
    examples: ['1'],
  }),
});

export const ProposalIdParams = Type.Object({
  id: Type.String({
    description: 'The proposal id, which is its payload hash: `b3:` and 64 lowercase hex characters, URL-encoded or not.',
    examples: [EX.PROPOSAL_ID],
  }),
});

/** `/registry/descriptors/*`: the id is the rest of the path, percent-decoded (it may hold `/`).
 * The route validates no params (TypeBox cannot compile a property named `*`): this schema
 * only documents it, as `{id}` (./openapi.ts). */
export const DescriptorIdPath = Type.String({
  description: 'A descriptor id: 1-256 characters of `A-Z a-z 0-9 . _ : @ / -`, percent-encoded where a URL needs it.',
  examples: ['svc-storage@eu-west-1'],
});

const INCLUDE_EXPIRED = Type.Optional(
  Type.String({ maxLength: 5, description: '`true` to include expired descriptors; default `false`.', examples: ['true'] }),
);

export const ListingQuery = Type.Object(
  {
    // The filter's own limit (4,096 characters) is checked by its parser, with the position.
    filter: Type.Optional(
      Type.String({
        maxLength: 8192,
        description: 'A filter expression (SPEC §11), at most 4,096 characters.',
        examples: ["labels.region == 'eu-west-1' AND kind IN ['service','node']"],
      }),
    ),
    kind: Type.Optional(
      Type.String({ maxLength: 64, description: "Only this kind: the same as `AND kind == '…'`.", examples: ['service'] }),
    ),
    limit: Type.Optional(Type.String({ maxLength: 16, description: 'Page size, 1-1000; default 100.', examples: ['100'] })),
    cursor: Type.Optional(
      Type.String({
        maxLength: 2048,
        description: '`next_cursor` of the previous page, unchanged, with the same query. It pins the version of the first page.',
      }),
    ),
    include_expired: INCLUDE_EXPIRED,
  },
  { additionalProperties: false },
);

export const ExpiredQuery = Type.Object({ include_expired: INCLUDE_EXPIRED }, { additionalProperties: false });

export const DiffQuery = Type.Object(
  {
    from: Type.String({ maxLength: 20, description: 'The version to compare from.', examples: ['0'] }),
    to: Type.String({ maxLength: 20, description: 'The version to compare to, at most the head.', examples: ['1'] }),
  },
  { additionalProperties: false },
);

const QueryInt = (description: string, example: string) => Type.Optional(Type.String({ maxLength: 16, description, examples: [example] }));

export const ProposalListQuery = Type.Object(
  {
    status: Type.Optional(
      Type.Union(
        PROPOSAL_STATUSES.map((s) => Type.Literal(s)),
        { description: 'Only proposals in this status.' },
      ),
    ),
    limit: QueryInt('Page size, 1-1000; default 100.', '100'),
    cursor: Type.Optional(Type.String({ maxLength: 200, description: '`next_cursor` of the previous page, unchanged.' })),
  },
  { additionalProperties: false },
);

export const AuditQuery = Type.Object(
  {
    from_seq: QueryInt('The first event to return (inclusive); default 1.', '1'),
    limit: QueryInt('Page size, 1-1000; default 100.', '100'),
  },
  { additionalProperties: false },
);

// ---------------------------------------------------------------------------------------------
// Request bodies

const BATCH_MAX = 1000;

export const BatchBody = Type.Object(
  {
    ids: Type.Array(DescriptorId, { minItems: 1, maxItems: BATCH_MAX, description: `1-${BATCH_MAX} distinct descriptor ids.` }),
    include_expired: Type.Optional(Type.Boolean({ description: 'Include expired descriptors; default false.' })),
  },
  { additionalProperties: false, examples: [EX.BATCH_REQUEST] },
);

export const ProposalSubmission = Type.Object(ProposalSubmissionBody.properties, {
  additionalProperties: false,
  description: 'A proposal payload (SPEC §3) and at least one approval by a current signer (SPEC §2).',
  examples: [EX.PROPOSAL_SUBMISSION],
});

export const ApprovalBody = Type.Object(Approval.properties, {
  additionalProperties: false,
  description: 'An Ed25519 signature over `registry-approval-v1:<proposal id>` (SPEC §2).',
  examples: [EX.APPROVAL],
});

// ---------------------------------------------------------------------------------------------
// Answers

const VersionNumber = Type.Integer({ minimum: 0, description: 'A version of the log.' });

export const HeadAnswer = Type.Object(
  {
    version: VersionNumber,
    hash: Hash,
    prev_hash: Type.Union([Hash, Type.Null()]),
    state_root: Hash,
    committed_at: Time,
    descriptor_count: Type.Integer({ minimum: 0 }),
    signer_set: SignerSet,
  },
  {
    description: 'The head: its version, the hash of its commit record, and the signer set in force. Canonical JSON.',
    examples: [EX.HEAD],
    headers: HEAD_CACHE_HEADERS,
  },
);

export const CommitRecordAnswer = Type.Object(CommitRecordBody.properties, {
  additionalProperties: false,
  description: 'The commit record at that version (SPEC §4), served as hashed: its canonical JSON, whose BLAKE3 is the ETag.',
  examples: [EX.COMMIT_RECORD, EX.GENESIS_RECORD],
  headers: IMMUTABLE_HEADERS,
});

const CHECKPOINT_EXAMPLE = {
  version: 1000,
  hash: 'b3:5f0c4bd7e2a9e53c1f8b2b7d6c0e6e5b1c7d8a9f0e1d2c3b4a5968778695a4b3',
  state_root: 'b3:0d3c6b1f9e8a7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d',
  descriptor_count: 48213,
  created_at: '2026-11-23T15:04:05.123Z',
};

const CheckpointBody = Type.Object(
  {
    version: VersionNumber,
    hash: Hash,
    state_root: Hash,
    descriptor_count: Type.Integer({ minimum: 0 }),
    created_at: Time,
  },
  { additionalProperties: false },
);

export const CheckpointAnswer = Type.Object(CheckpointBody.properties, {
  additionalProperties: false,
  description:
    "A checkpoint (SPEC §10): the hash of the record at its version and that record's state root. Its state is served by " +
    'GET /registry/{version}/descriptors.',
  examples: [CHECKPOINT_EXAMPLE],
});

export const CheckpointList = Type.Object(
  { items: Type.Array(CheckpointBody) },
  {
    description: 'Every checkpoint kept, oldest first: the oldest is the retention horizon, before which records may be pruned.',
    examples: [{ items: [CHECKPOINT_EXAMPLE] }],
  },
);

const DescriptorItem = component(
  'DescriptorItem',
  Type.Object({
    id: DescriptorId,
    changed_in: Type.Integer({ minimum: 1, description: 'The version that last put this descriptor.' }),
    descriptor: Descriptor,
  }),
);

const listing = (description: string, headers: object) =>
  Type.Object(
    {
      version: VersionNumber,
      items: Type.Array(DescriptorItem, { description: 'In ascending order of id.' }),
      next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'The cursor of the next page; null on the last.' }),
    },
    { description, examples: [EX.LISTING], headers },
  );
export const HeadListingAnswer = listing('A page of the descriptors at the head (or at the version a cursor pins).', HEAD_CACHE_HEADERS);
export const VersionListingAnswer = listing('A page of the descriptors at that version.', IMMUTABLE_HEADERS);

export const LookupAnswer = Type.Object(
  { version: VersionNumber, changed_in: Type.Integer({ minimum: 1 }), descriptor: Descriptor },
  { description: 'The descriptor at the head.', examples: [EX.LOOKUP], headers: HEAD_CACHE_HEADERS },
);

export const BatchAnswer = Type.Object(
  {
    version: VersionNumber,
    items: Type.Array(DescriptorItem, { description: 'The descriptors found, in the order asked.' }),
    missing: Type.Array(DescriptorId, { description: 'The ids absent or expired, in the order asked.' }),
  },
  { description: 'The descriptors asked for, all at one version (the head).', examples: [EX.BATCH_ANSWER] },
);

export const DiffAnswer = Type.Object(
  {
    from: VersionNumber,
    to: VersionNumber,
    added: Type.Array(Descriptor),
    removed: Type.Array(Descriptor),
    changed: Type.Array(Type.Object({ id: DescriptorId, before: Descriptor, after: Descriptor })),
    signer_set: Type.Union([Type.Object({ before: SignerSet, after: SignerSet }), Type.Null()], {
      description: 'The signer set before and after, when it changed.',
    }),
  },
  {
    description: 'What changed between two versions: descriptors added, removed and changed (sorted by id), and the signer set.',
    examples: [EX.DIFF],
    headers: IMMUTABLE_HEADERS,
  },
);

/** Every kind of audit event (a Record, so that the compiler sees a kind missing). */
const AUDIT_KINDS: Record<AuditKind, true> = {
  proposal_received: true,
  approval_accepted: true,
  approval_refused: true,
  committed: true,
  proposal_stale: true,
  proposal_expired: true,
  frozen: true,
  thawed: true,
};

const AuditEvent = component(
  'AuditEvent',
  Type.Object(
    {
      seq: Type.Integer({ minimum: 1 }),
      prev_hash: Type.Union([Hash, Type.Null()], { description: 'The hash of the event before (its canonical JSON); null for seq 1.' }),
      at: Time,
      kind: Type.Enum(Object.keys(AUDIT_KINDS) as AuditKind[]),
      proposal_id: Type.Optional(Hash),
      signer_id: Type.Optional(SignerId),
      version: Type.Optional(VersionNumber),
      reason: Type.Optional(Type.String()),
    },
    { description: 'An audit event, exactly as hashed (SPEC §9).' },
  ),
);

export const AuditPage = Type.Object(
  {
    events: Type.Array(AuditEvent),
    next_from_seq: Type.Integer({ minimum: 1, description: 'from_seq of the next page.' }),
  },
  { description: 'A page of the hash-chained audit log; each event is its stored canonical JSON.', examples: [EX.AUDIT_PAGE] },
);

const commitEvent = {
  version: EX.HEAD.version,
  hash: EX.HEAD.hash,
  prev_hash: EX.HEAD.prev_hash,
  committed_at: EX.HEAD.committed_at,
  changed: ['node-17', 'svc-storage@eu-west-1'],
  changed_count: 2,
};

/** GET /registry/stream: not JSON, and never serialized (the route hands the socket over). */
export const StreamAnswer = {
  description:
    'A Server-Sent Events stream: `event: commit` per commit (`id: <version>`, data `{version, hash, prev_hash, committed_at, ' +
    'changed (the first 100 ids), changed_count}`); `event: reset` with the head when the resume point is older than the ' +
    'service holds; `event: lagged` before a subscriber that fell too far behind is closed; a comment line every 15 s.',
  content: {
    'text/event-stream': {
      schema: Type.String({ examples: [`id: ${commitEvent.version}\nevent: commit\ndata: ${JSON.stringify(commitEvent)}\n\n`] }),
    },
  },
};

// Proposal views (src/state/proposal-view.ts). fast-json-stringify writes required fields first,
// then the optional ones present, each group in this order.
const viewFields = {
  proposal_id: Type.String({ pattern: HASH_PATTERN, description: 'The payload hash.' }),
  status: Type.Enum(PROPOSAL_STATUSES),
  approvals: Type.Array(Type.Object({ signer_id: SignerId }), { description: 'The signers whose approvals were accepted, sorted.' }),
  threshold: Type.Integer({ minimum: 1, description: 'The threshold of the signer set in force at the base.' }),
  proposed_threshold: Type.Optional(Type.Integer({ minimum: 1, description: 'The threshold of the set a set_signers op proposes.' })),
  version: Type.Optional(Type.Integer({ minimum: 1, description: 'The version it committed as.' })),
};

const proposalView = (description: string, example: object) => Type.Object(viewFields, { description, examples: [example] });
export const ProposalCreated = proposalView('A new proposal: where it stands.', EX.PROPOSAL_PENDING);
export const ProposalKnown = proposalView('The payload was known already: where it stands now.', EX.PROPOSAL_COMMITTED);
export const ProposalApproved = proposalView('Where the proposal stands after the approval.', EX.PROPOSAL_COMMITTED);

export const ProposalDetail = Type.Object(
  { ...viewFields, payload: asStored(ProposalPayload) },
  { description: 'Where the proposal stands, and its payload.', examples: [EX.PROPOSAL_FULL] },
);

export const ProposalList = Type.Object(
  {
    items: Type.Array(Type.Object({ ...viewFields, created_at: Time, received_at: Time }), {
      description: 'In the order received.',
    }),
    next_cursor: Type.Union([Type.String(), Type.Null()], { description: 'The cursor of the next page; null on the last.' }),
  },
  { description: 'A page of proposals.', examples: [EX.PROPOSAL_LIST] },
);

// Operator answers.
export const HealthAnswer = Type.Object(
  { status: Type.Literal('ok') },
  { description: 'The process is alive.', examples: [{ status: 'ok' }] },
);

export const ReadyAnswer = Type.Object(
  {
    read: Type.Boolean({ description: 'Reads are served (always true in a 200).' }),
    write: Type.Boolean({ description: 'Writes are accepted.' }),
    reasons: Type.Array(Type.String(), { description: 'Why writes are not accepted.' }),
  },
  { description: 'Reads are served; whether writes are too.', examples: [EX.READY] },
);

// The operator's freeze and thaw (README → Operations → Freeze and thaw).
const FreezeReason = Type.String({
  minLength: 1,
  maxLength: MAX_FREEZE_REASON,
  description: 'Why, in the audit log and in every refusal.',
});

export const OperatorAuthorization = Type.Object(
  { authorization: Type.String({ description: '`Bearer <operator token>` (operatorToken / operatorTokenFile).' }) },
  { additionalProperties: true },
);

export const FreezeBody = Type.Object(
  { reason: FreezeReason },
  { additionalProperties: false, examples: [{ reason: 'signer key compromise under investigation (INC-4127)' }] },
);

export const ThawBody = Type.Object(
  { reason: Type.Optional(FreezeReason) },
  { additionalProperties: false, examples: [{ reason: 'keys rotated' }, {}] },
);

export const FreezeAnswer = Type.Object(
  {
    frozen: Type.Boolean({ description: 'Whether the write plane is frozen now.' }),
    reason: Type.Optional(Type.String({ description: "Why it is frozen (the frozen audit event's reason)." })),
    since: Type.Optional(Time),
    changed: Type.Boolean({ description: 'False when the registry was already in that state: nothing was audited.' }),
  },
  {
    additionalProperties: false,
    description: "The write plane's state after the command.",
    examples: [
      { frozen: true, reason: 'signer key compromise under investigation (INC-4127)', since: '2026-11-23T12:00:00.000Z', changed: true },
      { frozen: false, changed: true },
    ],
  },
);

export const VersionAnswer = Type.Object(
  {
    service: Type.String(),
    version: Type.String({ description: 'The release of the service.' }),
    schema_version: Type.Integer({ description: 'The version of the wire contract.' }),
    registry_id: RegistryId,
    genesis_hash: Hash,
  },
  { description: 'What this service is, and which registry it serves.', examples: [EX.VERSION] },
);
