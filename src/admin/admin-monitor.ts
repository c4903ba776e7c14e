/**
 * What the admin page reads and does: snapshots of this server and its hubs (pushed to the page every
 * `snapshotIntervalMs` while a page is open), per-method invocation statistics, connection and group lookups through
 * presence, and the actions (close, send, remove from a group), each logged.
 *
 * It sees the runtime through the same surfaces as the metrics exporter: each hub's `HubStats` counters, an
 * observer of ended invocations (chained after any other observer, such as the metrics exporter's), presence, and
 * the backplane's status. Nothing here runs per message unless a trace is open (see `admin-trace.ts`).
 */
import type { FastifyBaseLogger } from 'fastify';
import { jsonHubProtocol } from '../../protocol/json-hub-protocol';
import { messagePackHubProtocol } from '../../protocol/messagepack-hub-protocol';
import { MessageType, type CloseMessage } from '../../protocol/messages';
import { encodeRedisInvocation } from '../../protocol/redis';
import { HubException } from '../shared/errors';
import type { HubEndpoint } from '../hub/hub-endpoint';
import { logEvent } from '../shared/log-events';
import type { HubObserver, InvocationOutcome } from '../hub/hub-stats';
import type { BackplaneBus } from '../lifetime/backplane-bus';
import type { BackplaneStatus } from '../redis/redis-backplane';
import { RedisLifetimeManager } from '../redis/redis-lifetime-manager';
import type { PresenceConnection, PresenceServer } from '../lifetime/presence';
import { RedisPresenceReader } from '../redis/redis-presence';

/** Durations kept per method for its percentiles: the latest ones, so p50/p99 follow what happens now. */
const DURATION_SAMPLES = 1024;
/** Group names remembered from presence events (other servers' groups), at most. */
const KNOWN_GROUPS_LIMIT = 10_000;
/** Rows a listing answers with, at most. */
const LISTING_LIMIT = 200;
/** How often a server with presence writes its summary for the other servers' pages, and how long it lasts. */
export const SUMMARY_INTERVAL_MS = 2000;
const SUMMARY_TTL_MS = 3 * SUMMARY_INTERVAL_MS;

/** What a server tells the fleet's admin pages about itself, per hub (docs/protocol.md §3.9, `{p}admin:{server}`). */
export interface ServerSummary {
  readonly at: number;
  readonly connections: number;
  readonly byTransport: readonly { transport: string; protocol: string; count: number }[];
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly backplane: {
    readonly state: string;
    readonly outages: number;
    readonly queuedMessages: number;
    readonly droppedMessages: number;
  } | null;
}

/** This server's name for a hub: its backplane name with Redis, `local` without. */
function serverNameOf(endpoint: HubEndpoint): string {
  return (endpoint.lifetime as Partial<{ serverName: string }>).serverName ?? 'local';
}

/** Invocations of one method. */
class MethodStats {
  count = 0;
  errors = 0;
  private readonly durations = new Float64Array(DURATION_SAMPLES);
  private next = 0;
  private filled = 0;

  record(outcome: InvocationOutcome, seconds: number): void {
    this.count++;
    if (outcome !== 'success') this.errors++;
    this.durations[this.next] = seconds * 1000;
    this.next = (this.next + 1) % DURATION_SAMPLES;
    if (this.filled < DURATION_SAMPLES) this.filled++;
  }

  /** p50 and p99 in ms of the latest invocations. */
  percentiles(): { p50: number; p99: number } {
    if (this.filled === 0) return { p50: 0, p99: 0 };
    const sorted = this.durations.slice(0, this.filled).sort();
    const at = (q: number) => sorted[Math.min(this.filled - 1, Math.ceil(q * this.filled) - 1)]!;
    return { p50: at(0.5), p99: at(0.99) };
  }
}

/** One hub in a snapshot. */
export interface HubSnapshot {
  readonly path: string;
  /** Connections of this hub on this server. */
  readonly connections: number;
  readonly byTransport: readonly { transport: string; protocol: string; count: number }[];
  readonly messagesInPerSecond: number;
  readonly messagesOutPerSecond: number;
  readonly messagesIn: number;
  readonly messagesOut: number;
  readonly methods: readonly { name: string; count: number; errors: number; p50: number; p99: number }[];
  /** `fleet` with presence on Redis, else `local`. */
  readonly scope: string;
  /**
   * The hub's live servers (every server of ours on the Redis with presence; this one otherwise), each with its
   * summary when it has the admin page registered.
   */
  readonly servers: readonly (PresenceServer & { readonly self: boolean; readonly summary?: ServerSummary })[];
  /** This server's name for the hub. */
  readonly serverName: string;
}

/** What the page is sent every interval. */
export interface AdminSnapshot {
  readonly at: number;
  readonly process: {
    readonly pid: number;
    readonly uptimeSeconds: number;
    readonly rssBytes: number;
    readonly heapUsedBytes: number;
    readonly heapTotalBytes: number;
    readonly node: string;
  };
  readonly backplane: BackplaneStatus | null;
  readonly hubs: readonly HubSnapshot[];
}

/** A connection in a listing. */
export interface ConnectionRow extends PresenceConnection {
  /** Whether it is on this server (then it can be closed without the backplane). */
  readonly local: boolean;
}

/** One connection's details. */
export interface ConnectionDetails extends ConnectionRow {
  readonly groups: readonly string[];
  /** Bytes queued for it and not yet taken by its transport (this server's connections only). */
  readonly queuedBytes?: number;
  readonly remoteAddress?: string;
  readonly userAgent?: string;
}

/** An action's answer, shown by the page and written to the log. */
export interface ActionResult {
  readonly ok: boolean;
  readonly message: string;
}

/** The invocation counts of every hub, and the snapshot, lookups and actions of the page. */
export class AdminMonitor {
  private readonly methods = new Map<HubEndpoint, Map<string, MethodStats>>();
  private readonly last = new Map<HubEndpoint, { at: number; received: number; sent: number }>();
  private readonly knownGroups = new Map<HubEndpoint, Set<string>>();
  private readonly presenceListeners: (() => void)[] = [];
  private summaryTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly endpoints: readonly HubEndpoint[],
    private readonly backplane: () => BackplaneStatus | undefined,
    private readonly bus: BackplaneBus | undefined,
    private readonly log: FastifyBaseLogger,
    /** Called when a connection comes or goes, so the page hears of it before the next interval. */
    private readonly onChange: () => void = () => {},
  ) {}

  /** Chains the method counters after each hub's observer of now (the metrics exporter's, if registered). */
  installObservers(): void {
    for (const endpoint of this.endpoints) {
      const table = new Map<string, MethodStats>();
      this.methods.set(endpoint, table);
      const previous = endpoint.stats.observer;
      const observer: HubObserver = {
        connectionEnded: (transport, status, seconds) => previous?.connectionEnded(transport, status, seconds),
        invocationEnded: (method, outcome, seconds) => {
          let stats = table.get(method);
          if (stats === undefined) table.set(method, (stats = new MethodStats()));
          stats.record(outcome, seconds);
          previous?.invocationEnded(method, outcome, seconds);
        },
      };
      endpoint.stats.observer = observer;
    }
  }

  /** The keyed storage and presence namespace of a hub whose presence is the fleet's, else undefined. */
  private fleetStore(endpoint: HubEndpoint): { store: NonNullable<BackplaneBus['store']>; base: string } | undefined {
    const store = this.bus?.store;
    if (store === undefined || !(endpoint.presence instanceof RedisPresenceReader)) return undefined;
    return { store, base: endpoint.presence.keys.base };
  }

  private summaryOf(endpoint: HubEndpoint): ServerSummary {
    const memory = process.memoryUsage();
    const backplane = this.backplane();
    return {
      at: Date.now(),
      connections: endpoint.connectionCount,
      byTransport: endpoint.countConnections(),
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
      backplane:
        backplane === undefined
          ? null
          : {
              state: backplane.state,
              outages: backplane.outages,
              queuedMessages: backplane.queuedMessages,
              droppedMessages: backplane.droppedMessages,
            },
    };
  }

  /**
   * With presence, writes this server's summary of each hub every {@link SUMMARY_INTERVAL_MS} (one SET with an
   * expiry per hub), so a page open on any server shows every server's transports, memory and backplane.
   */
  startSummaries(): void {
    if (this.summaryTimer !== null || !this.endpoints.some((endpoint) => this.fleetStore(endpoint) !== undefined))
      return;
    const write = () => {
      for (const endpoint of this.endpoints) {
        const fleet = this.fleetStore(endpoint);
        if (fleet === undefined) continue;
        const key = `${fleet.base}admin:${serverNameOf(endpoint)}`;
        // Redis unreachable: the summary expires and the pages show the server without it.
        fleet.store
          .pipeline([['SET', key, JSON.stringify(this.summaryOf(endpoint)), 'PX', SUMMARY_TTL_MS]])
          .catch(() => undefined);
      }
    };
    this.summaryTimer = setInterval(write, SUMMARY_INTERVAL_MS);
    this.summaryTimer.unref();
    write();
  }

  stopSummaries(): void {
    if (this.summaryTimer !== null) clearInterval(this.summaryTimer);
    this.summaryTimer = null;
  }

  /** The summaries the other servers wrote, by server name, in one round trip. */
  private async summaries(endpoint: HubEndpoint, names: readonly string[]): Promise<Map<string, ServerSummary>> {
    const found = new Map<string, ServerSummary>();
    const fleet = this.fleetStore(endpoint);
    if (fleet === undefined || names.length === 0) return found;
    try {
      const replies = await fleet.store.pipeline(names.map((name) => ['GET', `${fleet.base}admin:${name}`] as const));
      replies.forEach((reply, index) => {
        if (reply === null || reply === undefined) return;
        try {
          found.set(names[index]!, JSON.parse(String(reply)) as ServerSummary);
        } catch {
          // Not ours to read: shown without a summary.
        }
      });
    } catch {
      // Redis unreachable: the servers are shown without their summaries.
    }
    return found;
  }

  /**
   * While a page is open, connections coming and going are told to the page at once, and group names joined on any
   * server are remembered (presence events), so groups without a member here can be listed too. The events cost
   * Redis only while some server listens.
   */
  watchPresence(): void {
    if (this.presenceListeners.length > 0) return;
    for (const endpoint of this.endpoints) {
      this.presenceListeners.push(
        endpoint.presence.on('connected', () => this.onChange()),
        endpoint.presence.on('disconnected', () => this.onChange()),
      );
      if (endpoint.presence.scope !== 'fleet') continue;
      const names = this.groupNames(endpoint);
      this.presenceListeners.push(
        endpoint.presence.on('joined', (event) => {
          if (event.group !== undefined && names.size < KNOWN_GROUPS_LIMIT) names.add(event.group);
        }),
      );
    }
  }

  unwatchPresence(): void {
    for (const remove of this.presenceListeners.splice(0)) remove();
  }

  private groupNames(endpoint: HubEndpoint): Set<string> {
    let names = this.knownGroups.get(endpoint);
    if (names === undefined) this.knownGroups.set(endpoint, (names = new Set()));
    return names;
  }

  endpoint(path: string): HubEndpoint {
    const endpoint = this.endpoints.find((candidate) => candidate.options.path === path);
    // A HubException: the page shows its message.
    if (endpoint === undefined) throw new HubException(`No hub at ${path}.`);
    return endpoint;
  }

  async snapshot(): Promise<AdminSnapshot> {
    const now = Date.now();
    const memory = process.memoryUsage();
    const hubs = await Promise.all(this.endpoints.map((endpoint) => this.hubSnapshot(endpoint, now)));
    return {
      at: now,
      process: {
        pid: process.pid,
        uptimeSeconds: Math.round(process.uptime()),
        rssBytes: memory.rss,
        heapUsedBytes: memory.heapUsed,
        heapTotalBytes: memory.heapTotal,
        node: process.version,
      },
      backplane: this.backplane() ?? null,
      hubs,
    };
  }

  private async hubSnapshot(endpoint: HubEndpoint, now: number): Promise<HubSnapshot> {
    const stats = endpoint.stats;
    const previous = this.last.get(endpoint);
    const seconds = previous === undefined ? 0 : (now - previous.at) / 1000;
    const rate = (value: number, before: number | undefined) =>
      before === undefined || seconds <= 0 ? 0 : Math.round(((value - before) / seconds) * 10) / 10;
    const messagesInPerSecond = rate(stats.messagesReceived, previous?.received);
    const messagesOutPerSecond = rate(stats.messagesSent, previous?.sent);
    this.last.set(endpoint, { at: now, received: stats.messagesReceived, sent: stats.messagesSent });
    const serverName = serverNameOf(endpoint);
    let servers: readonly PresenceServer[];
    try {
      servers = await endpoint.presence.servers();
    } catch {
      // Redis unreachable: this server is what is known.
      servers = [{ serverName, connections: endpoint.connectionCount, lastHeartbeat: now }];
    }
    const methods = [...(this.methods.get(endpoint) ?? new Map<string, MethodStats>())].map(([name, method]) => ({
      name,
      count: method.count,
      errors: method.errors,
      ...method.percentiles(),
    }));
    return {
      path: endpoint.options.path,
      connections: endpoint.connectionCount,
      byTransport: endpoint.countConnections(),
      messagesInPerSecond,
      messagesOutPerSecond,
      messagesIn: stats.messagesReceived,
      messagesOut: stats.messagesSent,
      methods,
      scope: endpoint.presence.scope,
      servers: await this.withSummaries(endpoint, servers, serverName),
      serverName,
    };
  }

  private async withSummaries(
    endpoint: HubEndpoint,
    servers: readonly PresenceServer[],
    serverName: string,
  ): Promise<HubSnapshot['servers']> {
    const others = await this.summaries(
      endpoint,
      servers.map((server) => server.serverName).filter((name) => name !== serverName),
    );
    return servers.map((server) => {
      const self = server.serverName === serverName;
      const summary = self ? this.summaryOf(endpoint) : others.get(server.serverName);
      return { ...server, self, ...(summary !== undefined && { summary }) };
    });
  }

  /** This server's connections whose id or user contains `search`, and with presence the fleet's of that id or user. */
  async connections(path: string, search: string): Promise<ConnectionRow[]> {
    const endpoint = this.endpoint(path);
    const rows = new Map<string, ConnectionRow>();
    for (const connection of endpoint.liveConnections()) {
      if (rows.size >= LISTING_LIMIT) break;
      if (
        search !== '' &&
        !connection.connectionId.includes(search) &&
        !(connection.userIdentifier ?? '').includes(search)
      )
        continue;
      rows.set(connection.connectionId, {
        connectionId: connection.connectionId,
        ...(connection.userIdentifier !== undefined && { userId: connection.userIdentifier }),
        serverName: serverNameOf(endpoint),
        transport: connection.transport,
        protocol: connection.protocol,
        connectedAt: connection.startedAt,
        local: true,
      });
    }
    if (search !== '' && endpoint.presence.scope === 'fleet') {
      const found = [
        await endpoint.presence.connection(search).catch(() => undefined),
        ...(await endpoint.presence
          .user(search)
          .connections()
          .catch(() => [])),
      ];
      for (const connection of found) {
        if (connection === undefined || rows.has(connection.connectionId)) continue;
        rows.set(connection.connectionId, { ...connection, local: false });
      }
    }
    return [...rows.values()];
  }

  /** One connection, from presence (any server's with presence on Redis), with this server's own details if it has it. */
  async connection(path: string, connectionId: string): Promise<ConnectionDetails | null> {
    const endpoint = this.endpoint(path);
    const known = await endpoint.presence.connection(connectionId).catch(() => undefined);
    if (known === undefined) return null;
    const groups = await endpoint.presence.groupsOf(connectionId).catch(() => []);
    const local = endpoint.findConnection(connectionId);
    const userAgent = local?.httpRequest.headers['user-agent'];
    return {
      ...known,
      local: local !== undefined,
      groups: [...groups].sort(),
      ...(local !== undefined && { queuedBytes: local.http.pendingOutbound, remoteAddress: local.httpRequest.ip }),
      ...(typeof userAgent === 'string' && { userAgent }),
    };
  }

  /**
   * Groups whose name contains `search`: this server's, and with presence those seen joined anywhere while a page
   * was open (or named exactly), each with its member count across the fleet.
   */
  async groups(path: string, search: string): Promise<{ name: string; count: number; localMembers: number }[]> {
    const endpoint = this.endpoint(path);
    const lifetime = endpoint.lifetime as Partial<{ localGroupsOf(id: string): readonly string[] }>;
    const local = new Map<string, number>();
    for (const connection of endpoint.liveConnections()) {
      for (const group of lifetime.localGroupsOf?.(connection.connectionId) ?? [])
        local.set(group, (local.get(group) ?? 0) + 1);
    }
    const names = new Set<string>([...local.keys(), ...(this.knownGroups.get(endpoint) ?? [])]);
    if (search !== '' && endpoint.presence.scope === 'fleet') names.add(search);
    const matching = [...names]
      .filter((name) => search === '' || name.includes(search))
      .sort()
      .slice(0, LISTING_LIMIT);
    const rows = await Promise.all(
      matching.map(async (name) => ({
        name,
        count: await endpoint.presence
          .group(name)
          .count()
          .catch(() => local.get(name) ?? 0),
        localMembers: local.get(name) ?? 0,
      })),
    );
    return rows.filter((row) => row.count > 0 || row.localMembers > 0);
  }

  /**
   * Closes a connection with a Close message (allowing the client to reconnect or not): this server's directly,
   * another server's by publishing that Close on the connection's backplane channel, which its server writes to it.
   */
  async closeConnection(
    path: string,
    connectionId: string,
    allowReconnect: boolean,
    by: string,
  ): Promise<ActionResult> {
    const endpoint = this.endpoint(path);
    const message: CloseMessage = allowReconnect
      ? { type: MessageType.Close, allowReconnect: true }
      : { type: MessageType.Close };
    const local = endpoint.findConnection(connectionId);
    let result: ActionResult;
    if (local !== undefined) {
      local.close(message);
      result = { ok: true, message: `Closed ${connectionId}${allowReconnect ? ', reconnect allowed' : ''}.` };
    } else if (this.bus !== undefined && endpoint.lifetime instanceof RedisLifetimeManager) {
      const messages = new Map<string, Uint8Array>([
        [jsonHubProtocol.name, jsonHubProtocol.writeMessage(message)],
        [messagePackHubProtocol.name, messagePackHubProtocol.writeMessage(message)],
      ]);
      await this.bus.publish(
        endpoint.lifetime.channels.connection(connectionId),
        encodeRedisInvocation({ excludedConnectionIds: [], messages }),
      );
      result = { ok: true, message: `Close of ${connectionId} published to its server.` };
    } else {
      result = { ok: false, message: `No connection ${connectionId} on this server.` };
    }
    this.audit('close', by, { hub: path, connectionId, allowReconnect }, result);
    return result;
  }

  /** Sends `method(...args)` to a connection, a user or a group, as a hub would. */
  async send(
    path: string,
    kind: string,
    target: string,
    method: string,
    args: readonly unknown[],
    by: string,
  ): Promise<ActionResult> {
    const endpoint = this.endpoint(path);
    let result: ActionResult;
    if (method === '' || target === '') {
      result = { ok: false, message: 'A target and a method name are needed.' };
    } else {
      const proxy =
        kind === 'connection'
          ? endpoint.clients.client(target)
          : kind === 'user'
            ? endpoint.clients.user(target)
            : kind === 'group'
              ? endpoint.clients.group(target)
              : undefined;
      if (proxy === undefined) {
        result = { ok: false, message: `Unknown target kind ${kind}.` };
      } else {
        try {
          await proxy.send(method, ...args);
          result = { ok: true, message: `Sent ${method} to ${kind} ${target}.` };
        } catch (error) {
          result = { ok: false, message: (error as Error).message };
        }
      }
    }
    this.audit('send', by, { hub: path, kind, target, method }, result);
    return result;
  }

  /** Removes a connection from a group (acknowledged by its server, on Redis). */
  async removeFromGroup(path: string, connectionId: string, group: string, by: string): Promise<ActionResult> {
    const endpoint = this.endpoint(path);
    let result: ActionResult;
    try {
      await endpoint.groups.removeFromGroup(connectionId, group);
      result = { ok: true, message: `Removed ${connectionId} from ${group}.` };
    } catch (error) {
      result = { ok: false, message: (error as Error).message };
    }
    this.audit('remove-from-group', by, { hub: path, connectionId, group }, result);
    return result;
  }

  private audit(action: string, by: string, details: Record<string, unknown>, result: ActionResult): void {
    logEvent(
      this.log,
      'info',
      'signalr.admin.action',
      { action, by, ...details, ok: result.ok },
      `admin ${action}: ${result.message}`,
    );
  }
}
