// A real shared cache in front of a registry: Debian's nginx (nginx-light) with proxy_cache,
// run as a child process from a temp directory — not the system service.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const NGINX = '/usr/sbin/nginx';

export interface CachingProxy {
  /** http://127.0.0.1:<port>, answering through the cache. */
  url: string;
  dir: string;
  /** nginx's error log, for failure messages. */
  errors(): string;
  stop(): Promise<void>;
}

/** A port free a moment ago: nginx cannot listen on port 0 and report the port it got. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function config(dir: string, port: number, upstream: string): string {
  const path = (name: string) => `"${join(dir, name)}"`;
  return `daemon off;
master_process off;
pid ${path('nginx.pid')};
error_log ${path('error.log')} warn;
events {
  worker_connections 64;
}
http {
  log_format cache '$request $status $upstream_cache_status';
  access_log ${path('access.log')} cache;
  client_body_temp_path ${path('client_body')};
  proxy_temp_path ${path('proxy')};
  fastcgi_temp_path ${path('fastcgi')};
  uwsgi_temp_path ${path('uwsgi')};
  scgi_temp_path ${path('scgi')};
  proxy_cache_path ${path('cache')} levels=1:2 keys_zone=reg:1m use_temp_path=off;
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass ${upstream};
      proxy_cache reg;
      proxy_cache_revalidate on;
      add_header X-Cache-Status $upstream_cache_status always;
    }
  }
}
`;
}

const readLog = (dir: string): string => (existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : '');

function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

async function launch(dir: string, upstream: string): Promise<{ child: ChildProcess; port: number } | 'port-taken'> {
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, config(dir, port, upstream));
  writeFileSync(join(dir, 'error.log'), '');
  const child = spawn(NGINX, ['-p', dir, '-e', join(dir, 'error.log'), '-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const failed = (why: string) => new Error(`nginx ${why}: ${stderr}${readLog(dir)}`.slice(0, 2000));
  const deadline = Date.now() + 5000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      if (/address already in use/i.test(stderr + readLog(dir))) return 'port-taken';
      throw failed(`exited with ${child.exitCode ?? child.signalCode}`);
    }
    if (await accepting(port)) return { child, port };
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw failed('did not accept connections within 5 s');
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Starts nginx caching `upstream` (e.g. http://127.0.0.1:1234). Throws, naming .ci/run, when
 * nginx is not installed: the tests that need it must fail, not skip. */
export async function startCachingProxy(upstream: string): Promise<CachingProxy> {
  if (!existsSync(NGINX))
    throw new Error(
      `${NGINX} is missing: the shared-cache tests need Debian's nginx-light, which .ci/run installs (apt-get install nginx-light)`,
    );
  const dir = mkdtempSync(join(tmpdir(), 'registry-nginx-'));
  let started: Awaited<ReturnType<typeof launch>> = 'port-taken';
  for (let attempt = 0; attempt < 3 && started === 'port-taken'; attempt++) started = await launch(dir, upstream);
  if (started === 'port-taken') throw new Error('nginx found no free port in 3 attempts');
  const { child, port } = started;
  return {
    url: `http://127.0.0.1:${port}`,
    dir,
    errors: () => readLog(dir),
    async stop() {
      const done = exited(child);
      child.kill('SIGTERM');
      // Its exit, or SIGKILL once 3 s have passed without it.
      await once(child, 'exit', { signal: AbortSignal.timeout(3000) }).catch(() => child.kill('SIGKILL'));
      await done;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
