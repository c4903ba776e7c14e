/**
 * Authentication of the management API exactly as Azure SignalR Service's data-plane REST API does it
 * (`Azure/azure-signalr/docs/rest-api.md`, "Authentication"): every request carries `Authorization: Bearer <JWT>`
 * signed with HS256 (HMAC-SHA256) by the access key, whose `aud` claim is the request URL without its query or
 * trailing slash, and whose `exp` claim is required. Anything else — no token, another algorithm (`none` included),
 * a bad signature, an expired or not-yet-valid token, another audience — is refused. Pure code over node:crypto.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { SignalRErrorCode } from '../shared/errors';

/** The access key and, from an Azure connection string, the endpoint clients of Azure's API sign their audience with. */
export interface ManagementAccessKey {
  readonly key: string;
  /** `Endpoint=` of an Azure connection string, without a trailing slash. */
  readonly endpoint?: string;
}

/** A bad `management` option. */
export class ManagementOptionsError extends Error {
  override readonly name = 'ManagementOptionsError';
  /** The stable code of this error ({@link errorCodes}). */
  readonly code: SignalRErrorCode = 'SIGNALR_ERR_MANAGEMENT_OPTIONS';
}

/**
 * Reads the access key: either the key itself, or Azure's connection-string form
 * `Endpoint=https://…;AccessKey=…;Version=1.0;` (keys case-insensitive, items separated by `;`).
 */
export function parseAccessKey(value: string): ManagementAccessKey {
  if (typeof value !== 'string' || value.trim() === '')
    throw new ManagementOptionsError('management.accessKey is empty.');
  if (!/(^|;)\s*accesskey\s*=/i.test(value)) return { key: value };
  const items = new Map<string, string>();
  for (const item of value.split(';')) {
    const equals = item.indexOf('=');
    if (equals <= 0) continue;
    items.set(item.slice(0, equals).trim().toLowerCase(), item.slice(equals + 1).trim());
  }
  const key = items.get('accesskey') ?? '';
  if (key === '')
    throw new ManagementOptionsError('The connection string in management.accessKey has an empty AccessKey.');
  const endpoint = items.get('endpoint');
  if (endpoint !== undefined && endpoint !== '') {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new ManagementOptionsError(
        'The connection string in management.accessKey has an Endpoint that is not a URL.',
      );
    }
    const port = items.get('port');
    if (port !== undefined && port !== '') url.port = port;
    return { key, endpoint: url.origin + url.pathname.replace(/\/+$/, '') };
  }
  return { key };
}

/** Why a token was refused (logged at debug level; the client only sees 401). */
export type TokenRefusal =
  'missing' | 'malformed' | 'algorithm' | 'signature' | 'expired' | 'no expiry' | 'not yet valid' | 'audience';

function decodeJson(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The audience as compared: no trailing slash, case-insensitive (host names are; hub names are matched so too). */
export function normalizeAudience(url: string): string {
  return url.replace(/\/+$/, '').toLowerCase();
}

/**
 * Checks an `Authorization` header value. Returns `undefined` when the token is valid for `audience` at `nowSeconds`,
 * else why not.
 */
export function verifyAccessToken(
  authorization: string | undefined,
  key: string,
  audience: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): TokenRefusal | undefined {
  if (authorization === undefined) return 'missing';
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (match === null) return 'missing';
  const parts = match[1].split('.');
  if (parts.length !== 3) return 'malformed';
  const [headerPart, payloadPart, signaturePart] = parts;
  const header = decodeJson(headerPart);
  const payload = decodeJson(payloadPart);
  if (header === undefined || payload === undefined) return 'malformed';
  // Only HS256: `none`, RS256 with the key as a "public key", and every other algorithm are refused.
  if (header.alg !== 'HS256') return 'algorithm';
  const expected = createHmac('sha256', key).update(`${headerPart}.${payloadPart}`).digest();
  const given = Buffer.from(signaturePart, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'signature';
  if (typeof payload.exp !== 'number') return 'no expiry';
  if (payload.exp <= nowSeconds) return 'expired';
  if (payload.nbf !== undefined && (typeof payload.nbf !== 'number' || payload.nbf > nowSeconds))
    return 'not yet valid';
  const audiences = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  const wanted = normalizeAudience(audience);
  if (!audiences.some((value) => typeof value === 'string' && normalizeAudience(value) === wanted)) return 'audience';
  return undefined;
}

/**
 * Signs a token for the management API: HS256 with `key`, `aud` = `audience`, `exp` = now + `lifetimeSeconds`.
 * What an Azure SDK or a one-line script does; exported for tests and tools.
 */
export function signAccessToken(
  key: string,
  audience: string,
  lifetimeSeconds = 300,
  claims: Record<string, unknown> = {},
): string {
  const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
  const payload = Buffer.from(
    JSON.stringify({ ...claims, aud: audience, exp: Math.floor(Date.now() / 1000) + lifetimeSeconds }),
  ).toString('base64url');
  const signature = createHmac('sha256', key).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${signature}`;
}
