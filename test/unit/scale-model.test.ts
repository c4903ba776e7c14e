/**
 * The scale curve's arithmetic (bench/lib/scale-model.ts): costs per message from counted CPU, the least-squares
 * fits, and the fleet sizing docs/scaling.md is written from. Checked against figures worked out by hand.
 */
import {
  cellCosts,
  costModel,
  expectedServersPerGroup,
  fitLine,
  fitWorkload,
  fleetLoad,
  leastSquares,
  serversNeeded,
  type CostModel,
  type FleetWorkload,
} from '../../bench/lib/scale-model';

test('costs per delivered and per published message are µs of CPU over the counts', () => {
  const costs = cellCosts({
    messages: 1000,
    delivered: 10_000,
    serverCpuSeconds: 0.5,
    redisCpuSeconds: 0.03,
    busiestRedisCpuSeconds: 0.02,
  });
  expect(costs.serverMicrosPerDelivered).toBeCloseTo(50, 9);
  expect(costs.redisMicrosPerDelivered).toBeCloseTo(3, 9);
  expect(costs.serverMicrosPerMessage).toBeCloseTo(500, 9);
  expect(costs.redisMicrosPerMessage).toBeCloseTo(30, 9);
  expect(costs.busiestRedisMicrosPerMessage).toBeCloseTo(20, 9);
  expect(
    cellCosts({ messages: 0, delivered: 0, serverCpuSeconds: 1, redisCpuSeconds: 1, busiestRedisCpuSeconds: 1 }),
  ).toMatchObject({ serverMicrosPerDelivered: NaN, redisMicrosPerMessage: NaN });
});

test('members placed at random land on the expected number of distinct servers', () => {
  expect(expectedServersPerGroup(10, 1)).toBe(1);
  expect(expectedServersPerGroup(10, 2)).toBeCloseTo(2 * (1 - 0.5 ** 10), 12);
  expect(expectedServersPerGroup(10, 8)).toBeCloseTo(5.8954, 3);
  // Many servers: nearly every member on a server of its own.
  expect(expectedServersPerGroup(10, 10_000)).toBeCloseTo(9.9955, 3);
});

test('least squares recovers an exact plane and the best line through noisy points', () => {
  // y = 2 + 3a − b, exactly.
  const rows = [
    [1, 0, 0],
    [1, 1, 0],
    [1, 0, 1],
    [1, 2, 3],
  ];
  const [c0, c1, c2] = leastSquares(
    rows,
    rows.map(([, a, b]) => 2 + 3 * a - b),
  );
  expect(c0).toBeCloseTo(2, 9);
  expect(c1).toBeCloseTo(3, 9);
  expect(c2).toBeCloseTo(-1, 9);
  // (0,1), (1,3), (2,2): slope 1/2, intercept 3/2 (worked by hand).
  const line = fitLine([
    { x: 0, y: 1 },
    { x: 1, y: 3 },
    { x: 2, y: 2 },
  ]);
  expect(line.slope).toBeCloseTo(0.5, 9);
  expect(line.intercept).toBeCloseTo(1.5, 9);
  expect(() => fitLine([{ x: 4, y: 1 }])).toThrow(RangeError);
  expect(() => leastSquares([[1], [2]], [1])).toThrow(RangeError);
});

/** Cells made from known coefficients: f = 100, d = 5, e = 40 (broadcast) / 30 (groups), a = 8, b = 2. */
function syntheticModel(): CostModel {
  const servers = [1, 2, 4, 8];
  const broadcast = fitWorkload(
    500,
    servers.map((k) => ({
      subscribers: k,
      serverMicrosPerMessage: 100 + 5 * 500 + 40 * k,
      redisMicrosPerMessage: 8 + 2 * k,
    })),
  );
  const groups = fitWorkload(
    10,
    [1, 2, 3.8, 5.9].map((k) => ({
      subscribers: k,
      serverMicrosPerMessage: 100 + 5 * 10 + 30 * k,
      redisMicrosPerMessage: 8 + 2 * k,
    })),
  );
  return costModel(broadcast, groups);
}

test('the two workloads give the sender cost and the per-delivery cost', () => {
  const model = syntheticModel();
  expect(model.senderMicros).toBeCloseTo(100, 6);
  expect(model.perDeliveryMicros).toBeCloseTo(5, 9);
  expect(model.broadcast.server.slope).toBeCloseTo(40, 9);
  expect(model.groups.server.slope).toBeCloseTo(30, 9);
  expect(model.groups.redis.intercept).toBeCloseTo(8, 9);
  expect(model.groups.redis.slope).toBeCloseTo(2, 9);
});

const groupsFleet: FleetWorkload = {
  kind: 'groups',
  connections: 1_000_000,
  messagesPerSecond: 100_000,
  recipients: 10,
  channels: 100_000,
};

test('a fleet of groups: classic cluster pub/sub gains little per node, sharded divides by the masters', () => {
  const model = syntheticModel();
  const k = expectedServersPerGroup(10, 100);
  const serverMicros = 100 + 5 * 10 + 30 * k;
  const single = fleetLoad(model, groupsFleet, 100, 'single', 1, 0.7);
  expect(single.subscribers).toBeCloseTo(k, 12);
  expect(single.coresPerServer).toBeCloseTo((100_000 * serverMicros) / 1e6 / 100, 9);
  expect(single.coresBusiestRedisNode).toBeCloseTo((100_000 * (8 + 2 * k)) / 1e6, 9);
  expect(single.redisSaturationMessagesPerSecond).toBeCloseTo(0.7e6 / (8 + 2 * k), 6);

  // Classic: every node takes every message (a third of the 3-node sum each), the writes split over the nodes.
  const classic6 = fleetLoad(model, groupsFleet, 100, 'cluster', 6, 0.7);
  expect(classic6.coresBusiestRedisNode).toBeCloseTo((100_000 * (8 / 3 + (2 * k) / 6)) / 1e6, 9);
  // Sharded: each node carries its channels' messages only.
  const sharded6 = fleetLoad(model, groupsFleet, 100, 'sharded', 6, 0.7);
  expect(sharded6.coresBusiestRedisNode).toBeCloseTo((100_000 * (8 + 2 * k)) / 6 / 1e6, 9);
  const sharded12 = fleetLoad(model, groupsFleet, 100, 'sharded', 12, 0.7);
  expect(sharded12.redisSaturationMessagesPerSecond).toBeCloseTo(2 * sharded6.redisSaturationMessagesPerSecond, 6);
  // Doubling a classic cluster does not double what it carries.
  const classic12 = fleetLoad(model, groupsFleet, 100, 'cluster', 12, 0.7);
  expect(classic12.redisSaturationMessagesPerSecond / classic6.redisSaturationMessagesPerSecond).toBeLessThan(1.5);
});

test('broadcast to all rides one channel: sharding it onto more masters does not spread it', () => {
  const model = syntheticModel();
  const broadcast: FleetWorkload = {
    kind: 'broadcast',
    connections: 1_000_000,
    messagesPerSecond: 1,
    recipients: 1_000_000,
    channels: 1,
  };
  const sharded3 = fleetLoad(model, broadcast, 40, 'sharded', 3, 0.7);
  const sharded12 = fleetLoad(model, broadcast, 40, 'sharded', 12, 0.7);
  expect(sharded3.subscribers).toBe(40);
  expect(sharded12.redisSaturationMessagesPerSecond).toBeCloseTo(sharded3.redisSaturationMessagesPerSecond, 9);
  expect(sharded3.redisSaturationMessagesPerSecond).toBeCloseTo(0.7e6 / (8 + 2 * 40), 6);
  // Each server delivers its share of a million per broadcast: 5 µs each, 40 µs to receive it, the sender's 100 µs.
  expect(sharded3.coresPerServer).toBeCloseTo((100 + 5 * 1_000_000 + 40 * 40) / 1e6 / 40, 9);
});

test('servers needed: the connection bound, or more when CPU says so, or none that fits', () => {
  const model = syntheticModel();
  // 20 servers by connections; each would spend 100,000 × (150 + 30·k) µs / 20 > 0.5 core.
  const servers = serversNeeded(model, groupsFleet, 0.5, 50_000);
  expect(servers).toBeGreaterThan(20);
  expect(fleetLoad(model, groupsFleet, servers, 'single', 1, 1).coresPerServer).toBeLessThanOrEqual(0.5);
  expect(fleetLoad(model, groupsFleet, servers - 1, 'single', 1, 1).coresPerServer).toBeGreaterThan(0.5);
  const light: FleetWorkload = { ...groupsFleet, messagesPerSecond: 10 };
  expect(serversNeeded(model, light, 0.5, 50_000)).toBe(20);
  // Every server receives every broadcast: at 20,000 broadcasts/s the 40 µs of receiving alone is 0.8 core.
  const flood: FleetWorkload = {
    ...groupsFleet,
    kind: 'broadcast',
    recipients: 1000,
    connections: 1000,
    messagesPerSecond: 20_000,
    channels: 1,
  };
  expect(serversNeeded(model, flood, 0.5, 50_000)).toBe(Number.POSITIVE_INFINITY);
});
