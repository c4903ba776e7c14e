/**
 * Health endpoints for load balancers and orchestrators:
 * - liveness (`GET /health`): 200 while the process serves HTTP — also while Redis is away (the server still
 *   serves its own clients) and while it drains for shutdown. Restarting a process for a Redis outage would not help.
 * - readiness (`GET /ready`): 200 when this server should receive new clients; 503 once a shutdown began (so the
 *   balancer stops sending new clients before the process goes) and, with a backplane, while it is not connected
 *   (a server cut off from Redis would give new clients a chat that misses every other server's messages).
 * Both bodies report the backplane's state.
 */
import type { FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import type { BackplaneStatus } from '../redis/redis-backplane';

/** Options of {@link signalrHealth}. */
export interface SignalRHealthOptions {
  /**
   * URL path of the liveness check; `false` for none.
   * @default '/health'
   */
  readonly livenessPath?: string | false;
  /**
   * URL path of the readiness check; `false` for none.
   * @default '/ready'
   */
  readonly readinessPath?: string | false;
  /**
   * Whether readiness needs the Redis backplane connected. Turn it off to keep every server ready while Redis is
   * down for all of them (each then serves its own clients only, instead of none being ready).
   * @default true
   */
  readonly requireBackplane?: boolean;
}

/** Body of the liveness check. */
export interface LivenessReport {
  readonly status: 'ok';
  /** True once a graceful shutdown began. */
  readonly shuttingDown: boolean;
  /** Hub connections on this server. */
  readonly connections: number;
  /** The backplane's health, or `null` without one. */
  readonly backplane: BackplaneStatus | null;
}

/** Body of the readiness check. */
export interface ReadinessReport {
  readonly status: 'ready' | 'shutting_down' | 'backplane_unavailable';
  readonly backplane: BackplaneStatus | null;
}

const healthPlugin: FastifyPluginAsync<SignalRHealthOptions> = async (app, options) => {
  const signalr = app.signalr;
  const requireBackplane = options.requireBackplane ?? true;
  const livenessPath = options.livenessPath ?? '/health';
  const readinessPath = options.readinessPath ?? '/ready';
  // Health answers must not be cached by a proxy, or a balancer would see a stale state.
  const noStore = { 'cache-control': 'no-store' };

  if (livenessPath !== false) {
    app.get(livenessPath, async (_request, reply) => {
      const report: LivenessReport = {
        status: 'ok',
        shuttingDown: signalr.shuttingDown,
        connections: signalr.endpoints.reduce((count, endpoint) => count + endpoint.connectionCount, 0),
        backplane: signalr.backplane ?? null,
      };
      return reply.headers(noStore).send(report);
    });
  }
  if (readinessPath !== false) {
    app.get(readinessPath, async (_request, reply) => {
      const backplane = signalr.backplane ?? null;
      const status: ReadinessReport['status'] = signalr.shuttingDown
        ? 'shutting_down'
        : requireBackplane && backplane !== null && !backplane.connected
          ? 'backplane_unavailable'
          : 'ready';
      const report: ReadinessReport = { status, backplane };
      return reply
        .code(status === 'ready' ? 200 : 503)
        .headers(noStore)
        .send(report);
    });
  }
};

/**
 * Liveness and readiness endpoints (register it after the main plugin):
 *
 * ```ts
 * await app.register(fastifySignalR, { hubs: [...], redis: { url } });
 * await app.register(signalrHealth); // GET /health, GET /ready
 * ```
 */
export const signalrHealth = fp(healthPlugin, {
  fastify: '5.x',
  name: 'fastify-signalr-health',
  dependencies: ['fastify-signalr'],
});
