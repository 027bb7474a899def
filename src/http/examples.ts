// Examples for the OpenAPI document (GET /openapi.json): the real answers of a small registry
// (prod-eu, signers alice, bob and carol, threshold 2) through one governed change. The OpenAPI
// test checks every example against the schema it illustrates.

/** The payload hash of the example proposal: its id. */
export const PROPOSAL_ID = 'b3:d37dabda48982e279c1a24d6e28d6e77489d91f4f1a5382e76f00cac56bcf933';

/** GET /registry/0: the genesis record. */
export const GENESIS_RECORD = {
  type: 'registry.commit',
  schema_version: 1,
  registry_id: 'prod-eu',
  version: 0,
  prev_hash: null,
  payload: {
    type: 'registry.genesis',
    schema_version: 1,
    registry_id: 'prod-eu',
    signer_set: {
      threshold: 2,
      signers: [
        { id: 'alice', public_key: 'd5bf4a3fcce717b0388bcc2749ebc148ad9969b23f45ee1b605fd58778576ac4' },
        { id: 'bob', public_key: 'ecc1b58727f3f12b3194881a9ecb9de0b28ce7b207230d8e930fe1bce75e256c' },
        { id: 'carol', public_key: '26b1c72849b93ca53664ca8240643c514c471ca0a4a424e24cf2ccc80a39933e' },
      ],
    },
    created_at: '2026-11-20T09:00:00.000Z',
  },
  payload_hash: 'b3:896baf187781bff162a1db0967cf6c3f1afc0a6c32f74348bcd282a6650f8625',
  approvals: [
    {
      signer_id: 'alice',
      sig: '3215e0d294bdcdd45e79e02eeb11699254c6c810bfd347b1889625bf19f365cd8502ad41e43dc3a6c6f3c8d44133d336858ac210e1d42869e0458a2da03a7f02',
    },
    {
      signer_id: 'bob',
      sig: '7133391ed7229a6ab7e6cb186a188f4b859aab0b23862579bd333392c994ecb4c9a502eb4b2b37cf2650146705a21269f911ad8d7ed4df54b6deb3ac59a85702',
    },
  ],
  state_root: 'b3:51d0f4d1925790ea639aa9cd1079c45a3b784dc15b3b87fa8a262a0c8df53377',
  committed_at: '2026-11-20T09:00:00.000Z',
};

/** POST /registry/proposals: a proposal with one approval. */
export const PROPOSAL_SUBMISSION = {
  payload: {
    type: 'registry.proposal',
    schema_version: 1,
    registry_id: 'prod-eu',
    base_version: 0,
    base_hash: 'b3:6008c36189be91cdf87629e8f6d54aca195030589c9623961d8658976845aa54',
    ops: [
      {
        op: 'put',
        descriptor: {
          id: 'svc-storage@eu-west-1',
          kind: 'service',
          labels: { region: 'eu-west-1', tier: 'gold' },
          body: { endpoint: 'https://storage.eu-west-1.example.net', port: 443 },
        },
      },
      {
        op: 'put',
        descriptor: {
          id: 'node-17',
          kind: 'node',
          labels: { region: 'eu-west-1', status: 'online' },
          body: { cores: 16 },
          expires_at: '2027-01-01T00:00:00.000Z',
        },
      },
    ],
    reason: 'add the EU storage service and its first node',
    created_at: '2026-11-22T17:00:00.000Z',
    expires_at: '2026-11-25T17:00:00.000Z',
  },
  approvals: [
    {
      signer_id: 'alice',
      sig: 'bd29f26eb87c9f46209088c765eb1fa03a860b4a878ec1ec4bf0054fc9671623106203abcbf6f40bb2b751c356bff0b02b51569d93e880ebff9e7c0ffbaf2c09',
    },
  ],
};

/** The answer to the submission: pending, one approval of two. */
export const PROPOSAL_PENDING = {
  proposal_id: 'b3:d37dabda48982e279c1a24d6e28d6e77489d91f4f1a5382e76f00cac56bcf933',
  status: 'pending',
  approvals: [{ signer_id: 'alice' }],
  threshold: 2,
};

/** POST /registry/proposals/{id}/approvals: the second approval. */
export const APPROVAL = {
  signer_id: 'carol',
  sig: '7a447f269ccfff02154da0cb3a9e2ced758349276841494dcf8e4f05eb66813b124cfe88d3f26fad2ae5482128c141e87ecbb4356fb9998bdecac5c4fadce601',
};

/** The answer to the approval that reached quorum. */
export const PROPOSAL_COMMITTED = {
  proposal_id: 'b3:d37dabda48982e279c1a24d6e28d6e77489d91f4f1a5382e76f00cac56bcf933',
  status: 'committed',
  approvals: [{ signer_id: 'alice' }, { signer_id: 'carol' }],
  threshold: 2,
  version: 1,
};

/** GET /registry/proposals/{id}: the view and the payload. */
export const PROPOSAL_FULL = {
  proposal_id: 'b3:d37dabda48982e279c1a24d6e28d6e77489d91f4f1a5382e76f00cac56bcf933',
  status: 'pending',
  approvals: [{ signer_id: 'alice' }],
  threshold: 2,
  payload: {
    base_hash: 'b3:6008c36189be91cdf87629e8f6d54aca195030589c9623961d8658976845aa54',
    base_version: 0,
    created_at: '2026-11-22T17:00:00.000Z',
    expires_at: '2026-11-25T17:00:00.000Z',
    ops: [
      {
        descriptor: {
          body: { endpoint: 'https://storage.eu-west-1.example.net', port: 443 },
          id: 'svc-storage@eu-west-1',
          kind: 'service',
          labels: { region: 'eu-west-1', tier: 'gold' },
        },
        op: 'put',
      },
      {
        descriptor: {
          body: { cores: 16 },
          expires_at: '2027-01-01T00:00:00.000Z',
          id: 'node-17',
          kind: 'node',
          labels: { region: 'eu-west-1', status: 'online' },
        },
        op: 'put',
      },
    ],
    reason: 'add the EU storage service and its first node',
    registry_id: 'prod-eu',
    schema_version: 1,
    type: 'registry.proposal',
  },
};

/** GET /registry/proposals?limit=1. */
export const PROPOSAL_LIST = {
  items: [
    {
      proposal_id: 'b3:d37dabda48982e279c1a24d6e28d6e77489d91f4f1a5382e76f00cac56bcf933',
      status: 'committed',
      approvals: [{ signer_id: 'alice' }, { signer_id: 'carol' }],
      threshold: 2,
      version: 1,
      created_at: '2026-11-22T17:00:00.000Z',
      received_at: '2026-11-23T10:36:16.957Z',
    },
  ],
  next_cursor: null,
};

/** GET /registry/head. */
export const HEAD = {
  committed_at: '2026-11-23T10:36:16.985Z',
  descriptor_count: 2,
  hash: 'b3:c7ab58cb436e87d5cb64c7129cf0fea3f0658cdd188369dbc7fc08fda685ae17',
  prev_hash: 'b3:6008c36189be91cdf87629e8f6d54aca195030589c9623961d8658976845aa54',
  signer_set: {
    signers: [
      { id: 'alice', public_key: 'd5bf4a3fcce717b0388bcc2749ebc148ad9969b23f45ee1b605fd58778576ac4' },
      { id: 'bob', public_key: 'ecc1b58727f3f12b3194881a9ecb9de0b28ce7b207230d8e930fe1bce75e256c' },
      { id: 'carol', public_key: '26b1c72849b93ca53664ca8240643c514c471ca0a4a424e24cf2ccc80a39933e' },
    ],
    threshold: 2,
  },
  state_root: 'b3:5210a48a4dfca2f4aebd6168c43ab2105a49ce365e49d1c1a5f4b94b6b606a3e',
  version: 1,
};

/** GET /registry/1: the commit record, served as hashed (canonical JSON). */
export const COMMIT_RECORD = {
  approvals: [
    {
      sig: 'bd29f26eb87c9f46209088c765eb1fa03a860b4a878ec1ec4bf0054fc9671623106203abcbf6f40bb2b751c356bff0b02b51569d93e880ebff9e7c0ffbaf2c09',
      signer_id: 'alice',
    },
    {
      sig: '7a447f269ccfff02154da0cb3a9e2ced758349276841494dcf8e4f05eb66813b124cfe88d3f26fad2ae5482128c141e87ecbb4356fb9998bdecac5c4fadce601',
      signer_id: 'carol',
    },
  ],
  committed_at: '2026-11-23T10:36:16.985Z',
  payload: {
    base_hash: 'b3:6008c36189be91cdf87629e8f6d54aca195030589c9623961d8658976845aa54',
    base_version: 0,
    created_at: '2026-11-22T17:00:00.000Z',
    expires_at: '2026-11-25T17:00:00.000Z',
    ops: [
      {
        descriptor: {
          body: { endpoint: 'https://storage.eu-west-1.example.net', port: 443 },
          id: 'svc-storage@eu-west-1',
          kind: 'service',
          labels: { region: 'eu-west-1', tier: 'gold' },
        },
        op: 'put',
      },
      {
        descriptor: {
          body: { cores: 16 },
          expires_at: '2027-01-01T00:00:00.000Z',
          id: 'node-17',
          kind: 'node',
          labels: { region: 'eu-west-1', status: 'online' },
        },
        op: 'put',
      },
    ],
    reason: 'add the EU storage service and its first node',
    registry_id: 'prod-eu',
    schema_version: 1,
    type: 'registry.proposal',
  },
  payload_hash: 'b3:d37dabda48982e279c1a24d6e28d6e77489d91f4f1a5382e76f00cac56bcf933',
  prev_hash: 'b3:6008c36189be91cdf87629e8f6d54aca195030589c9623961d8658976845aa54',
  registry_id: 'prod-eu',
  schema_version: 1,
  state_root: 'b3:5210a48a4dfca2f4aebd6168c43ab2105a49ce365e49d1c1a5f4b94b6b606a3e',
  type: 'registry.commit',
  version: 1,
};

/** GET /registry/head/descriptors?limit=1. */
export const LISTING = {
  version: 1,
  items: [
    {
      id: 'node-17',
      changed_in: 1,
      descriptor: {
        body: { cores: 16 },
        expires_at: '2027-01-01T00:00:00.000Z',
        id: 'node-17',
        kind: 'node',
        labels: { region: 'eu-west-1', status: 'online' },
      },
    },
  ],
  next_cursor: 'WzEsIm5vZGUtMTciXQ.bwbzORq6R20LpKqwkTFhNQ',
};

/** GET /registry/descriptors/svc-storage@eu-west-1. */
export const LOOKUP = {
  version: 1,
  changed_in: 1,
  descriptor: {
    body: { endpoint: 'https://storage.eu-west-1.example.net', port: 443 },
    id: 'svc-storage@eu-west-1',
    kind: 'service',
    labels: { region: 'eu-west-1', tier: 'gold' },
  },
};

/** POST /registry/descriptors:batch. */
export const BATCH_REQUEST = { ids: ['svc-storage@eu-west-1', 'node-99'] };

/** Its answer. */
export const BATCH_ANSWER = {
  version: 1,
  items: [
    {
      id: 'svc-storage@eu-west-1',
      changed_in: 1,
      descriptor: {
        body: { endpoint: 'https://storage.eu-west-1.example.net', port: 443 },
        id: 'svc-storage@eu-west-1',
        kind: 'service',
        labels: { region: 'eu-west-1', tier: 'gold' },
      },
    },
  ],
  missing: ['node-99'],
};

/** GET /registry/diff?from=0&to=1. */
export const DIFF = {
  from: 0,
  to: 1,
  added: [
    {
      body: { cores: 16 },
      expires_at: '2027-01-01T00:00:00.000Z',
      id: 'node-17',
      kind: 'node',
      labels: { region: 'eu-west-1', status: 'online' },
    },
    {
      body: { endpoint: 'https://storage.eu-west-1.example.net', port: 443 },
      id: 'svc-storage@eu-west-1',
      kind: 'service',
      labels: { region: 'eu-west-1', tier: 'gold' },
    },
  ],
  removed: [],
  changed: [],
  signer_set: null,
};

/** GET /registry/audit?limit=2. */
export const AUDIT_PAGE = {
  events: [
    {
      at: '2026-11-23T10:36:16.957Z',
      kind: 'proposal_received',
      prev_hash: null,
      proposal_id: 'b3:d37dabda48982e279c1a24d6e28d6e77489d91f4f1a5382e76f00cac56bcf933',
      seq: 1,
    },
    {
      at: '2026-11-23T10:36:16.957Z',
      kind: 'approval_accepted',
      prev_hash: 'b3:d8f80e0dc4e7cdd4bc41bcfa64ef918ff6c2e44e18dcd1c43a1662c41f9d022a',
      proposal_id: 'b3:d37dabda48982e279c1a24d6e28d6e77489d91f4f1a5382e76f00cac56bcf933',
      seq: 2,
      signer_id: 'alice',
    },
  ],
  next_from_seq: 3,
};

/** GET /registry/7 at head 1. */
export const ERROR = {
  error: { code: 'NotFound', message: 'version 7 is past the head (1)', hint: '', retryable: false, request_id: 'd10e6e04-d' },
};

/** GET /version. */
export const VERSION = {
  service: 'signed-registry',
  version: '0.1.0',
  schema_version: 1,
  registry_id: 'prod-eu',
  genesis_hash: 'b3:6008c36189be91cdf87629e8f6d54aca195030589c9623961d8658976845aa54',
};

/** GET /readyz. */
export const READY = { read: true, write: true, reasons: [] };
