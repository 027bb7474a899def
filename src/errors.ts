// Failures of the running process, as opposed to refusals of a request (core RegistryError)
// and a log that does not hold together (core IntegrityError). They live together so that the
// CLI tells them apart with `instanceof` and says what to do about each.

/** The service cannot start: a genesis file that cannot be read, a store that cannot open. */
export class StartError extends Error {
  override name = 'StartError';
}

/** A setting in the config file, the environment or a flag is not valid. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** The database is held by another process (another `serve` on the same file). */
export class StoreBusyError extends Error {
  override name = 'StoreBusyError';
  constructor(path: string) {
    super(`the database ${path} is in use by another process; one registry process owns a log`);
  }
}

/** A write lost a race with another process writing the same log (cluster mode): nothing was
 * written, and the writer catches up with the log and redoes the step. */
export class WriteConflict extends Error {
  override name = 'WriteConflict';
}

/** A command line the CLI cannot act on: a missing or malformed option. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The registry answered a CLI call with an error envelope (or with something that is not JSON). */
export class RemoteError extends Error {
  override name = 'RemoteError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
