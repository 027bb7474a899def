// A Server-Sent Events parser (the WHATWG "event stream interpretation"), fed bytes or text in
// chunks of any size: a chunk may end inside a line, inside a CRLF pair or inside a UTF-8
// sequence. Lines end with CRLF, LF or CR; `:` starts a comment; `data` lines join with LF; an
// event is dispatched on a blank line, so one cut off by the end of the stream is dropped,
// and so is its id (the resume point never passes an event that was not delivered whole).

/** One dispatched event. */
export interface SseEvent {
  kind: 'event';
  /** The `event:` field, or `message` when there was none. */
  type: string;
  /** The `data:` lines joined with LF. */
  data: string;
  /** The last event id at dispatch time: this event's `id:`, else the one before it ('' if none). */
  lastEventId: string;
}

/** A valid `retry:` field: the server's reconnection delay. */
export interface SseRetry {
  kind: 'retry';
  ms: number;
}

/** A comment line (heartbeats), without the leading colon. */
export interface SseComment {
  kind: 'comment';
  text: string;
}

export type SseItem = SseEvent | SseRetry | SseComment;

export class SseParser {
  private readonly decoder = new TextDecoder('utf-8');
  /** Text received that does not yet end with a line break. */
  private pending = '';
  /** The previous chunk ended with CR: an LF starting this one belongs to it. */
  private skipLf = false;
  private type = '';
  private data: string[] = [];
  private lastId = '';
  /** Some field of the current event has been seen (for `end`). */
  private started = false;
  private dispatchedId = '';

  /** The last event id as of the last dispatched event (what a reconnect sends as Last-Event-ID). */
  get lastEventId(): string {
    return this.dispatchedId;
  }

  /** Parses one more chunk; returns what it completes, in order. */
  feed(chunk: Uint8Array | string): SseItem[] {
    const text = typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    const out: SseItem[] = [];
    let start = 0;
    if (this.skipLf && text.length > 0) {
      this.skipLf = false;
      if (text.charCodeAt(0) === 0x0a) start = 1;
    }
    for (let i = start; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 0x0a && c !== 0x0d) continue;
      const line = this.pending + text.slice(start, i);
      this.pending = '';
      if (c === 0x0d) {
        if (i + 1 === text.length) this.skipLf = true;
        else if (text.charCodeAt(i + 1) === 0x0a) i++;
      }
      start = i + 1;
      this.line(line, out);
    }
    this.pending += text.slice(start);
    return out;
  }

  /** The stream ended: resets the parser for the next connection (the last event id stays).
   * Returns true when an incomplete event or line was dropped. */
  end(): boolean {
    const tail = this.decoder.decode();
    const dropped = this.started || this.pending !== '' || tail !== '';
    this.pending = '';
    this.skipLf = false;
    this.type = '';
    this.data = [];
    this.started = false;
    this.lastId = this.dispatchedId;
    return dropped;
  }

  private line(line: string, out: SseItem[]): void {
    if (line === '') return this.dispatch(out);
    if (line.charCodeAt(0) === 0x3a) {
      out.push({ kind: 'comment', text: line.slice(1).replace(/^ /, '') });
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 0x20) value = value.slice(1);
    switch (field) {
      case 'event':
        this.type = value;
        this.started = true;
        break;
      case 'data':
        this.data.push(value);
        this.started = true;
        break;
      case 'id':
        if (!value.includes('\0')) {
          this.lastId = value;
          this.started = true;
        }
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) out.push({ kind: 'retry', ms: Number(value) });
        break;
      default:
      // Unknown fields are ignored.
    }
  }

  private dispatch(out: SseItem[]): void {
    this.dispatchedId = this.lastId;
    const type = this.type;
    const data = this.data;
    this.type = '';
    this.data = [];
    this.started = false;
    // An event without data (an id alone, say) moves the last event id and dispatches nothing.
    if (data.length === 0) return;
    out.push({ kind: 'event', type: type || 'message', data: data.join('\n'), lastEventId: this.dispatchedId });
  }
}
