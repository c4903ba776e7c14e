/**
 * The admin page's options: a leaf (types, defaults, validation), so the plugin's options can name them without
 * importing the page, its hub and the hub runtime behind them.
 */
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';

/** Decides whether a request may see the admin page and connect to its hub. */
export type AdminAuthorization = (request: FastifyRequest) => boolean | Promise<boolean>;

/**
 * Options of the live admin page (the plugin's `admin` option). Without an `authorize` function there is no page
 * and no admin hub: the page shows every connection and can close any of them.
 */
export interface AdminOptions {
  /**
   * Called for every request to the page and to its hub (negotiate and every transport request). `false` (or a
   * throw) answers 401 when the request carries no authenticated user (`request.user`), 403 when it does.
   */
  readonly authorize: AdminAuthorization;
  /**
   * Where the page is served; its hub is at `{path}/hub`.
   * @default '/signalr-admin'
   */
  readonly path?: string;
  /**
   * The `WWW-Authenticate` header of a 401 answer, for example `Basic realm="signalr-admin"` so a browser asks for
   * a password.
   * @default none
   */
  readonly challenge?: string;
  /**
   * How often the page is sent a new snapshot, in ms.
   * @default 1000
   */
  readonly snapshotIntervalMs?: number;
  /**
   * Hub messages a live trace shows per second at most; the rest are counted as dropped.
   * @default 50
   */
  readonly traceMessagesPerSecond?: number;
  /**
   * Characters of a traced message's arguments kept (as JSON); the size of the whole is shown beside them.
   * @default 256
   */
  readonly traceArgumentCharacters?: number;
}

/** The admin options with every default applied. */
export interface ResolvedAdminOptions {
  readonly authorize: AdminAuthorization;
  readonly path: string;
  readonly hubPath: string;
  readonly challenge: string | undefined;
  readonly snapshotIntervalMs: number;
  readonly traceMessagesPerSecond: number;
  readonly traceArgumentCharacters: number;
}

export const DEFAULT_ADMIN_PATH = '/signalr-admin';

/** The `admin` option's schema, used by the plugin's options validation. */
export const adminOptionsSchema = z.strictObject({
  authorize: z.custom<AdminAuthorization>((value) => typeof value === 'function', 'must be a function'),
  path: z
    .string()
    .regex(/^\/[^?#]*[^/?#]$/, "must start with '/', not end with '/' and hold no query or fragment")
    .optional(),
  challenge: z.string().min(1).optional(),
  snapshotIntervalMs: z.number().int().min(100).max(60_000).optional(),
  traceMessagesPerSecond: z.number().int().positive().max(10_000).optional(),
  traceArgumentCharacters: z.number().int().min(16).max(65_536).optional(),
});

/** Applies the defaults to validated admin options. */
export function resolveAdminOptions(options: AdminOptions): ResolvedAdminOptions {
  const path = options.path ?? DEFAULT_ADMIN_PATH;
  return Object.freeze({
    authorize: options.authorize,
    path,
    hubPath: `${path}/hub`,
    challenge: options.challenge,
    snapshotIntervalMs: options.snapshotIntervalMs ?? 1000,
    traceMessagesPerSecond: options.traceMessagesPerSecond ?? 50,
    traceArgumentCharacters: options.traceArgumentCharacters ?? 256,
  });
}
