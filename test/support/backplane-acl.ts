/**
 * The smallest Redis ACL a backplane user needs, as the README documents it ("Redis in production"): the three
 * pub/sub commands, CLIENT SETNAME (the connections' names in CLIENT LIST), CLUSTER SLOTS (whether Redis is a
 * cluster, and its nodes), the channels of the hubs it serves, and reading the streams-mode marker key (GET), so a
 * server in pub/sub mode can refuse to start beside servers in streams mode.
 * Tests grant exactly this, so what the README tells operators is what is proven to work.
 */

/** Commands granted after `-@all`. */
export const ACL_COMMANDS = ['+publish', '+subscribe', '+unsubscribe', '+client|setname', '+cluster|slots', '+get'];

/**
 * The rules of an ACL user for one hub: the hub's channels only (`channels` = prefix + hub name), and read access to
 * one key, the streams-mode marker of the channel prefix.
 */
export function aclRules(channels: string, prefix = ''): string[] {
  return [
    'resetkeys',
    'resetchannels',
    `&${channels}:*`,
    `%R~${prefix}signalr:backplane-mode`,
    '-@all',
    ...ACL_COMMANDS,
  ];
}
