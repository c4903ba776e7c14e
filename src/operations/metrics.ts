/**
 * Prometheus metrics with prom-client, served at `/metrics`. Names follow the OpenTelemetry semantic conventions
 * for SignalR where they exist, as a Prometheus exporter writes them (dots become underscores, the unit becomes a
 * suffix): `signalr.server.active_connections` → `signalr_server_active_connections`,
 * `signalr.server.connection.duration` (seconds) → `signalr_server_connection_duration_seconds`, with the
 * attributes `signalr.transport` (`web_sockets`, `server_sent_events`, `long_polling`) and
 * `signalr.connection.status` (`normal_closure`, `timeout`, `app_shutdown`).
 *
 * Nothing here runs per message. Message and backplane counts are plain numbers the server keeps anyway; they are
 * read when Prometheus scrapes (collect callbacks), as are the active connections (counted by walking them). The
 * histograms are observed once per connection and once per invocation.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { TransportName } from '../../protocol/negotiate';
import type { ConnectionEndStatus, HubObserver, InvocationOutcome } from '../hub/hub-stats';

/** Options of {@link signalrMetrics}. */
export interface SignalRMetricsOptions {
  /**
   * URL path of the Prometheus endpoint; `false` registers no route (read `app.signalrMetrics.registry` yourself).
   * @default '/metrics'
   */
  readonly path?: string | false;
  /**
   * The registry the metrics are registered in, to serve them beside an application's own.
   * @default a registry of its own
   */
  readonly registry?: Registry;
  /**
   * Whether Node's process metrics (CPU, memory, event-loop lag, garbage collection) are collected too.
   * @default true
   */
  readonly defaultMetrics?: boolean;
}

/** What `app.signalrMetrics` offers. */
export interface SignalRMetrics {
  /** The registry every metric is in. */
  readonly registry: Registry;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The Prometheus registry of fastify-signalr's metrics plugin. */
    signalrMetrics: SignalRMetrics;
  }
}

/** OpenTelemetry's name for each transport (`signalr.transport`). */
export const OTEL_TRANSPORT: Readonly<Record<TransportName, string>> = Object.freeze({
  WebSockets: 'web_sockets',
  ServerSentEvents: 'server_sent_events',
  LongPolling: 'long_polling',
});

/** The bucket boundaries the conventions give for `signalr.server.connection.duration`. */
const CONNECTION_DURATION_BUCKETS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300];
/** Invocations are mostly sub-millisecond to seconds: OpenTelemetry's HTTP request buckets, finer at the bottom. */
const INVOCATION_DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const metricsPlugin: FastifyPluginAsync<SignalRMetricsOptions> = async (app: FastifyInstance, options) => {
  const registry = options.registry ?? new Registry();
  const signalr = app.signalr;
  const endpoints = signalr.endpoints;
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const protocols = [
    ...new Set(endpoints.flatMap((endpoint) => endpoint.options.protocols.map((protocol) => protocol.name))),
  ];

  new Gauge({
    name: 'signalr_server_active_connections',
    help: 'Number of connections that are currently active on the server (signalr.server.active_connections).',
    labelNames: ['signalr_transport', 'signalr_protocol'],
    registers: [registry],
    collect() {
      this.reset();
      // Every transport and protocol shows, 0 when unused, so a series exists before its first connection.
      for (const transport of Object.values(OTEL_TRANSPORT)) {
        for (const protocol of protocols) this.set({ signalr_transport: transport, signalr_protocol: protocol }, 0);
      }
      for (const endpoint of endpoints) {
        for (const { transport, protocol, count } of endpoint.countConnections()) {
          this.inc({ signalr_transport: OTEL_TRANSPORT[transport], signalr_protocol: protocol || 'none' }, count);
        }
      }
    },
  });

  const connectionDuration = new Histogram({
    name: 'signalr_server_connection_duration_seconds',
    help: 'The duration of connections on the server (signalr.server.connection.duration).',
    labelNames: ['signalr_connection_status', 'signalr_transport'],
    buckets: CONNECTION_DURATION_BUCKETS,
    registers: [registry],
  });

  const invocationDuration = new Histogram({
    name: 'signalr_server_invocation_duration_seconds',
    help: 'How long hub methods ran, by outcome: success, hub_exception (a HubException for the caller) or error.',
    labelNames: ['signalr_hub', 'signalr_method', 'signalr_invocation_outcome'],
    buckets: INVOCATION_DURATION_BUCKETS,
    registers: [registry],
  });

  /** A counter whose value is a total the server keeps: reset and set at each scrape. */
  const totalPerHub = (name: string, help: string, read: (endpoint: (typeof endpoints)[number]) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['signalr_hub'],
      registers: [registry],
      collect() {
        this.reset();
        for (const endpoint of endpoints) this.inc({ signalr_hub: endpoint.options.path }, read(endpoint));
      },
    });
  totalPerHub(
    'signalr_server_messages_received_total',
    'Hub messages received from clients (keep-alive pings excluded).',
    (endpoint) => endpoint.stats.messagesReceived,
  );
  totalPerHub(
    'signalr_server_messages_sent_total',
    'Hub messages sent to clients: invocations (one per recipient), completions and stream items.',
    (endpoint) => endpoint.stats.messagesSent,
  );
  totalPerHub(
    'signalr_server_invocations_rejected_total',
    'Invocations answered with an error before their method ran (unknown method, bad arguments, unauthorized).',
    (endpoint) => endpoint.stats.invocationsRejected,
  );
  totalPerHub(
    'signalr_server_handshake_failures_total',
    'Connections whose handshake failed or timed out.',
    (endpoint) => endpoint.stats.handshakesFailed,
  );

  // The backplane: its state and the counts its bus keeps.
  const backplaneTotal = (
    name: string,
    help: string,
    read: (status: NonNullable<typeof signalr.backplane>) => number,
  ) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        const status = signalr.backplane;
        if (status !== undefined) this.inc(read(status));
      },
    });
  if (signalr.backplane !== undefined) {
    new Gauge({
      name: 'signalr_backplane_connected',
      help: 'Whether the Redis backplane is connected and subscribed (1) or not (0).',
      registers: [registry],
      collect() {
        this.set(signalr.backplane?.connected === true ? 1 : 0);
      },
    });
    new Gauge({
      name: 'signalr_backplane_subscriptions',
      help: 'Redis channels this server wants subscribed.',
      registers: [registry],
      collect() {
        this.set(signalr.backplane?.subscriptions ?? 0);
      },
    });
    if (signalr.backplane.shardedPubSub === true) {
      new Gauge({
        name: 'signalr_backplane_shard_connections',
        help: 'Sharded pub/sub: subscriber connections open now, one per cluster node owning a wanted channel.',
        registers: [registry],
        collect() {
          this.set(signalr.backplane?.shardConnections ?? 0);
        },
      });
      new Gauge({
        name: 'signalr_backplane_sharded_subscriptions',
        help: 'Sharded pub/sub: channels confirmed subscribed (SSUBSCRIBE) on the node owning their slot now.',
        registers: [registry],
        collect() {
          this.set(signalr.backplane?.shardedSubscriptions ?? 0);
        },
      });
    }
    backplaneTotal(
      'signalr_backplane_messages_published_total',
      'Messages this server published to Redis (confirmed by Redis).',
      (status) => status.publishedMessages,
    );
    backplaneTotal(
      'signalr_backplane_publish_errors_total',
      'Messages that could not be published to Redis (dropped from the queue, the publish failed, or no queue and Redis unreachable).',
      (status) => status.unpublishedMessages,
    );
    backplaneTotal(
      'signalr_backplane_messages_received_total',
      "Messages received from Redis on this server's subscriptions.",
      (status) => status.receivedMessages,
    );
    backplaneTotal(
      'signalr_backplane_outages_total',
      'Times an established Redis connection was lost.',
      (status) => status.outages,
    );
    new Gauge({
      name: 'signalr_backplane_queued_publishes',
      help: 'Publishes waiting for Redis now (unreachable, failing over, or subscriptions not back yet).',
      registers: [registry],
      collect() {
        this.set(signalr.backplane?.queuedMessages ?? 0);
      },
    });
    new Gauge({
      name: 'signalr_backplane_queued_publish_bytes',
      help: 'Payload bytes of the publishes waiting for Redis now (bounded by maximumQueuedPublishBytes).',
      registers: [registry],
      collect() {
        this.set(signalr.backplane?.queuedBytes ?? 0);
      },
    });
    backplaneTotal(
      'signalr_backplane_publishes_queued_total',
      'Publishes that had to wait for Redis.',
      (status) => status.queuedMessagesTotal,
    );
    backplaneTotal(
      'signalr_backplane_publishes_replayed_total',
      'Queued publishes sent once Redis was back (confirmed by Redis).',
      (status) => status.replayedMessages,
    );
    backplaneTotal(
      'signalr_backplane_publishes_dropped_total',
      'Queued publishes dropped by the queue bounds (maximumQueuedPublishBytes, maximumQueuedPublishAgeMs).',
      (status) => status.droppedMessages,
    );
  }

  for (const endpoint of endpoints)
    endpoint.stats.observer = hubObserver(endpoint.options.path, connectionDuration, invocationDuration);

  app.decorate('signalrMetrics', { registry } satisfies SignalRMetrics);
  if (options.path !== false) {
    app.get(options.path ?? '/metrics', async (_request, reply) =>
      reply.type(registry.contentType).send(await registry.metrics()),
    );
  }
};

/**
 * The observer of one hub: labels objects are made once per method and outcome, so an observation allocates only
 * what prom-client itself does.
 */
function hubObserver(hub: string, connectionDuration: Histogram, invocationDuration: Histogram): HubObserver {
  const connectionLabels = new Map<string, Record<string, string>>();
  const invocationLabels = new Map<string, Record<InvocationOutcome, Record<string, string>>>();
  return {
    connectionEnded(transport: TransportName, status: ConnectionEndStatus, seconds: number) {
      const key = transport + status;
      let labels = connectionLabels.get(key);
      if (labels === undefined) {
        labels = { signalr_connection_status: status, signalr_transport: OTEL_TRANSPORT[transport] };
        connectionLabels.set(key, labels);
      }
      connectionDuration.observe(labels, seconds);
    },
    invocationEnded(method: string, outcome: InvocationOutcome, seconds: number) {
      let labels = invocationLabels.get(method);
      if (labels === undefined) {
        const of = (outcome: InvocationOutcome) => ({
          signalr_hub: hub,
          signalr_method: method,
          signalr_invocation_outcome: outcome,
        });
        labels = { success: of('success'), hub_exception: of('hub_exception'), error: of('error') };
        invocationLabels.set(method, labels);
      }
      invocationDuration.observe(labels[outcome], seconds);
    },
  };
}

/**
 * Prometheus metrics of fastify-signalr (register it after the main plugin):
 *
 * ```ts
 * await app.register(fastifySignalR, { hubs: [...] });
 * await app.register(signalrMetrics); // GET /metrics
 * ```
 */
export const signalrMetrics = fp(metricsPlugin, {
  fastify: '5.x',
  name: 'fastify-signalr-metrics',
  dependencies: ['fastify-signalr'],
});
