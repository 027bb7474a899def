// The registry's two kinds of failure. A RegistryError refuses a request: it carries a SPEC §7
// code, and the HTTP layer maps it to the envelope (nothing else builds envelopes). An
// IntegrityError says the log, or a genesis record, does not hold together: nothing a client
// sent is wrong, the service cannot trust what it read. Failures of the running process
// (start, configuration, store, usage, remote calls) live in src/errors.ts.

export const ERROR_STATUS = {
  BadRequest: 400,
  NotFound: 404,
  StaleVersion: 409,
  Gone: 410,
  PayloadTooLarge: 413,
  UnsupportedMediaType: 415,
  BadSignature: 422,
  RateLimited: 429,
  Unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorDetails {
  hint?: string | undefined;
  retryable?: boolean;
  /** Seconds, sent as Retry-After for 429/503. */
  retryAfter?: number;
  /** Why, finer than the code, as rejected_total{reason} counts it: a stable lowercase word
   * (`frozen`, `overloaded`, `shutting_down`, ...). Unset: the code in snake case. */
  reason?: string;
}

export class RegistryError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly hint: string;
  readonly retryable: boolean;
  readonly retryAfter: number | undefined;
  readonly reason: string | undefined;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message);
    this.name = 'RegistryError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.hint = details.hint ?? '';
    this.retryable = details.retryable ?? (code === 'RateLimited' || code === 'Unavailable');
    this.retryAfter = details.retryAfter;
    this.reason = details.reason;
  }
}

export const badRequest = (message: string, hint?: string): RegistryError => new RegistryError('BadRequest', message, { hint });

/** A stored record, an audit event or a genesis record that fails its own checks. `version`
 * names the commit at fault when there is one. */
export class IntegrityError extends Error {
  constructor(
    message: string,
    readonly version?: number,
  ) {
    super(message);
    this.name = 'IntegrityError';
  }
}
