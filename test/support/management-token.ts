/**
 * Tokens for the management API, made here with node:crypto as an Azure SDK or a script makes them (HS256 JWT,
 * `aud` = request URL, `exp`), independently of the server's own code — and the broken ones it must refuse.
 */
import { createHmac } from 'node:crypto';

const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A signed JWT with `header` and `claims`; `key` signs it as HMAC-SHA256. */
export function jwt(
  key: string,
  claims: Record<string, unknown>,
  header: Record<string, unknown> = { alg: 'HS256', typ: 'JWT' },
): string {
  const unsigned = `${part(header)}.${part(claims)}`;
  return `${unsigned}.${createHmac('sha256', key).update(unsigned).digest('base64url')}`;
}

/** A valid token for `url` (its query dropped), expiring in five minutes. */
export function tokenFor(key: string, url: string): string {
  return jwt(key, { aud: url.split('?')[0], exp: Math.floor(Date.now() / 1000) + 300 });
}

/** The `Authorization` header of a valid token for `url`. */
export function bearer(key: string, url: string): Record<string, string> {
  return { authorization: `Bearer ${tokenFor(key, url)}` };
}
