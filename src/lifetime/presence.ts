/**
 * Presence: who is connected to a hub, in which groups, on which servers — read from application code, a hub, the
 * emitter or the management API, and events when it changes.
 *
 * With the Redis backplane and `presence: true` the answers cover every server of the fleet (`scope: 'fleet'`,
 * `redis-presence.ts`); otherwise they cover this server only (`scope: 'local'`, `local-presence.ts`). ASP.NET Core
 * keeps no such state; this is ours (docs/protocol.md §3.9 for the Redis layout).
 */

/** Which servers an answer covers: this server only, or every server that registers its connections. */
export type PresenceScope = 'local' | 'fleet';

/** One connection as presence knows it. */
export interface PresenceConnection {
  readonly connectionId: string;
  /** The user id, when the connection has one. */
  readonly userId?: string;
  /** The server (its backplane name) the connection is on. */
  readonly serverName: string;
  /** `WebSockets`, `ServerSentEvents` or `LongPolling`, when known. */
  readonly transport?: string;
  /** The hub protocol (`json`, `messagepack`), when known. */
  readonly protocol?: string;
  /** When it connected (ms since the epoch, the owning server's clock). */
  readonly connectedAt: number;
}

/** A connection in a group listing. */
export interface PresenceMember {
  readonly connectionId: string;
  readonly userId?: string;
}

/** Options of a group listing. */
export interface PresencePageOptions {
  /**
   * Members per page, at most. A page may hold fewer while entries of a server that died are being removed.
   * @default 100
   */
  readonly limit?: number;
  /** The `cursor` of the previous page; none for the first page. */
  readonly cursor?: string;
}

/** One page of a group listing, in connection-id order. */
export interface PresencePage {
  readonly connections: readonly PresenceMember[];
  /** Pass it to get the next page; absent on the last page. */
  readonly cursor?: string;
}

/** A live server of the hub. */
export interface PresenceServer {
  readonly serverName: string;
  /** Its connections of this hub. */
  readonly connections: number;
  /** Its last heartbeat (ms since the epoch). */
  readonly lastHeartbeat: number;
}

/** What happened to a connection. */
export type PresenceEventType = 'connected' | 'disconnected' | 'joined' | 'left';

/** A change of presence, on whichever server it happened. */
export interface PresenceEvent {
  readonly type: PresenceEventType;
  readonly connectionId: string;
  readonly userId?: string;
  /** The server of the connection. */
  readonly serverName: string;
  /** The group joined or left (`joined`, `left`). */
  readonly group?: string;
}

/** Receives presence events; called synchronously, must not throw. */
export type PresenceListener = (event: PresenceEvent) => void;

/** The group presence answers about. */
export interface GroupPresence {
  /** One page of the group's members. */
  connections(options?: PresencePageOptions): Promise<PresencePage>;
  /** How many connections are in the group. */
  count(): Promise<number>;
}

/** A user's connections. */
export interface UserPresence {
  connections(): Promise<readonly PresenceConnection[]>;
}

/** Options of a user-level group membership. */
export interface UserGroupOptions {
  /**
   * How long the membership lasts; absent for until it is removed. Azure SignalR Service's `ttl`.
   * @default no expiry
   */
  readonly ttlSeconds?: number;
}

/** Presence of one hub. Every answer says what it covers in {@link HubPresence.scope}. */
export interface HubPresence {
  /** `fleet` with the Redis backplane's presence on; `local` (this server only) otherwise. */
  readonly scope: PresenceScope;
  /** The connection with its information, or undefined when no (live) server has it. */
  connection(connectionId: string): Promise<PresenceConnection | undefined>;
  user(userId: string): UserPresence;
  group(name: string): GroupPresence;
  /** The groups a connection is in. */
  groupsOf(connectionId: string): Promise<readonly string[]>;
  /** The live servers with their connection counts. */
  servers(): Promise<readonly PresenceServer[]>;
  /**
   * Calls `listener` for each event of this kind, on whichever server it happened (`fleet`) or this server
   * (`local`). Returns a function that removes the listener.
   */
  on(event: PresenceEventType, listener: PresenceListener): () => void;
}

/** The default and largest page of a group listing. */
export const DEFAULT_PAGE_SIZE = 100;
export const MAXIMUM_PAGE_SIZE = 1000;

/** Page size of a request, within bounds. */
export function pageSize(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return DEFAULT_PAGE_SIZE;
  return Math.min(MAXIMUM_PAGE_SIZE, Math.max(1, Math.floor(limit)));
}

/** A cursor is the last connection id of a page, Base64url so it travels in URLs unchanged. */
export function encodeCursor(lastConnectionId: string): string {
  return Buffer.from(lastConnectionId, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  return Buffer.from(cursor, 'base64url').toString('utf8');
}

/** Listeners by event type. */
export class PresenceListeners {
  private readonly listeners = new Map<PresenceEventType, Set<PresenceListener>>();

  constructor(private readonly onError: (error: unknown) => void) {}

  get any(): boolean {
    for (const set of this.listeners.values()) if (set.size > 0) return true;
    return false;
  }

  add(type: PresenceEventType, listener: PresenceListener): () => void {
    let set = this.listeners.get(type);
    if (set === undefined) this.listeners.set(type, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  emit(event: PresenceEvent): void {
    const set = this.listeners.get(event.type);
    if (set === undefined) return;
    for (const listener of set) {
      try {
        listener(event);
      } catch (error) {
        this.onError(error);
      }
    }
  }
}
