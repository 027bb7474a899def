// Connection-level limits (README → Operations → Limits and overload): how many sockets the
// service holds, in all and per client address, and the URL length cap. Node's HTTP timeouts
// (headers, whole request, idle keep-alive) and its header size limit are set where the server
// is made (app.ts); this module counts and refuses sockets.
import { readFileSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { RegistryError } from '../core/errors.js';

/** The settings this layer enforces (src/config/config.ts documents each). */
export type Limits = Pick<
  Config,
  | 'requestTimeoutMs'
  | 'headersTimeoutMs'
  | 'keepAliveTimeoutMs'
  | 'maxConnections'
  | 'maxConnectionsPerAddress'
  | 'maxHeaderBytes'
  | 'maxUrlLength'
  | 'shedReadsInFlight'
  | 'shedWritesInFlight'
  | 'shedReadsEventLoopDelayMs'
  | 'shedWritesEventLoopDelayMs'
  | 'writeRatePerAddress'
  | 'writeBurstPerAddress'
  | 'writeRatePerSigner'
  | 'writeBurstPerSigner'
  | 'refusedKibPerAddress'
  | 'refusedBurstKibPerAddress'
  | 'maxBodyBytesInFlight'
  | 'maxBodyBytesPerAddress'
>;

/** File descriptors kept for everything but client sockets (SQLite and its WAL, stdio, Node). */
export const RESERVED_FDS = 128;

/** The soft limit on open files (Linux, from /proc), or undefined where it cannot be read. */
export function openFileLimit(): number | undefined {
  try {
    const line = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return line && line[1] !== 'unlimited' ? Number(line[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The key per-address limits count under: an IPv4 address (IPv4-mapped IPv6 included) as
 * is, an IPv6 address by its /64 (one host is usually given a whole /64). */
export function addressKey(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  if (!address.includes(':')) return address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  const bare = address.split('%')[0]!.toLowerCase();
  const [head = '', tail] = bare.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

/** Counts of sockets refused at accept, since start. */
export interface ConnectionRefusals {
  /** Over `maxConnections` (closed by Node). */
  total: number;
  /** Over `maxConnectionsPerAddress`. */
  perAddress: number;
}

/** Caps the sockets `server` holds: `maxConnections` in all (lowered to fit the open-file
 * limit, so that accepting never fails for want of a descriptor) and
 * `maxConnectionsPerAddress` per client address. A socket over either is closed at once,
 * before any byte of it is read. Returns the refusal counts and the cap in force. */
export function limitConnections(
  server: Server,
  limits: Pick<Limits, 'maxConnections' | 'maxConnectionsPerAddress'>,
  logger?: Logger,
  fileLimit = openFileLimit(),
): { refused: ConnectionRefusals; maxConnections: number; open: () => number } {
  const refused: ConnectionRefusals = { total: 0, perAddress: 0 };
  let maxConnections = limits.maxConnections;
  if (fileLimit !== undefined && maxConnections > fileLimit - RESERVED_FDS) {
    maxConnections = Math.max(1, fileLimit - RESERVED_FDS);
    // At info: the default is above many systems' limit, where this is the intended outcome.
    logger?.info(
      { maxConnections: limits.maxConnections, open_file_limit: fileLimit, effective: maxConnections },
      'maxConnections lowered to fit the open-file limit (raise it with ulimit -n)',
    );
  }
  server.maxConnections = maxConnections;
  server.on('drop', () => refused.total++);
  const perAddress = new Map<string, number>();
  let open = 0;
  server.on('connection', (socket: Socket) => {
    const key = addressKey(socket.remoteAddress);
    const held = perAddress.get(key) ?? 0;
    if (held >= limits.maxConnectionsPerAddress) {
      refused.perAddress++;
      socket.destroy();
      return;
    }
    perAddress.set(key, held + 1);
    open++;
    socket.once('close', () => {
      open--;
      const left = perAddress.get(key)! - 1;
      if (left === 0) perAddress.delete(key);
      else perAddress.set(key, left);
    });
  });
  return { refused, maxConnections, open: () => open };
}

/** A request line whose target is longer than `maxUrlLength`: 414, code BadRequest (SPEC §7
 * has no code of its own for it; README, Decisions). */
export class UriTooLong extends RegistryError {
  constructor(length: number, max: number) {
    super('BadRequest', `the URL is ${length} characters long, over the limit of ${max}`, {
      hint: 'shorten the path or the query string',
      reason: 'uri_too_long',
    });
    (this as { status: number }).status = 414;
  }
}
