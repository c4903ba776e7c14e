import { randomBytes } from 'node:crypto';

/**
 * A new connection id or connection token: 16 cryptographically random bytes, Base64Url without padding, 22
 * characters (docs/protocol.md §1.3; src/SignalR/common/Http.Connections/src/Internal/HttpConnectionManager.cs@v10.0.0
 * L108-L115).
 */
export function newConnectionKey(): string {
  return randomBytes(16).toString('base64url');
}
