// The descriptor read plane (SPEC §6, §11): lookups, filtered listings of the head or of a past
// version, batch lookups and diffs. Answers at the head are revalidated every second; answers
// pinned to a version are immutable. ETags are the BLAKE3 of the bytes served, so they are
// strong and change exactly when the answer does (an expiry included).
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Static } from 'typebox';
import { hashBytes } from '../core/encoding.js';
import { badRequest, RegistryError } from '../core/errors.js';
import { compileQuery } from '../core/filter.js';
import { DESCRIPTOR_ID_PATTERN } from '../core/schemas.js';
import type { DescriptorIndex, Item } from '../state/descriptor-index.js';
import type { Snapshot } from '../state/version-snapshots.js';
import { changedIds, diffStates, type VersionState } from '../state/diff.js';
import type { RegistryContext } from './context.js';
import { HeadAnswers } from './head-answers.js';
import { parseQueryInt, parseVersion } from './params.js';
import {
  BatchAnswer,
  BatchBody,
  DiffAnswer,
  DiffQuery,
  errorAnswers,
  ExpiredQuery,
  HeadListingAnswer,
  ListingQuery,
  LookupAnswer,
  NotModified,
  VersionListingAnswer,
  VersionParams,
} from './schemas.js';
import { HEAD_CACHE, IMMUTABLE, sendBytes, sendJsonText } from './send.js';

/** A diff lists whole descriptors: past this many changed ids it must be narrowed. */
export const MAX_DIFF_IDS = 10_000;
const ID_RE = new RegExp(DESCRIPTOR_ID_PATTERN);

function parseBool(text: string | undefined, name: string): boolean {
  if (text === undefined || text === 'false') return false;
  if (text === 'true') return true;
  throw badRequest(`${name} must be true or false`);
}

const itemJson = (item: Item): string =>
  `{"id":${JSON.stringify(item.descriptor.id)},"changed_in":${item.changedIn},"descriptor":${item.json}}`;

/** Visible at `now` (ms), or always when `now` is undefined (include_expired). */
const visible = (item: Item | undefined, now: number | undefined): item is Item =>
  item !== undefined && (now === undefined || item.expiresAt > now);

export const descriptorRoutes =
  (ctx: RegistryContext): FastifyPluginAsync =>
  async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const headState = (): VersionState & { hash: string } => ({
      version: ctx.view.head.version,
      hash: ctx.view.head.hash,
      index: ctx.view.index,
      signerSet: ctx.view.state.signerSet,
    });

    /** The state at `version` (≤ head): the head's own, read in the same tick as the version
     * was chosen (a commit may land at any await), or a snapshot rebuilt from the log. */
    const stateAt = (version: number): { index: DescriptorIndex; committedAt: number } | Promise<Snapshot> => {
      const head = ctx.view.head;
      if (version === head.version) return { index: ctx.view.index, committedAt: Date.parse(head.committedAt) };
      return ctx.snapshots.at(version);
    };

    const answers = new HeadAnswers();

    /** Serves `body`, keeping it as this URL's answer when it was made from the head. */
    const send = (request: FastifyRequest, reply: FastifyReply, body: string, cacheControl: string, madeAt?: number) => {
      const bytes = Buffer.from(body);
      const answer = { body: bytes, etag: `"${hashBytes(bytes, ctx.view.state.digest)}"`, cacheControl };
      if (madeAt !== undefined) answers.set(request.url, madeAt, answer);
      return sendBytes(request, reply, bytes, answer.etag, cacheControl);
    };

    /** The kept answer to this very URL at the current head, if any: served before any parsing
     * (the URL was checked when the answer was made). */
    const sendKept = (request: FastifyRequest, reply: FastifyReply): FastifyReply | undefined => {
      const kept = answers.get(request.url, ctx.view.head.version, ctx.view.index, Date.now());
      return kept && sendBytes(request, reply, kept.body, kept.etag, kept.cacheControl);
    };

    async function listing(request: FastifyRequest, reply: FastifyReply, q: Static<typeof ListingQuery>, pinned: number | undefined) {
      const kept = sendKept(request, reply);
      if (kept) return kept;
      const limit = parseQueryInt(q.limit, 'limit', 100, 1, 1000);
      const includeExpired = parseBool(q.include_expired, 'include_expired');
      const query = compileQuery(q.filter, q.kind);
      const fingerprint = JSON.stringify([q.filter ?? null, q.kind ?? null, includeExpired]);
      const position = q.cursor === undefined ? undefined : ctx.cursors.decode(q.cursor, fingerprint);
      if (pinned !== undefined && position && position.version !== pinned) throw badRequest('the cursor pages another version');
      const version = pinned ?? position?.version ?? ctx.view.head.version;
      if (version > ctx.view.head.version)
        throw new RegistryError('NotFound', `version ${version} is past the head (${ctx.view.head.version})`);
      const found = stateAt(version);
      // No await for the head: awaiting even a plain value would let a commit in first.
      const atHead = !(found instanceof Promise);
      const state = atHead ? found : await found;
      // At the head, expiry is judged now; at a pinned version, when it was committed, so that
      // the answer never changes.
      const now = includeExpired ? undefined : pinned === undefined ? Date.now() : state.committedAt;
      const page = state.index.page({ matches: query.matches, hints: query.hints, after: position?.after, limit, now });
      const last = page.items[page.items.length - 1];
      const next = page.more && last ? JSON.stringify(ctx.cursors.encode({ version, after: last.descriptor.id }, fingerprint)) : 'null';
      const body = `{"version":${version},"items":[${page.items.map(itemJson).join(',')}],"next_cursor":${next}}`;
      return send(request, reply, body, pinned === undefined ? HEAD_CACHE : IMMUTABLE, atHead ? version : undefined);
    }

    const NOT_FOUND_PAST_HEAD = errorAnswers('NotFound');

    app.get(
      '/registry/head/descriptors',
      {
        schema: {
          summary: 'List descriptors at the head',
          description:
            'A page of the descriptors at the head, in ascending order of id, filtered by a SPEC §11 expression and/or a kind. ' +
            'Expired descriptors are left out unless include_expired=true. `next_cursor` pages on at the version of the first page ' +
            '(404 if that version is past the head, 400 for a cursor not issued for this query). Revalidate with If-None-Match.',
          tags: ['read'],
          querystring: ListingQuery,
          response: { 200: HeadListingAnswer, 304: NotModified, ...NOT_FOUND_PAST_HEAD },
        },
      },
      (request, reply) => listing(request, reply, request.query, undefined),
    );

    app.get(
      '/registry/:version/descriptors',
      {
        schema: {
          summary: 'List descriptors at a version',
          description: 'The same listing at a past version (expiry judged at its commit time); immutable. 404 past the head.',
          tags: ['read'],
          params: VersionParams,
          querystring: ListingQuery,
          response: { 200: VersionListingAnswer, 304: NotModified, ...NOT_FOUND_PAST_HEAD },
        },
      },
      (request, reply) => {
        const version = parseVersion(request.params.version);
        if (version > ctx.view.head.version)
          throw new RegistryError('NotFound', `version ${version} is past the head (${ctx.view.head.version})`);
        return listing(request, reply, request.query, version);
      },
    );

    // Descriptor ids may hold '/', so the id is the rest of the path, percent-decoded. The route
    // has no params schema (TypeBox cannot compile a property named '*'), so no params type.
    app.get(
      '/registry/descriptors/*',
      {
        schema: {
          summary: 'Look up a descriptor',
          description:
            'The descriptor with this id at the head, and the version that last changed it. 404 if absent, or expired unless ' +
            'include_expired=true. Revalidate with If-None-Match.',
          tags: ['read'],
          querystring: ExpiredQuery,
          response: { 200: LookupAnswer, 304: NotModified, ...errorAnswers('NotFound') },
        },
      },
      async (request, reply) => {
        const kept = sendKept(request, reply);
        if (kept) return kept;
        const id = (request.params as { '*': string })['*'];
        if (!ID_RE.test(id)) throw badRequest('a descriptor id is 1-256 characters of A-Z a-z 0-9 . _ : @ / -');
        const now = parseBool(request.query.include_expired, 'include_expired') ? undefined : Date.now();
        const item = ctx.view.index.get(id);
        if (!visible(item, now)) throw new RegistryError('NotFound', item ? `descriptor ${id} has expired` : `no descriptor ${id}`);
        const version = ctx.view.head.version;
        return send(request, reply, `{"version":${version},"changed_in":${item.changedIn},"descriptor":${item.json}}`, HEAD_CACHE, version);
      },
    );

    // The colon is doubled: find-my-way reads a single one as a parameter.
    app.post(
      '/registry/descriptors::batch',
      {
        schema: {
          summary: 'Look up descriptors in a batch',
          description:
            'Up to 1,000 descriptors by id, all at one version (the head): those found and the ids missing (absent or expired), ' +
            'each in the order asked. Read-only; not cached.',
          tags: ['read'],
          body: BatchBody,
          response: { 200: BatchAnswer, ...errorAnswers('PayloadTooLarge', 'RateLimited') },
        },
      },
      async (request, reply) => {
        const { ids } = request.body;
        if (new Set(ids).size !== ids.length) {
          const dup = ids.find((id, i) => ids.indexOf(id) !== i)!;
          throw badRequest(`ids lists ${dup} more than once`);
        }
        // One synchronous pass over the head's index: one consistent version.
        const now = request.body.include_expired ? undefined : Date.now();
        const found: string[] = [];
        const missing: string[] = [];
        for (const id of ids) {
          const item = ctx.view.index.get(id);
          if (visible(item, now)) found.push(itemJson(item));
          else missing.push(JSON.stringify(id));
        }
        const body = `{"version":${ctx.view.head.version},"items":[${found.join(',')}],"missing":[${missing.join(',')}]}`;
        return sendJsonText(reply, body, 'no-store');
      },
    );

    app.get(
      '/registry/diff',
      {
        schema: {
          summary: 'Compare two versions',
          description:
            `The descriptors added, removed and changed between two versions, and the signer set when it changed; immutable. ` +
            `400 when more than ${MAX_DIFF_IDS} descriptors changed (narrow the range); 404 past the head.`,
          tags: ['read'],
          querystring: DiffQuery,
          response: { 200: DiffAnswer, 304: NotModified, ...errorAnswers('NotFound') },
        },
      },
      async (request, reply) => {
        const from = parseVersion(request.query.from);
        const to = parseVersion(request.query.to);
        if (from > to) throw badRequest(`from (${from}) is after to (${to})`);
        if (to > ctx.view.head.version) throw new RegistryError('NotFound', `version ${to} is past the head (${ctx.view.head.version})`);
        const ids = await changedIds(ctx.store, from, to);
        if (ids.length > MAX_DIFF_IDS) {
          throw badRequest(
            `${ids.length} descriptors changed between ${from} and ${to}; a diff lists at most ${MAX_DIFF_IDS}`,
            'narrow the range',
          );
        }
        const a = from === to ? undefined : await ctx.snapshots.at(from);
        // The head may move while the snapshot builds: take it as it is now, or rebuild `to` too.
        const b: VersionState = to === ctx.view.head.version ? headState() : await ctx.snapshots.at(to);
        const diff = diffStates(a ?? b, b, ids);
        return send(request, reply, JSON.stringify({ ...diff, from }), IMMUTABLE);
      },
    );
  };
