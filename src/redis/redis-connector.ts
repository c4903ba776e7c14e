/**
 * How the backplane's connections reach Redis — with `redis-bus.ts`, the only files of the server that know ioredis.
 *
 * Where the connections go (`RedisTarget.mode`):
 * - `endpoints`: one server, or the seed nodes of a Redis Cluster. Each connection opens to an endpoint chosen by
 *   its own cursor ({@link EndpointCursor}, through {@link endpointConnector}): the same one again after a lost
 *   connection, the next one after a failed attempt. With a cluster, the bus's publishing connection learns every
 *   node (`CLUSTER SLOTS`, read by {@link clusterNodes}) after each connection and adds them to the shared
 *   {@link EndpointRing}, so both connections move to a live node when theirs is gone. ioredis's `Cluster` is not
 *   used: pub/sub needs no slot routing (classic PUBLISH is broadcast over the cluster bus, SUBSCRIBE on any node
 *   receives it), and its subscriber connection resubscribes on its own, in bulk, out of the bus's sight — the bus
 *   could no longer say which channels Redis confirmed, which is what lets the lifetime manager deliver locally
 *   meanwhile.
 * - `sentinel`: ioredis's Sentinel support asks the sentinels for the master at every (re)connection, and its
 *   failover detector drops the connections as soon as a sentinel announces a new master.
 * - `ioredis`: the ioredis options alone say where (a Unix socket `path`).
 *
 * This file imports nothing of the server's own, so the configuration (`redis-config.ts`) can take its types
 * without an import cycle.
 */
import * as net from 'node:net';
import { hostname } from 'node:os';
import * as tls from 'node:tls';
import Redis, { AbstractConnector, Cluster, type RedisOptions } from 'ioredis';

/** ioredis connection options (host, port, password, tls, db, retryStrategy, …), as ioredis documents them. */
export type RedisConnectionOptions = RedisOptions;

/** One Redis server (or sentinel) address. */
export interface RedisEndpoint {
  readonly host: string;
  readonly port: number;
}

/** What a connection needs to know of the configuration (a `RedisTarget` is one). */
export interface RedisConnectionPlan {
  readonly mode: 'endpoints' | 'sentinel' | 'ioredis';
  readonly endpoints: readonly RedisEndpoint[];
  readonly redisOptions: RedisConnectionOptions;
}

/**
 * What a connection of a bus does: publish, subscribe (classic pub/sub), read streams, or subscribe one cluster
 * node's sharded channels (`shard`, one per node with sharded pub/sub).
 */
export type ConnectionRole = 'pub' | 'sub' | 'read' | 'shard';

/**
 * Reconnection delays unless the ioredis options say otherwise: 50 ms, 100 ms, … growing by 50 ms up to 1 s, so a
 * restarted Redis is found again within a second.
 */
export function defaultRetryStrategy(attempt: number): number {
  return Math.min(attempt * 50, 1000);
}

/**
 * The endpoints a connection may use, shared by both connections of the bus: the configured ones first (a single
 * server, or Redis Cluster seed nodes), then the cluster's other nodes as the cluster reports them.
 */
export class EndpointRing {
  private readonly list: RedisEndpoint[];
  private readonly keys = new Set<string>();

  constructor(endpoints: readonly RedisEndpoint[]) {
    this.list = [];
    this.add(endpoints);
  }

  get size(): number {
    return this.list.length;
  }

  at(index: number): RedisEndpoint {
    return this.list[index % this.list.length];
  }

  /** Adds endpoints not known yet; returns how many were new. */
  add(endpoints: readonly RedisEndpoint[]): number {
    let added = 0;
    for (const endpoint of endpoints) {
      const key = `${endpoint.host.toLowerCase()}:${endpoint.port}`;
      if (this.keys.has(key)) continue;
      this.keys.add(key);
      this.list.push(endpoint);
      added++;
    }
    return added;
  }
}

/**
 * Which endpoint one connection tries next: after a connection that worked is lost, the same endpoint once more (a
 * restart, a network blip); after a failed attempt, the next endpoint of the ring (a node that is gone — with a
 * cluster, any other node serves the same pub/sub).
 */
export class EndpointCursor {
  private index = -1;
  private retrySame = false;

  constructor(private readonly ring: EndpointRing) {}

  next(): RedisEndpoint {
    if (this.retrySame && this.index >= 0) {
      this.retrySame = false;
    } else {
      this.index = (this.index + 1) % this.ring.size;
    }
    return this.ring.at(this.index);
  }

  /** The connection made with the last endpoint works. */
  connected(): void {
    this.retrySame = true;
  }

  get current(): RedisEndpoint | undefined {
    return this.index < 0 ? undefined : this.ring.at(this.index);
  }
}

/**
 * An ioredis connector that opens each connection (first or again) to the endpoint its cursor chooses, with TLS
 * when configured. ioredis's own connector always reconnects to one fixed host.
 */
function endpointConnector(cursor: EndpointCursor, tlsOptions: tls.ConnectionOptions | undefined) {
  return class EndpointConnector extends AbstractConnector {
    constructor(options: unknown) {
      super((options as { disconnectTimeout?: number }).disconnectTimeout ?? 200);
    }

    connect(): Promise<net.Socket | tls.TLSSocket> {
      const endpoint = cursor.next();
      this.connecting = true;
      return new Promise((resolve, reject) => {
        // As ioredis's own connector: the stream is made on the next tick, unless disconnect() came first.
        process.nextTick(() => {
          if (!this.connecting) {
            reject(new Error('Connection is closed.'));
            return;
          }
          try {
            this.stream =
              tlsOptions === undefined
                ? net.createConnection({ host: endpoint.host, port: endpoint.port })
                : tls.connect({ ...tlsOptions, host: endpoint.host, port: endpoint.port });
          } catch (error) {
            reject(error as Error);
            return;
          }
          this.stream.once('error', (error: Error) => {
            this.firstError = error;
          });
          resolve(this.stream);
        });
      });
    }
  };
}

/** The nodes a `CLUSTER SLOTS` reply names (masters and replicas), by announced host name when there is one. */
export function clusterNodes(reply: unknown): RedisEndpoint[] {
  const nodes: RedisEndpoint[] = [];
  if (!Array.isArray(reply)) return nodes;
  for (const range of reply) {
    if (!Array.isArray(range)) continue;
    for (const node of range.slice(2)) {
      if (!Array.isArray(node)) continue;
      const [ip, port, , metadata] = node as [unknown, unknown, unknown, unknown];
      let host = typeof ip === 'string' ? ip : Buffer.isBuffer(ip) ? ip.toString() : '';
      if (Array.isArray(metadata)) {
        const index = metadata.findIndex((item) => String(item) === 'hostname');
        if (index >= 0 && metadata[index + 1] !== undefined && String(metadata[index + 1]) !== '') {
          host = String(metadata[index + 1]);
        }
      }
      if (host === '' || host === '?' || typeof port !== 'number' || port <= 0) continue;
      nodes.push({ host, port });
    }
  }
  return nodes;
}

/**
 * One period of one connection being up. Commands sent during it are tracked so that they settle when the
 * connection closes: ioredis leaves a command without a reply unsettled when it neither resends it nor queues it.
 */
export class Session {
  private readonly pending = new Set<() => void>();
  private ended = false;

  /** Settles with `command`, or rejects with `lost()` when the connection closes first. */
  track<T>(command: Promise<T>, lost: () => Error): Promise<T> {
    if (this.ended) return Promise.reject(lost());
    return new Promise<T>((resolve, reject) => {
      const abort = () => reject(lost());
      this.pending.add(abort);
      command.then(
        (value) => {
          this.pending.delete(abort);
          resolve(value);
        },
        (error: unknown) => {
          this.pending.delete(abort);
          reject(error);
        },
      );
    });
  }

  end(): void {
    this.ended = true;
    for (const abort of this.pending) abort();
    this.pending.clear();
  }
}

/** One connection of a bus, and the cursor choosing its endpoint (absent when ioredis chooses: sentinel, path). */
export interface OpenedConnection {
  readonly redis: Redis;
  readonly cursor?: EndpointCursor;
}

/** The ioredis options every connection of a bus gets: the bus's decisions last, so nothing overrides them. */
function connectionOptions(plan: RedisConnectionPlan, role: ConnectionRole): RedisOptions {
  const base: RedisOptions = {
    retryStrategy: defaultRetryStrategy,
    // ioredis waits this long for a closing socket that never reports its close (one that never connected);
    // its 2 s default would keep a stopping server alive for nothing.
    disconnectTimeout: 200,
    // The ready check sends INFO, which a least-privilege ACL user may not run; pub/sub works while Redis loads.
    enableReadyCheck: false,
    // CLIENT SETINFO is refused to such a user too, and would only fill Redis's ACL log.
    disableClientInfo: true,
    // After a Sentinel failover, drop the connections to the old master at once rather than when it is demoted.
    ...(plan.mode === 'sentinel' && { failoverDetector: true }),
    ...plan.redisOptions,
    // Decisions this bus depends on (see `redis-bus.ts`); not overridable.
    enableOfflineQueue: false,
    autoResubscribe: false,
    autoResendUnfulfilledCommands: false,
    lazyConnect: false,
  };
  const name = `${hostname().replace(/[^\x21-\x7e]/g, '')}(fastify-signalr)`;
  return {
    ...base,
    connectionName: base.connectionName !== undefined ? `${base.connectionName}:${role}` : `${name}:${role}`,
  };
}

/**
 * Opens the publishing client of sharded pub/sub: an ioredis `Cluster` on the seed endpoints, which learns the slot
 * table, sends each SPUBLISH to the node owning its channel's slot and follows `MOVED`/`ASK` replies. Its offline
 * queue is off (the bus keeps its own), the slot table is refreshed every 5 s besides on `MOVED` and failures, and
 * it reconnects like the other connections.
 */
export function openCluster(plan: RedisConnectionPlan, role: ConnectionRole): Cluster {
  const { retryStrategy, host: _host, port: _port, ...redisOptions } = connectionOptions(plan, role);
  void _host;
  void _port;
  return new Cluster(
    plan.endpoints.map((endpoint) => ({ host: endpoint.host, port: endpoint.port })),
    {
      redisOptions,
      enableOfflineQueue: false,
      // CLUSTER INFO may be refused to a least-privilege user; the first slot table is readiness enough.
      enableReadyCheck: false,
      slotsRefreshInterval: 5000,
      clusterRetryStrategy: (attempt) => (typeof retryStrategy === 'function' ? retryStrategy(attempt) : null),
      lazyConnect: false,
    },
  );
}

/**
 * Opens one connection of a bus. ioredis's offline queue, its resubscription and its resending of unanswered
 * commands are always off: the bus keeps the wanted channels and its own bounded queue (see `redis-bus.ts`).
 */
export function openConnection(plan: RedisConnectionPlan, role: ConnectionRole, ring: EndpointRing): OpenedConnection {
  const options = connectionOptions(plan, role);
  if (plan.mode === 'sentinel') {
    return { redis: new Redis({ ...options, sentinels: plan.endpoints.map((e) => ({ ...e })) }) };
  }
  if (plan.mode === 'ioredis') return { redis: new Redis(options) };
  const cursor = new EndpointCursor(ring);
  // `tls` stays in the options too: ioredis then waits for the TLS handshake, not the TCP connect, before it
  // clears the connect timeout and sends the first command.
  return {
    redis: new Redis({ ...options, Connector: endpointConnector(cursor, options.tls) }),
    cursor,
  };
}
