/**
 * Protected tokens of the 2.x endpoint — the connection token and the groups token, which 2.x protects with the
 * host's data protection (docs/protocol.md §7.6). Each is encrypted and authenticated with AES-256-GCM under a key
 * derived for its purpose, so a client can neither read the connection id and user inside nor forge or alter one,
 * and a groups token is no connection token.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/** What a token is for; each purpose has its own key. */
export type TokenPurpose = 'ConnectionToken' | 'Groups';

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Encrypts and authenticates short strings for one purpose each. */
export class ProtectedData {
  private readonly keys: Record<TokenPurpose, Buffer>;

  /** @param secret the server's secret; servers behind one load balancer need the same one */
  constructor(secret: string | Buffer) {
    const key = (purpose: TokenPurpose) =>
      Buffer.from(hkdfSync('sha256', secret, 'fastify-signalr aspnet tokens', purpose, 32));
    this.keys = { ConnectionToken: key('ConnectionToken'), Groups: key('Groups') };
  }

  protect(value: string, purpose: TokenPurpose): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keys[purpose], iv);
    const encrypted = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), encrypted]).toString('base64url');
  }

  /** The protected value, or `undefined` when the token is not one of ours for this purpose. */
  unprotect(token: string, purpose: TokenPurpose): string | undefined {
    const bytes = Buffer.from(token, 'base64url');
    if (bytes.length < IV_BYTES + TAG_BYTES) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.keys[purpose], bytes.subarray(0, IV_BYTES));
      decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }
}
