// `registry watch`: follows the commit stream (SPEC §8) and prints one line per commit, or with
// --json the event's data, one JSON object per line. stdout carries commits only; connection
// news (watching, reconnecting, reset, lagged) goes to stderr. Runs until SIGINT or SIGTERM
// (exit 0), reconnecting by itself and resuming where it left off; a refusal that retrying
// cannot fix (a bad filter, a resume point past the head, a wrong URL) exits 1.
import { StreamProtocolError, StreamRefusedError, StreamSubscriber, type CommitEventData } from '../client/subscriber.js';
import { UsageError } from '../errors.js';

/** `42 b3:… 2026-11-23T10:00:00.000Z 3 changed: svc-a, svc-b, node-7` (first 100 ids, then a count). */
export function commitLine(e: CommitEventData): string {
  const more = e.changed_count - e.changed.length;
  const ids = e.changed.join(', ') + (more > 0 ? `${e.changed.length ? ', ' : ''}… (${more} more)` : '');
  return `${e.version} ${e.hash} ${e.committed_at} ${e.changed_count} changed${ids ? `: ${ids}` : ''}`;
}

/** Why the stream refused, in the user's terms. */
function refusal(e: StreamRefusedError, filtered: boolean): string {
  const detail = `${e.detail}${e.hint ? ` (hint: ${e.hint})` : ''}`;
  if (e.code === 'NotAnEventStream') return `the URL does not serve the commit stream: ${detail}`;
  if (e.status === 400 && /resume point|Last-Event-ID|\bfrom\b/.test(e.detail)) return `the stream refused the resume point: ${detail}`;
  if (e.status === 400 && filtered) return `the stream refused the filter: ${detail}`;
  return `the stream refused the subscription: ${e.status} ${e.code}: ${detail}`;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;

export interface WatchOptions {
  url: string;
  filter?: string | undefined;
  kind?: string | undefined;
  from?: string | undefined;
  json?: boolean | undefined;
}

export async function watch(values: WatchOptions): Promise<void> {
  if (!values.url) throw new UsageError('--url is required');
  if (!/^https?:\/\//i.test(values.url)) throw new UsageError(`--url must start with http:// or https:// (got ${values.url})`);
  if (values.from !== undefined && !/^(0|[1-9][0-9]{0,15})$/.test(values.from))
    throw new UsageError('--from must be a version (a non-negative integer)');
  const url = values.url;
  const json = values.json === true;
  const err = (text: string) => void process.stderr.write(`registry: ${text}\n`);

  const stop = new AbortController();
  const onSignal = () => stop.abort();
  // A reader that went away (`registry watch | head`) ends the watch as quietly as a signal.
  const onStdoutError = (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') err(`cannot write to stdout: ${e.message}`);
    stop.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.stdout.on('error', onStdoutError);

  const write = (line: string): Promise<void> | void => {
    if (stop.signal.aborted) return;
    if (process.stdout.write(line + '\n')) return;
    // Back-pressure: the next event waits until stdout drains (or the watch stops).
    return new Promise((resolve) => {
      const done = () => {
        process.stdout.off('drain', done);
        stop.signal.removeEventListener('abort', done);
        resolve();
      };
      process.stdout.on('drain', done);
      stop.signal.addEventListener('abort', done, { once: true });
    });
  };

  const subscriber = new StreamSubscriber({
    url,
    filter: values.filter,
    kind: values.kind,
    from: values.from === undefined ? undefined : Number(values.from),
    signal: stop.signal,
    onCommit: (e) => write(json ? JSON.stringify(e) : commitLine(e)),
    onOpen: ({ resumeFrom, reconnect }) =>
      err(`${reconnect ? 'reconnected to' : 'watching'} ${url}${resumeFrom === undefined ? '' : ` after version ${resumeFrom}`}`),
    onReset: (head) =>
      err(
        `the stream was reset to version ${head.version} (${head.hash})${head.reason ? `: ${head.reason}` : ''}; ` +
          `commits before it were not replayed: reconcile from ${url.replace(/\/$/, '')}/registry/head`,
      ),
    onLagged: () => err('the registry dropped this watch for falling behind; resuming'),
    onError: (e, retry) => err(`${e.message}; retrying in ${seconds(retry.delayMs)}`),
  });
  try {
    await subscriber.start();
  } catch (e) {
    if (e instanceof StreamRefusedError)
      throw new Error(refusal(e, values.filter !== undefined || values.kind !== undefined), { cause: e });
    if (e instanceof StreamProtocolError) throw new Error(`the stream sent something unreadable: ${e.message}`, { cause: e });
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.stdout.off('error', onStdoutError);
  }
}
