// The registry's HTTP surface as the CLI reads it (README → HTTP surface): typed calls, and
// the pages of a listing followed for the caller.
import type { AuditEvent, Descriptor, ProposalPayload, ProposalStatus, SignerSet } from '../core/schemas.js';
import type { ProposalView } from '../state/proposal-view.js';
import { call } from './http-client.js';

export interface HeadJson {
  version: number;
  hash: string;
  prev_hash: string | null;
  state_root: string;
  committed_at: string;
  descriptor_count: number;
  signer_set: SignerSet;
}

export interface VersionJson {
  service: string;
  version: string;
  schema_version: number;
  registry_id: string;
  genesis_hash: string;
}

export type ProposalJson = ProposalView & { payload: unknown };
export type ProposalItem = ProposalView & { created_at: string; received_at: string };

export interface DescriptorItem {
  id: string;
  changed_in: number;
  descriptor: Descriptor;
}

export interface DiffJson {
  from: number;
  to: number;
  added: Descriptor[];
  removed: Descriptor[];
  changed: { id: string; before: Descriptor; after: Descriptor }[];
  signer_set: { before: SignerSet; after: SignerSet } | null;
}

export type { ProposalPayload, ProposalStatus };

/** The largest batch lookup the registry answers. */
const BATCH = 1000;

export class RegistryApi {
  constructor(readonly url: string) {}

  head = (): Promise<HeadJson> => call(this.url, 'GET', 'registry/head');
  info = (): Promise<VersionJson> => call(this.url, 'GET', 'version');
  proposal = (id: string): Promise<ProposalJson> => call(this.url, 'GET', `registry/proposals/${encodeURIComponent(id)}`);
  approve = (id: string, approval: { signer_id: string; sig: string }): Promise<ProposalView> =>
    call(this.url, 'POST', `registry/proposals/${encodeURIComponent(id)}/approvals`, approval);
  submit = (body: { payload: ProposalPayload; approvals: { signer_id: string; sig: string }[] }): Promise<ProposalView> =>
    call(this.url, 'POST', 'registry/proposals', body);
  descriptor = (id: string, includeExpired: boolean): Promise<DescriptorItem & { version: number }> =>
    call(this.url, 'GET', `registry/descriptors/${encodeURIComponent(id)}${includeExpired ? '?include_expired=true' : ''}`);
  diff = (from: number, to: number): Promise<DiffJson> => call(this.url, 'GET', `registry/diff?from=${from}&to=${to}`);

  /** Proposals in the order received, at most `limit`, and whether more remain. */
  async proposals(status: ProposalStatus | undefined, limit: number): Promise<{ items: ProposalItem[]; more: boolean }> {
    const items: ProposalItem[] = [];
    let cursor: string | null = null;
    do {
      const query = new URLSearchParams({ limit: String(Math.min(1000, limit - items.length)) });
      if (status) query.set('status', status);
      if (cursor) query.set('cursor', cursor);
      const page: { items: ProposalItem[]; next_cursor: string | null } = await call(this.url, 'GET', `registry/proposals?${query}`);
      items.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor !== null && items.length < limit);
    return { items, more: cursor !== null };
  }

  /** Audit events from `fromSeq` on, at most `limit`. */
  async audit(fromSeq: number, limit: number): Promise<{ events: AuditEvent[]; nextFromSeq: number }> {
    const events: AuditEvent[] = [];
    let from = fromSeq;
    for (;;) {
      const want = Math.min(1000, limit - events.length);
      const page: { events: AuditEvent[]; next_from_seq: number } = await call(
        this.url,
        'GET',
        `registry/audit?from_seq=${from}&limit=${want}`,
      );
      events.push(...page.events);
      from = page.next_from_seq;
      if (page.events.length < want || events.length >= limit) return { events, nextFromSeq: from };
    }
  }

  /** The descriptors with these ids at the head, expired ones included, all at one version per
   * batch: the version of each batch is returned so that the caller can tell the head moved. */
  async lookup(ids: readonly string[]): Promise<{ versions: Set<number>; found: Map<string, Descriptor> }> {
    const versions = new Set<number>();
    const found = new Map<string, Descriptor>();
    for (let i = 0; i < ids.length; i += BATCH) {
      const answer: { version: number; items: DescriptorItem[] } = await call(this.url, 'POST', 'registry/descriptors:batch', {
        ids: ids.slice(i, i + BATCH),
        include_expired: true,
      });
      versions.add(answer.version);
      for (const item of answer.items) found.set(item.id, item.descriptor);
    }
    return { versions, found };
  }
}
