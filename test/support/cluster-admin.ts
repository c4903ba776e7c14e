/**
 * What the sharded pub/sub tests ask a Redis Cluster: who owns a channel's slot, who subscribes a sharded channel
 * on which node, and the commands that move a slot or promote a replica — each over a short-lived admin connection.
 */
import { command } from './redis-topology';
import type { RedisServer } from './redis-server';

/** One line of `CLUSTER NODES`. */
export interface ClusterNode {
  readonly id: string;
  readonly port: number;
  readonly master: boolean;
  /** The id of the master a replica follows ('-' for a master). */
  readonly masterId: string;
  readonly failed: boolean;
  /** Slot ranges `[from, to]` a master serves. */
  readonly slots: readonly (readonly [number, number])[];
}

/** The cluster as the node on `port` sees it. */
export async function clusterNodes(port: number): Promise<ClusterNode[]> {
  return String(await command(port, ['CLUSTER', 'NODES']))
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const fields = line.split(' ');
      const slots = fields
        .slice(8)
        .filter((range) => !range.startsWith('['))
        .map((range) => {
          const [from, to] = range.split('-').map(Number);
          return [from, to ?? from] as const;
        });
      return {
        id: fields[0],
        port: Number(/:(\d+)@/.exec(fields[1])![1]),
        master: fields[2].includes('master'),
        masterId: fields[3],
        failed: /fail/.test(fields[2]),
        slots,
      };
    });
}

/** The hash slot Redis computes for `name` (`CLUSTER KEYSLOT`). */
export async function keySlot(port: number, name: string): Promise<number> {
  return Number(await command(port, ['CLUSTER', 'KEYSLOT', name]));
}

/** The master serving `slot`, as the node on `port` sees it. */
export async function ownerOf(port: number, slot: number): Promise<ClusterNode> {
  const owner = (await clusterNodes(port)).find(
    (node) => node.master && !node.failed && node.slots.some(([from, to]) => slot >= from && slot <= to),
  );
  if (owner === undefined) throw new Error(`no master serves slot ${slot}`);
  return owner;
}

/** How many clients subscribe `channel` with SSUBSCRIBE on the node at `port` (`PUBSUB SHARDNUMSUB`). */
export async function shardSubscribers(port: number, channel: string): Promise<number> {
  const reply = (await command(port, ['PUBSUB', 'SHARDNUMSUB', channel])) as unknown[];
  return Number(reply[1]);
}

/** The sharded channels the node at `port` has subscribers for (`PUBSUB SHARDCHANNELS`). */
export async function shardChannels(port: number): Promise<string[]> {
  return ((await command(port, ['PUBSUB', 'SHARDCHANNELS'])) as unknown[]).map(String).sort();
}

/** How many clients subscribe `channel` with classic SUBSCRIBE on the node at `port` (`PUBSUB NUMSUB`). */
export async function classicSubscribers(port: number, channel: string): Promise<number> {
  const reply = (await command(port, ['PUBSUB', 'NUMSUB', channel])) as unknown[];
  return Number(reply[1]);
}

/**
 * Moves `slot` from its master to the master `to`, as `redis-cli --cluster reshard` does for a slot without keys:
 * IMPORTING on the target, MIGRATING on the source, then NODE on the target, the source and every other master.
 */
export async function migrateSlot(nodes: readonly RedisServer[], slot: number, to: ClusterNode): Promise<void> {
  const live = nodes.filter((node) => node.pid !== undefined);
  const from = await ownerOf(to.port, slot);
  await command(to.port, ['CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', from.id]);
  await command(from.port, ['CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', to.id]);
  await command(to.port, ['CLUSTER', 'SETSLOT', String(slot), 'NODE', to.id]);
  await command(from.port, ['CLUSTER', 'SETSLOT', String(slot), 'NODE', to.id]);
  const masters = (await clusterNodes(to.port)).filter((node) => node.master && !node.failed);
  for (const master of masters) {
    if (master.id === to.id || master.id === from.id) continue;
    if (live.some((node) => node.port === master.port)) {
      await command(master.port, ['CLUSTER', 'SETSLOT', String(slot), 'NODE', to.id]);
    }
  }
}
