/**
 * The Redis Cluster hash slot of a key or sharded channel name, as Redis computes it (cluster specification, "Hash
 * tags" and "Key distribution model"): CRC16 (XModem) of the name — or of the part between the first `{` and the
 * next `}` when that part is not empty — modulo 16384. Used by sharded pub/sub to know which node's subscriber
 * connection a channel belongs to (docs/protocol.md §3.11).
 */

/** The number of hash slots of a Redis Cluster. */
export const CLUSTER_SLOTS = 16384;

const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[byte] = crc;
  }
  return table;
})();

function crc16(bytes: Uint8Array, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ bytes[i]) & 0xff];
  return crc;
}

/** The hash slot of `name` (its UTF-8 bytes), hash tags included. */
export function clusterSlot(name: string | Buffer): number {
  const bytes = typeof name === 'string' ? Buffer.from(name, 'utf8') : name;
  const open = bytes.indexOf(0x7b); // '{'
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1); // '}'
    if (close > open + 1) return crc16(bytes, open + 1, close) % CLUSTER_SLOTS;
  }
  return crc16(bytes, 0, bytes.length) % CLUSTER_SLOTS;
}
