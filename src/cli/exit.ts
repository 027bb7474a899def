// Exit codes of the `registry` command, for scripts (README → CLI reference → Exit codes). A
// failure that scripts must tell apart (a stale proposal, a committed one, a payload that does
// not hash to its id) is a CliError carrying its code; everything else exits 1, a command line
// the CLI cannot act on exits 2.

export const EXIT = {
  /** Done; for `review`, the proposal is pending on the current head and can be approved. */
  OK: 0,
  /** Anything else: the registry cannot be reached or refused the request, a file cannot be read, the user declined. */
  FAILURE: 1,
  /** The command line: an unknown command or flag, a missing one, extra arguments, no terminal to confirm on. */
  USAGE: 2,
  /** The proposal's base is not the head (or the registry settled it as stale): rebuild it on the head. */
  STALE: 3,
  /** The proposal is already committed. */
  COMMITTED: 4,
  /** The proposal has expired. */
  EXPIRED: 5,
  /** The payload the registry served does not hash to the proposal id: it was not signed. */
  HASH_MISMATCH: 6,
  /** The proposal, or the registry at --url, is not the registry expected (--registry-id). */
  WRONG_REGISTRY: 7,
  /** This signer has already approved the proposal. */
  ALREADY_APPROVED: 8,
  /** The key file's public key is not that signer's key on this registry (or the id is no signer). */
  WRONG_KEY: 9,
  /** verify: a record, a link of the chain, the head answer or a database row does not check out (the version is named). */
  LOG_INVALID: 10,
  /** verify: the audit chain does not check out (the seq is named). */
  AUDIT_INVALID: 11,
  /** verify: the source cannot be read (unreachable, not a registry, a missing or locked database file). */
  SOURCE_UNREADABLE: 12,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure with its own exit code. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
  }
}
