import { randomBytes } from 'node:crypto';

/**
 * A new connection id or connection token: 16 cryptographically random bytes, Base64Url without padding, 22
 * characters (spec `signalr-wire.md` §1.3; ConnManager@v10 L108-L115).
 */
export function newConnectionKey(): string {
  return randomBytes(16).toString('base64url');
}
