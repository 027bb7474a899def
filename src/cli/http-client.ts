// The CLI's HTTP calls: JSON in, JSON out, the error envelope turned into a readable error.
import { RemoteError } from '../errors.js';

export async function call<T>(base: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const url = new URL(path, base.endsWith('/') ? base : base + '/');
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new RemoteError(res.status, 'NotJson', `${method} ${url.pathname}: ${res.status} with a body that is not JSON`);
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
