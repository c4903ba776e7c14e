import { randomFillSync } from 'node:crypto';

/** Bytes of one connection id or token. */
const KEY_BYTES = 16;

/**
 * Random bytes for the next 256 keys, filled in one call: a `randomBytes(16)` per key cost a native call and a Buffer
 * each, two per negotiate (about 3% of a connect's CPU, bench/README.md). Every byte is used once; the pool is
 * filled again when it runs out, as Node's own `randomUUID` batches its entropy.
 */
const pool = Buffer.alloc(KEY_BYTES * 256);
let poolOffset = pool.length;

/**
 * A new connection id or connection token: 16 cryptographically random bytes, Base64Url without padding, 22
 * characters (docs/protocol.md §1.3; src/SignalR/common/Http.Connections/src/Internal/HttpConnectionManager.cs@v10.0.0
 * L108-L115).
 */
export function newConnectionKey(): string {
  if (poolOffset === pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const start = poolOffset;
  poolOffset += KEY_BYTES;
  return pool.toString('base64url', start, poolOffset);
}
