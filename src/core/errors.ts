// One error type for every refusal the registry makes. The HTTP layer maps it to the
// SPEC §7 envelope; nothing else builds envelopes.

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
  hint?: string;
  retryable?: boolean;
  /** Seconds, sent as Retry-After for 429/503. */
  retryAfter?: number;
}

export class RegistryError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly hint: string;
  readonly retryable: boolean;
  readonly retryAfter: number | undefined;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message);
    this.name = 'RegistryError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.hint = details.hint ?? '';
    this.retryable = details.retryable ?? (code === 'RateLimited' || code === 'Unavailable');
    this.retryAfter = details.retryAfter;
  }
}

export const badRequest = (message: string, hint?: string): RegistryError =>
  new RegistryError('BadRequest', message, { hint });
