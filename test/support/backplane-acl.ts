/**
 * The smallest Redis ACL a backplane user needs, as the README documents it ("Redis in production"): the three
 * pub/sub commands, CLIENT SETNAME (the connections' names in CLIENT LIST), CLUSTER SLOTS (whether Redis is a
 * cluster, and its nodes), and the channels of the hubs it serves.
 * Tests grant exactly this, so what the README tells operators is what is proven to work.
 */

/** Commands granted after `-@all`. */
export const ACL_COMMANDS = ['+publish', '+subscribe', '+unsubscribe', '+client|setname', '+cluster|slots'];

/** The rules of an ACL user for one hub: no keys, the hub's channels only (`channels` = prefix + hub name). */
export function aclRules(channels: string): string[] {
  return ['resetkeys', 'resetchannels', `&${channels}:*`, '-@all', ...ACL_COMMANDS];
}
