// Closing waits for every connection to finish its request. A connection that has not sent a
// byte has no request to finish, but Node counts it as one still arriving and waits for it until
// the headers timeout: HTTP clients open such spare connections ahead of need (undici does while
// a stream holds another). Shutdown drops them, so that it takes as long as the real requests.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

const SWEEP_MS = 50;

export class SpareConnections {
  private readonly sockets = new Set<Socket>();

  constructor(server: Server) {
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  /** Drops every connection that has sent nothing, now and until `closed` settles (a client may
   * still connect while the listener closes). */
  async dropWhile(closed: Promise<unknown>): Promise<void> {
    const drop = () => {
      for (const s of this.sockets) if (s.bytesRead === 0) s.destroy();
    };
    drop();
    const timer = setInterval(drop, SWEEP_MS);
    try {
      await closed;
    } finally {
      clearInterval(timer);
    }
  }
}
