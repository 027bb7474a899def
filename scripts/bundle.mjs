// Bundles the compiled CLI (dist/cli/main.js, tsc's output) into one ESM file, dist/registry.mjs,
// with esbuild: Node then loads one file instead of ~1,200 (typebox alone is 700), which was most
// of the start-up before our code ran. The worker threads' scripts (each a compiled file that the
// code names with `new URL('…/x.js', import.meta.url)`) are bundled the same way, beside it, as
// dist/registry-x.mjs, so that a worker starts as fast. Left outside, loaded from node_modules
// when needed: better-sqlite3 (a native addon) and @fastify/swagger (imported when GET
// /openapi.json is first asked for; it reads its own files).
//
// Every `new URL('<relative path>', import.meta.url)` in dist/ is rewritten to name the same file
// from dist/, where the bundles are (the migrations, package.json), or the bundled worker.
// dist/cli/main.js and the rest of dist/ stay as they are: tests and perf scripts run them.
import { build } from 'esbuild';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const URL_RE = /new URL\((['"])([^'"]+)\1, import\.meta\.url\)/g;

/** Every .js file under `dir`. */
const jsFiles = (dir) =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return jsFiles(path);
    return name.endsWith('.js') ? [path] : [];
  });

/** The scripts that the code starts as workers: compiled .js files named by `new URL`. */
const workers = new Map();
for (const file of jsFiles(dist)) {
  for (const [, , rel] of readFileSync(file, 'utf8').matchAll(URL_RE)) {
    const target = resolve(dirname(file), rel);
    if (target.endsWith('.js') && target.startsWith(dist) && existsSync(target)) workers.set(target, `registry-${basename(target, '.js')}`);
  }
}

const relocate = {
  name: 'relocate-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.js$/ }, (args) => {
      if (!args.path.startsWith(dist)) return undefined;
      const text = readFileSync(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return undefined;
      const contents = text.replace(URL_RE, (_, q, rel) => {
        const target = resolve(dirname(args.path), rel);
        const worker = workers.get(target);
        let moved = worker ? `./${worker}.mjs` : relative(dist, target).split('\\').join('/');
        if (!moved.startsWith('.')) moved = `./${moved}`;
        if (rel.endsWith('/') && !moved.endsWith('/')) moved += '/';
        return `new URL(${q}${moved}${q}, import.meta.url)`;
      });
      return { contents, loader: 'js' };
    });
  },
};

await build({
  entryPoints: [{ in: join(dist, 'cli/main.js'), out: 'registry' }, ...[...workers].map(([path, name]) => ({ in: path, out: name }))],
  outdir: dist,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['better-sqlite3', '@fastify/swagger'],
  plugins: [relocate],
  // CommonJS dependencies call require() for Node's modules: give each bundle a real one.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
});
