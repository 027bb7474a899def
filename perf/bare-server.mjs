// The reference: bare Fastify routes serving the same bytes and headers as the registry, with
// none of the registry's hooks. Usage: node perf/bare-server.mjs <name>=<body-file>=<etag>=<method> ...
// serves each file at /bare/<name> (POST routes parse and ignore their JSON body, as a real
// route would parse it).
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';

const app = Fastify({ logger: false });
for (const arg of process.argv.slice(2)) {
  const [name, file, etag, method = 'GET'] = arg.split('=');
  const body = readFileSync(file);
  app.route({
    method,
    url: `/bare/${name}`,
    handler: (_req, reply) => {
      if (etag) reply.header('etag', etag);
      reply.header('cache-control', 'public, max-age=1, must-revalidate').type('application/json').send(body);
    },
  });
}
await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`listening on http://127.0.0.1:${app.server.address().port}\n`);
