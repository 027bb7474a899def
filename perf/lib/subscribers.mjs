// Stream subscribers held by the measuring process (raw TCP, GET /registry/stream): enough for
// a hundred; perf/fanout.mjs spreads thousands over worker processes.
import net from 'node:net';

const COMMIT = /id: (\d+)\nevent: commit\n/g;

export class Subscribers {
  constructor(url, count) {
    const u = new URL(url);
    Object.assign(this, { host: u.hostname, port: Number(u.port), count, sockets: [], last: [], waiters: [] });
  }

  /** Connects them all; resolves once each has its stream's first bytes. */
  async open() {
    await Promise.all(
      Array.from({ length: this.count }, (_, i) => {
        this.last[i] = -1;
        return new Promise((resolve, reject) => {
          const socket = net.connect(this.port, this.host, () =>
            socket.write(`GET /registry/stream HTTP/1.1\r\nHost: ${this.host}\r\nAccept: text/event-stream\r\n\r\n`),
          );
          let tail = '';
          let started = false;
          socket.setEncoding('latin1');
          socket.on('data', (d) => {
            if (!started) {
              if (!/^HTTP\/1\.1 200/.test(d)) return reject(new Error(`stream: ${d.slice(0, 200)}`));
              started = true;
              resolve();
            }
            // Frames are written whole; the tail keeps one cut between two reads.
            const text = tail + d;
            for (const m of text.matchAll(COMMIT)) this.last[i] = Math.max(this.last[i], Number(m[1]));
            tail = text.slice(-64);
            this.check();
          });
          socket.on('error', reject);
          this.sockets.push(socket);
        });
      }),
    );
  }

  check() {
    if (!this.waiters.length) return;
    const min = Math.min(...this.last);
    this.waiters = this.waiters.filter(([version, resolve]) => (version <= min ? (resolve(), false) : true));
  }

  /** Resolves once every subscriber has had the commit of `version`. */
  waitFor(version) {
    return new Promise((resolve) => {
      this.waiters.push([version, resolve]);
      this.check();
    });
  }

  close() {
    for (const s of this.sockets) s.destroy();
  }
}
