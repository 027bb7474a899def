// The reference: a bare Fastify route serving the same bytes and headers as the registry's
// head, with none of the registry's hooks. Usage: node perf/bare-server.mjs <body-file> <etag>
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const body = readFileSync(process.argv[2]);
const etag = process.argv[3];
const app = Fastify({ logger: false });
app.get('/bare', (_req, reply) => {
  reply.header('etag', etag).header('cache-control', 'public, max-age=1, must-revalidate').type('application/json').send(body);
});
await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`listening on http://127.0.0.1:${app.server.address().port}\n`);
