// The CLI's HTTP calls: JSON in, JSON out, the error envelope turned into a readable error, and
// a registry that cannot be reached said so in the user's terms.
import { RemoteError } from '../errors.js';

/** How long a call may take before the CLI gives up on the registry. */
const TIMEOUT_MS = 30_000;

/** The error code of a failed fetch: undici puts it on the cause, or on each of an AggregateError's errors. */
function causeCode(e: unknown): string | undefined {
  const cause = (e as { cause?: { code?: unknown; errors?: { code?: unknown }[] } }).cause;
  const code = cause?.code ?? cause?.errors?.find((x) => typeof x.code === 'string')?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Why the registry at `base` cannot be reached, and what to check. */
function unreachable(base: string, e: unknown): Error {
  const where = base.replace(/\/+$/, '');
  if ((e as Error).name === 'TimeoutError')
    return new Error(`no answer from ${where} within ${TIMEOUT_MS / 1000} s: is --url the registry?`);
  const code = causeCode(e);
  if (code === 'ECONNREFUSED') return new Error(`cannot connect to ${where} (ECONNREFUSED): is the registry running?`);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
    return new Error(`cannot connect to ${where} (${code}): no such host ${new URL(where).hostname}; check --url`);
  if (code?.startsWith('ERR_TLS') || code?.includes('CERT') || code === 'EPROTO')
    return new Error(`cannot connect to ${where} (${code}): a TLS problem; is it http:// rather than https://?`);
  return new Error(`cannot connect to ${where} (${code ?? (e as Error).message})`, { cause: e });
}

export async function call<T>(
  base: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  extraHeaders: Record<string, string> = {},
): Promise<T> {
  const url = new URL(path, base.endsWith('/') ? base : base + '/');
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, {
      method,
      headers: body === undefined ? extraHeaders : { ...extraHeaders, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    text = await res.text();
  } catch (e) {
    throw unreachable(base, e);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new RemoteError(
      res.status,
      'NotJson',
      `${method} ${url.pathname}: ${res.status} with a body that is not JSON: is ${base.replace(/\/+$/, '')} the registry?`,
    );
  }
  if (!res.ok) {
    const e = (json as { error?: { code?: string; message?: string; hint?: string } }).error;
    throw new RemoteError(
      res.status,
      e?.code ?? 'Unknown',
      `${method} ${url.pathname}: ${res.status} ${e?.code ?? ''} ${e?.message ?? text}${e?.hint ? ` (hint: ${e.hint})` : ''}`,
    );
  }
  return json as T;
}
