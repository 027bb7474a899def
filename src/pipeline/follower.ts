// Cluster mode: keeps this instance's head on the shared log's. PostgreSQL notifies each commit
// (LISTEN/NOTIFY, src/store/postgres-store.ts); a notification wakes the writer's catch-up, which
// reads every commit after the head, so a notification lost, or several in one, loses nothing.
// A poll every `pollMs` catches up too, for notifications lost while the listening connection
// was down (the client reconnects by itself, and a reconnect wakes a catch-up as well).
import type { Store } from '../store/store.js';
import type { PipelineLog } from './audited-log.js';
import type { Writer } from './writer.js';

export const DEFAULT_FOLLOW_POLL_MS = 1000;

export interface FollowerOptions {
  store: Store;
  writer: Pick<Writer, 'catchUp'>;
  logger?: PipelineLog;
  /** Catch up at least this often. */
  pollMs?: number;
}

export class Follower {
  private readonly o: FollowerOptions;
  private timer: NodeJS.Timeout | undefined;
  private unlisten: (() => Promise<void>) | undefined;
  private listening: Promise<void> | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** Attempts to listen that failed in a row: logged at the first only. */
  private listenFailures = 0;
  /** Catch-ups that failed in a row (the database away): logged at the first only. */
  private failures = 0;

  constructor(options: FollowerOptions) {
    this.o = options;
  }

  /** Starts listening and polling; resolves once listening (or once listening failed, then the
   * poll tries again). */
  async start(): Promise<void> {
    this.timer = setInterval(() => {
      if (!this.unlisten) void this.listen();
      void this.wake();
    }, this.o.pollMs ?? DEFAULT_FOLLOW_POLL_MS);
    this.timer.unref();
    await this.listen();
  }

  private listen(): Promise<void> {
    const watch = this.o.store.watchCommits?.bind(this.o.store);
    if (!watch || this.listening || this.stopped) return this.listening ?? Promise.resolve();
    this.listening = watch(
      () => void this.wake(),
      () => void this.wake(),
    )
      .then((unlisten) => {
        if (this.stopped) return void unlisten().catch(() => {});
        this.unlisten = unlisten;
        this.listenFailures = 0;
      })
      .catch((err: unknown) => {
        if (this.listenFailures++ === 0) this.o.logger?.error({ err }, 'cannot listen for commits: following by polling until it can');
      })
      .finally(() => {
        this.listening = undefined;
      });
    return this.listening;
  }

  /** Catches up now, or once more after the catch-up under way. Resolves when caught up. */
  wake(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.o.writer.catchUp();
          if (this.failures > 0) this.o.logger?.info({ failures: this.failures }, 'following the log again');
          this.failures = 0;
        } while (this.again && !this.stopped);
      } catch (err) {
        if (this.failures++ === 0) this.o.logger?.error({ err }, 'cannot follow the log: serving the last head read until it can');
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.listening;
    await this.unlisten?.().catch(() => {});
    await this.running;
  }
}
