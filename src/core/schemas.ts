// JSON schemas of everything the registry receives or records (SPEC §1, §3, §4). One schema
// gives HTTP validation (Fastify), file validation (genesis, CLI) and the TypeScript types.
// Every object rejects unknown fields.
import Type, { type Static } from 'typebox';
import { HASH_PATTERN, TIME_PATTERN } from './encoding.js';

export const DESCRIPTOR_ID_PATTERN = '^[A-Za-z0-9._:@/-]{1,256}$';
export const SIGNER_ID_PATTERN = '^[a-z0-9._-]{1,64}$';
export const KIND_PATTERN = '^[a-z0-9._-]{1,64}$';
export const LABEL_KEY_PATTERN = '^[A-Za-z0-9._/-]{1,63}$';
// SPEC §3 names registry ids only by example; we allow what a hostname label or a
// signer id would need, so an id is always safe in a URL, a file name and a log line.
export const REGISTRY_ID_PATTERN = '^[A-Za-z0-9._-]{1,64}$';

export const MAX_OPS = 10_000;
export const MAX_LABELS = 64;
export const MAX_SIGNERS = 64;
export const MAX_REASON = 1024;

const closed = { additionalProperties: false } as const;

export const Hash = Type.String({ pattern: HASH_PATTERN });
export const Time = Type.String({ pattern: TIME_PATTERN });
export const SignerId = Type.String({ pattern: SIGNER_ID_PATTERN });
export const DescriptorId = Type.String({ pattern: DESCRIPTOR_ID_PATTERN });
export const RegistryId = Type.String({ pattern: REGISTRY_ID_PATTERN });
export const PublicKey = Type.String({ pattern: '^[0-9a-f]{64}$' });
export const Signature = Type.String({ pattern: '^[0-9a-f]{128}$' });

export const Descriptor = Type.Object(
  {
    id: DescriptorId,
    kind: Type.String({ pattern: KIND_PATTERN }),
    labels: Type.Record(Type.String({ pattern: LABEL_KEY_PATTERN }), Type.String({ maxLength: 1024 }), {
      maxProperties: MAX_LABELS,
      additionalProperties: false,
    }),
    body: Type.Record(Type.String(), Type.Unknown()),
    expires_at: Type.Optional(Time),
  },
  closed,
);
export type Descriptor = Static<typeof Descriptor>;

export const SignerEntry = Type.Object({ id: SignerId, public_key: PublicKey }, closed);
export type SignerEntry = Static<typeof SignerEntry>;

export const SignerSet = Type.Object(
  {
    threshold: Type.Integer({ minimum: 1, maximum: MAX_SIGNERS }),
    signers: Type.Array(SignerEntry, { minItems: 1, maxItems: MAX_SIGNERS }),
  },
  closed,
);
export type SignerSet = Static<typeof SignerSet>;

export const PutOp = Type.Object({ op: Type.Literal('put'), descriptor: Descriptor }, closed);
export const DeleteOp = Type.Object({ op: Type.Literal('delete'), id: DescriptorId }, closed);
export const SetSignersOp = Type.Object({ op: Type.Literal('set_signers'), signer_set: SignerSet }, closed);
export const Op = Type.Union([PutOp, DeleteOp, SetSignersOp]);
export type PutOp = Static<typeof PutOp>;
export type DeleteOp = Static<typeof DeleteOp>;
export type SetSignersOp = Static<typeof SetSignersOp>;
export type Op = Static<typeof Op>;

export const ProposalPayload = Type.Object(
  {
    type: Type.Literal('registry.proposal'),
    schema_version: Type.Literal(1),
    registry_id: RegistryId,
    base_version: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    base_hash: Hash,
    ops: Type.Array(Op, { minItems: 1, maxItems: MAX_OPS }),
    reason: Type.Optional(Type.String({ maxLength: MAX_REASON })),
    created_at: Time,
    expires_at: Type.Optional(Time),
  },
  closed,
);
export type ProposalPayload = Static<typeof ProposalPayload>;

export const GenesisPayload = Type.Object(
  {
    type: Type.Literal('registry.genesis'),
    schema_version: Type.Literal(1),
    registry_id: RegistryId,
    signer_set: SignerSet,
    created_at: Time,
  },
  closed,
);
export type GenesisPayload = Static<typeof GenesisPayload>;

export const Approval = Type.Object({ signer_id: SignerId, sig: Signature }, closed);
export type Approval = Static<typeof Approval>;

export const CommitRecord = Type.Object(
  {
    type: Type.Literal('registry.commit'),
    schema_version: Type.Literal(1),
    registry_id: RegistryId,
    version: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    prev_hash: Type.Union([Hash, Type.Null()]),
    payload: Type.Union([ProposalPayload, GenesisPayload]),
    payload_hash: Hash,
    approvals: Type.Array(Approval, { minItems: 1, maxItems: 2 * MAX_SIGNERS }),
    state_root: Hash,
    committed_at: Time,
  },
  closed,
);
export type CommitRecord = Static<typeof CommitRecord>;

// HTTP request bodies (SPEC §6).
export const ProposalSubmission = Type.Object(
  { payload: ProposalPayload, approvals: Type.Array(Approval, { minItems: 1, maxItems: 2 * MAX_SIGNERS }) },
  closed,
);
export type ProposalSubmission = Static<typeof ProposalSubmission>;

/** A proposal submission as the write plane screens it before validating it in full: its
 * approvals checked, its payload only an object (SPEC §6; see screenApprovals). */
export const SubmissionShape = Type.Object(
  { payload: Type.Object({}, { additionalProperties: true }), approvals: ProposalSubmission.properties.approvals },
  closed,
);

export type ProposalStatus = 'pending' | 'committed' | 'stale' | 'expired';
export const PROPOSAL_STATUSES: readonly ProposalStatus[] = ['pending', 'committed', 'stale', 'expired'];

/** An audit event exactly as hashed and served (SPEC §9). */
export interface AuditEvent {
  seq: number;
  prev_hash: string | null;
  at: string;
  kind: AuditKind;
  proposal_id?: string;
  signer_id?: string;
  version?: number;
  reason?: string;
}
export type AuditKind =
  | 'proposal_received'
  | 'approval_accepted'
  | 'approval_refused'
  | 'committed'
  | 'proposal_stale'
  | 'proposal_expired'
  | 'frozen'
  | 'thawed';
