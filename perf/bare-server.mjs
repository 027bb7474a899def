// The references: routes serving the same bytes and headers as the registry, with none of the
// registry's work. Usage: node perf/bare-server.mjs [--raw] <name>=<body-file>=<etag>=<method> ...
// serves each file at /bare/<name>: with bare Fastify (POST routes parse and ignore their JSON
// body, as a real route would parse it), or with --raw on node:http alone (the floor: no
// framework; POST bodies are read and dropped).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import Fastify from 'fastify';

const raw = process.argv[2] === '--raw';
const routes = process.argv.slice(raw ? 3 : 2).map((arg) => {
  const [name, file, etag, method = 'GET'] = arg.split('=');
  return { name, body: readFileSync(file), etag, method };
});
const CACHE = 'public, max-age=1, must-revalidate';

if (raw) {
  const byPath = new Map(routes.map((r) => [`${r.method} /bare/${r.name}`, r]));
  const server = createServer((req, res) => {
    const route = byPath.get(`${req.method} ${req.url}`);
    const answer = () => {
      if (!route) {
        res.writeHead(404).end();
        return;
      }
      const headers = { 'content-type': 'application/json', 'content-length': route.body.length, 'cache-control': CACHE };
      if (route.etag) headers.etag = route.etag;
      res.writeHead(200, headers).end(route.body);
    };
    if (req.method === 'POST') req.on('data', () => {}).on('end', answer);
    else answer();
  });
  server.keepAliveTimeout = 72_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(`listening on http://127.0.0.1:${server.address().port}\n`));
} else {
  const app = Fastify({ logger: false });
  for (const { name, body, etag, method } of routes) {
    app.route({
      method,
      url: `/bare/${name}`,
      handler: (_req, reply) => {
        if (etag) reply.header('etag', etag);
        reply.header('cache-control', CACHE).type('application/json').send(body);
      },
    });
  }
  await app.listen({ host: '127.0.0.1', port: 0 });
  process.stdout.write(`listening on http://127.0.0.1:${app.server.address().port}\n`);
}
