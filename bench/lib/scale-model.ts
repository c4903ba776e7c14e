/**
 * The arithmetic of the scale curve (`bench/scale-curve.ts`) and of the fleet sizing in docs/scaling.md, kept apart
 * from the processes so a unit test holds it (`test/unit/scale-model.test.ts`).
 *
 * The model: a message published once to the backplane costs
 * - the servers `f + d·D + e·k` µs of CPU in all — `f` for the sender's server (the invocation and the publish),
 *   `d` for each of the `D` deliveries to a client, `e` for each of the `k` servers that receive it from Redis
 *   (read, parse, look up local recipients);
 * - Redis `a + b·k` µs — `a` to take the publish (and, on a cluster with classic pub/sub, to carry it to every node
 *   over the cluster bus), `b` to write it to each subscribed server.
 * Each workload's lines in k are fitted by least squares over its cells (1 to 8 servers); the two workloads' server
 * intercepts (`f + d·D` with different D) give `f` and `d`.
 */

/** What one measured cell counted over its window. */
export interface CellCounts {
  /** Messages published (broadcasts or group sends). */
  readonly messages: number;
  /** Messages delivered to clients. */
  readonly delivered: number;
  /** CPU seconds of all server processes. */
  readonly serverCpuSeconds: number;
  /** CPU seconds of all Redis processes. */
  readonly redisCpuSeconds: number;
  /** CPU seconds of the Redis process that used the most. */
  readonly busiestRedisCpuSeconds: number;
}

/** A cell's costs, in µs of CPU. */
export interface CellCosts {
  readonly serverMicrosPerDelivered: number;
  readonly redisMicrosPerDelivered: number;
  readonly serverMicrosPerMessage: number;
  readonly redisMicrosPerMessage: number;
  /** The busiest Redis process's µs per published message: what limits a node first. */
  readonly busiestRedisMicrosPerMessage: number;
}

const micros = (seconds: number, count: number) => (count > 0 ? (seconds * 1e6) / count : Number.NaN);

/** Costs per delivered and per published message. */
export function cellCosts(counts: CellCounts): CellCosts {
  return {
    serverMicrosPerDelivered: micros(counts.serverCpuSeconds, counts.delivered),
    redisMicrosPerDelivered: micros(counts.redisCpuSeconds, counts.delivered),
    serverMicrosPerMessage: micros(counts.serverCpuSeconds, counts.messages),
    redisMicrosPerMessage: micros(counts.redisCpuSeconds, counts.messages),
    busiestRedisMicrosPerMessage: micros(counts.busiestRedisCpuSeconds, counts.messages),
  };
}

/**
 * Expected number of distinct servers among `members` connections each placed on one of `servers` at random
 * (a load balancer's spread): `servers · (1 − (1 − 1/servers)^members)`.
 */
export function expectedServersPerGroup(members: number, servers: number): number {
  if (servers <= 1) return Math.min(servers, members);
  return servers * (1 - (1 - 1 / servers) ** members);
}

/**
 * Least squares: the coefficients `c` minimizing Σ (rows[i]·c − values[i])², by the normal equations and Gaussian
 * elimination with partial pivoting (a handful of unknowns). Throws when the rows do not determine them.
 */
export function leastSquares(rows: readonly (readonly number[])[], values: readonly number[]): number[] {
  if (rows.length !== values.length || rows.length === 0) throw new RangeError('one value per row, at least one row');
  const n = rows[0].length;
  // Augmented normal matrix [AᵀA | Aᵀy].
  const m = Array.from({ length: n }, (_, i) =>
    Array.from({ length: n + 1 }, (_, j) =>
      rows.reduce((sum, row, r) => sum + row[i] * (j < n ? row[j] : values[r]), 0),
    ),
  );
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r][col]) > Math.abs(m[pivot][col])) pivot = r;
    const scale = Math.max(...m.map((row) => Math.abs(row[col])), 1e-300);
    if (Math.abs(m[pivot][col]) <= scale * 1e-12) throw new RangeError('the rows do not determine the coefficients');
    [m[col], m[pivot]] = [m[pivot], m[col]];
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const factor = m[r][col] / m[col][col];
      for (let j = col; j <= n; j++) m[r][j] -= factor * m[col][j];
    }
  }
  return m.map((row, i) => row[n] / row[i]);
}

/** A straight line fitted to points. */
export interface LineFit {
  readonly intercept: number;
  readonly slope: number;
}

/** The least-squares line through `points` (at least two distinct `x`). */
export function fitLine(points: readonly { readonly x: number; readonly y: number }[]): LineFit {
  const [intercept, slope] = leastSquares(
    points.map((point) => [1, point.x]),
    points.map((point) => point.y),
  );
  return { intercept, slope };
}

/** One measured cell as the fits see it. */
export interface FitPoint {
  /** Servers that received each message from Redis (subscribers of its channel). */
  readonly subscribers: number;
  readonly serverMicrosPerMessage: number;
  readonly redisMicrosPerMessage: number;
}

/** One workload's costs per published message against the servers subscribed to its channel (k), in µs. */
export interface WorkloadFit {
  /** Deliveries to clients per message (D). */
  readonly deliveries: number;
  /** Servers: f + d·D (intercept) and e (slope, per receiving server). */
  readonly server: LineFit;
  /** Redis: a (intercept) and b (slope, per subscribed server). */
  readonly redis: LineFit;
}

/** The fitted per-message costs of one Redis topology, in µs. */
export interface CostModel {
  /** f: the sender's server, per published message (the invocation and the publish). */
  readonly senderMicros: number;
  /** d: each delivery to a client. */
  readonly perDeliveryMicros: number;
  readonly broadcast: WorkloadFit;
  readonly groups: WorkloadFit;
}

/** Fits one workload's lines over its cells (1 to 8 servers: at least two subscriber counts). */
export function fitWorkload(deliveries: number, points: readonly FitPoint[]): WorkloadFit {
  return {
    deliveries,
    server: fitLine(points.map((point) => ({ x: point.subscribers, y: point.serverMicrosPerMessage }))),
    redis: fitLine(points.map((point) => ({ x: point.subscribers, y: point.redisMicrosPerMessage }))),
  };
}

/**
 * The cost model from the two workloads' fits: their server intercepts are f + d·D for two different D, which
 * gives d and f.
 */
export function costModel(broadcast: WorkloadFit, groups: WorkloadFit): CostModel {
  const perDeliveryMicros =
    (broadcast.server.intercept - groups.server.intercept) / (broadcast.deliveries - groups.deliveries);
  return {
    senderMicros: groups.server.intercept - groups.deliveries * perDeliveryMicros,
    perDeliveryMicros,
    broadcast,
    groups,
  };
}

/** A fleet's traffic: every connection in groups, or one broadcast channel to all. */
export interface FleetWorkload {
  readonly kind: 'broadcast' | 'groups';
  readonly connections: number;
  /** Messages published per second, fleet-wide. */
  readonly messagesPerSecond: number;
  /** Connections each message reaches: a group's size, or every connection for a broadcast. */
  readonly recipients: number;
  /** How many channels the messages spread over (groups; 1 for broadcast to all). */
  readonly channels: number;
}

/** How the Redis deployment carries pub/sub. */
export type RedisLayout = 'single' | 'cluster' | 'sharded';

/** What a fleet's processes would spend, by {@link CostModel}. */
export interface FleetLoad {
  readonly servers: number;
  /** Servers each message reaches through Redis (k). */
  readonly subscribers: number;
  /** CPU cores one server spends (all servers alike). */
  readonly coresPerServer: number;
  /** CPU cores the busiest Redis node spends on pub/sub. */
  readonly coresBusiestRedisNode: number;
  /** Messages per second at which the busiest Redis node would reach `redisCoreBudget`. */
  readonly redisSaturationMessagesPerSecond: number;
}

/**
 * Masters of the measured cluster. A classic-cluster fit's per-message cost is the sum over its nodes, each of which
 * carries every message: one node's share is that sum over this count, at any cluster size.
 */
export const MEASURED_CLUSTER_NODES = 3;

/**
 * The load of a fleet of `servers` on `nodes` Redis masters (1 for `single`), connections spread evenly and each
 * message's recipients placed at random. Classic cluster pub/sub carries every message to every node (one node's
 * share of the measured per-message cost on each), with the servers' subscriber connections spread over the nodes;
 * sharded pub/sub carries each channel's messages on its slot's node only, the channels spread evenly over the nodes
 * (at most `channels` nodes busy). A Redis node runs its commands on one thread, so `redisCoreBudget` (a fraction of
 * one core) is its ceiling.
 */
export function fleetLoad(
  model: CostModel,
  workload: FleetWorkload,
  servers: number,
  layout: RedisLayout,
  nodes: number,
  redisCoreBudget: number,
): FleetLoad {
  const fit = model[workload.kind];
  const subscribers = workload.kind === 'broadcast' ? servers : expectedServersPerGroup(workload.recipients, servers);
  const rate = workload.messagesPerSecond;
  const serverMicrosPerMessage =
    model.senderMicros + model.perDeliveryMicros * workload.recipients + fit.server.slope * subscribers;
  const shards = layout === 'single' ? 1 : nodes;
  // µs the busiest node spends per message published fleet-wide.
  const busiestMicrosPerMessage =
    layout === 'sharded'
      ? (fit.redis.intercept + fit.redis.slope * subscribers) / Math.min(shards, workload.channels)
      : fit.redis.intercept / (layout === 'cluster' ? MEASURED_CLUSTER_NODES : 1) +
        (fit.redis.slope * subscribers) / shards;
  return {
    servers,
    subscribers,
    coresPerServer: (rate * serverMicrosPerMessage) / 1e6 / servers,
    coresBusiestRedisNode: (rate * busiestMicrosPerMessage) / 1e6,
    redisSaturationMessagesPerSecond: (redisCoreBudget * 1e6) / busiestMicrosPerMessage,
  };
}

/**
 * The fewest servers that keep each under `coreBudget` cores and `maximumConnections` connections; infinite when no
 * count does (a broadcast rate whose per-server share of receiving alone passes the budget).
 */
export function serversNeeded(
  model: CostModel,
  workload: FleetWorkload,
  coreBudget: number,
  maximumConnections: number,
): number {
  const fewest = Math.max(1, Math.ceil(workload.connections / maximumConnections));
  // More servers lower each one's delivery share but add receiving servers per message; stop where it fits.
  for (let servers = fewest; servers <= Math.max(fewest, workload.connections); servers++) {
    if (fleetLoad(model, workload, servers, 'single', 1, 1).coresPerServer <= coreBudget) return servers;
  }
  return Number.POSITIVE_INFINITY;
}
