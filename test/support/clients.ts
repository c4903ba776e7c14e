/**
 * The real official client in tests, with the bookkeeping tests need: every connection started here is stopped in
 * `stopAll`, and messages a connection receives are collected for assertions.
 */
import * as signalR from '@microsoft/signalr';

/** Options for {@link ClientPool.connect}. */
export interface ConnectOptions extends signalR.IHttpConnectionOptions {
  /** A hub protocol other than JSON (MessagePack). */
  readonly protocol?: signalR.IHubProtocol;
  /** Query string added to the hub URL (for example `user=alice`). */
  readonly query?: string;
  /** Client-side keep-alive and server timeout, in ms. */
  readonly keepAliveIntervalInMilliseconds?: number;
  readonly serverTimeoutInMilliseconds?: number;
  /** Handlers registered before start. */
  readonly handlers?: Record<string, (...args: unknown[]) => unknown>;
}

/** Received invocations of one client method, in order. */
export class Inbox {
  readonly items: unknown[][] = [];
  private waiters: Array<{ count: number; resolve: () => void }> = [];

  push(args: unknown[]): void {
    this.items.push(args);
    this.waiters = this.waiters.filter((waiter) => {
      if (this.items.length < waiter.count) return true;
      waiter.resolve();
      return false;
    });
  }

  /** Resolves once `count` invocations have arrived; rejects after `timeoutMs`. */
  async waitFor(count: number, timeoutMs = 5000): Promise<unknown[][]> {
    if (this.items.length < count) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `expected ${count} message(s), got ${this.items.length}: ${JSON.stringify(this.items).slice(0, 500)}`,
              ),
            ),
          timeoutMs,
        );
        this.waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    }
    return this.items.slice(0, count);
  }
}

/** A started connection with an inbox per observed method. */
export interface TestClient {
  readonly connection: signalR.HubConnection;
  /** Invocations received for a client method (case-insensitive), collected since start. */
  inbox(method: string): Inbox;
  /** Resolves with the error (or undefined) when the connection closes. */
  readonly closed: Promise<Error | undefined>;
}

/** Starts and tracks official-client connections. */
export class ClientPool {
  private readonly connections: signalR.HubConnection[] = [];

  constructor(private readonly baseUrl: () => string) {}

  /** Builds, starts and returns a client; `observe` lists client methods whose invocations are collected. */
  async connect(options: ConnectOptions = {}, observe: string[] = ['ReceiveMessage']): Promise<TestClient> {
    const { protocol, query, keepAliveIntervalInMilliseconds, serverTimeoutInMilliseconds, handlers, ...http } =
      options;
    const url = query ? `${this.baseUrl()}?${query}` : this.baseUrl();
    let builder = new signalR.HubConnectionBuilder().withUrl(url, http).configureLogging(signalR.LogLevel.None);
    if (protocol) builder = builder.withHubProtocol(protocol);
    const connection = builder.build();
    if (keepAliveIntervalInMilliseconds) connection.keepAliveIntervalInMilliseconds = keepAliveIntervalInMilliseconds;
    if (serverTimeoutInMilliseconds) connection.serverTimeoutInMilliseconds = serverTimeoutInMilliseconds;
    const inboxes = new Map<string, Inbox>();
    for (const method of observe) {
      const inbox = new Inbox();
      inboxes.set(method.toLowerCase(), inbox);
      connection.on(method, (...args: unknown[]) => inbox.push(args));
    }
    for (const [method, handler] of Object.entries(handlers ?? {})) connection.on(method, handler);
    const closed = new Promise<Error | undefined>((resolve) => connection.onclose((error) => resolve(error)));
    this.connections.push(connection);
    await connection.start();
    return {
      connection,
      closed,
      inbox: (method) => {
        const inbox = inboxes.get(method.toLowerCase());
        if (inbox === undefined) throw new Error(`${method} is not observed`);
        return inbox;
      },
    };
  }

  /** Stops every connection started by this pool. */
  async stopAll(): Promise<void> {
    const connections = this.connections.splice(0);
    await Promise.all(connections.map((connection) => connection.stop().catch(() => undefined)));
  }
}

/** Polls `predicate` until it holds; rejects after `timeoutMs` with `description`. */
export async function eventually(predicate: () => boolean, description: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${description}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Resolves after `ms`. */
export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
