// The reference: bare Fastify routes serving the same bytes and headers as the registry, with
// none of the registry's hooks. Usage: node perf/bare-server.mjs <name>=<body-file>=<etag> ...
// serves each file at /bare/<name>.
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const app = Fastify({ logger: false });
for (const arg of process.argv.slice(2)) {
  const [name, file, etag] = arg.split('=');
  const body = readFileSync(file);
  app.get(`/bare/${name}`, (_req, reply) => {
    reply.header('etag', etag).header('cache-control', 'public, max-age=1, must-revalidate').type('application/json').send(body);
  });
}
await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`listening on http://127.0.0.1:${app.server.address().port}\n`);
