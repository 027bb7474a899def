// Listing cursors (SPEC §6): opaque to clients, tied to the version they page and to the query
// that made them, and signed with a key kept in the log's settings, so that a cursor survives
// a restart and a forged, truncated or borrowed one is a 400.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { RegistryError } from '../core/errors.js';

export interface Position {
  version: number;
  /** The last id of the page before. */
  after: string;
}

const refuse = (why: string): RegistryError =>
  new RegistryError('BadRequest', `the cursor ${why}`, { hint: 'pass next_cursor from the previous page unchanged, with the same query' });

export class ListingCursors {
  constructor(private readonly key: Buffer) {}

  private mac(body: string, query: string): Buffer {
    return createHmac('sha256', this.key).update(body).update('\n').update(query).digest().subarray(0, 16);
  }

  /** `query` is the listing's query in a fixed form (filter, kind, include_expired). */
  encode(position: Position, query: string): string {
    const body = Buffer.from(JSON.stringify([position.version, position.after])).toString('base64url');
    return `${body}.${this.mac(body, query).toString('base64url')}`;
  }

  decode(cursor: string, query: string): Position {
    const [body, mac, extra] = cursor.split('.');
    if (body === undefined || mac === undefined || extra !== undefined) throw refuse('is not one this service issued');
    const given = Buffer.from(mac, 'base64url');
    const expected = this.mac(body, query);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw refuse('was not issued for this query, or was altered');
    }
    const [version, after] = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as [number, string];
    return { version, after };
  }
}
