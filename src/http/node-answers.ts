// Requests that Node's HTTP server answers by itself, before Fastify sees them, answered in the
// SPEC §7 envelope like every other refusal (the hostile-input campaign, test/hostile/, found
// each): a CONNECT, which Node hands to 'connect' listeners and, with none, drops unanswered;
// an Expect other than 100-continue, which Node answers with a bare 417; a body of unknown
// length, after which Node drops a connection it had said it would keep; an Upgrade request,
// after which Node stops enforcing the header size limit on the connection. (An HTTP/1.1 request
// without Host, which Node answers with a bare 400, is let through to Fastify by
// `requireHostHeader: false` and refused by the onRequest hook in app.ts.)
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

/** Answers CONNECT with the envelope, and passes requests with an unknown Expect on as if the
 * header were absent (RFC 9110 §10.1.1: a server MAY answer 417, or ignore it). */
export function answerWhatNodeRefuses(server: Server): void {
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    const id = randomUUID();
    const target = (req.url ?? '').slice(0, 200);
    const text = JSON.stringify({
      error: {
        code: 'NotFound',
        message: `no route CONNECT ${target}`,
        hint: 'the registry is no proxy',
        retryable: false,
        request_id: id,
      },
    });
    socket.on('error', () => socket.destroy());
    socket.end(
      `HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nX-Request-Id: ${id}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${text}`,
    );
  });
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    server.emit('request', req, res);
  });
  // A request whose body length is unknown (a Transfer-Encoding other than chunked) ends its
  // connection, whichever path answers it (app.ts refuses it, but a URL Fastify cannot route
  // is answered before any hook): Node's parser fails on what follows it, and closed the
  // connection after an answer that had said keep-alive, so a kept-alive client lost its next
  // request on that socket.
  //
  // So does a request asking for a protocol upgrade, which the registry never grants: after
  // one, Node's parser no longer enforces the header size limit on that connection (a request
  // line of 20 KB then waited for the headers timeout instead of an immediate 431).
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    const transfer = req.headers['transfer-encoding'];
    if ((transfer !== undefined && transfer.trim().toLowerCase() !== 'chunked') || req.headers.upgrade !== undefined)
      res.shouldKeepAlive = false;
  });
}
