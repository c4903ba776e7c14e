// Over 600 lines: Azure SignalR Service's route table (v1 and 2024-12-01), each route a few lines over shared checks.
/**
 * The management REST API: Azure SignalR Service's data-plane REST API — its routes, bodies, status codes and
 * authentication — served by this server, so code written for Azure's REST API (or its management SDKs) works
 * unchanged against a self-hosted fleet.
 *
 * Followed, in the Azure/azure-signalr repository: `Azure/azure-signalr/docs/rest-api.md` (the version 1 routes and
 * the JWT rules), `docs/swagger/v1.json` (version 1) and `docs/swagger/v20241201.json` (the `api-version=2024-12-01`
 * surface: `:send`, `:closeConnections`, `:invoke`, `HEAD` checks, and the `ServiceResponse` / `ErrorDetail` /
 * `PayloadMessage` / `ClientInvocationResponse` / `PagedConnectionInfo` models). User groups (`/users/{user}/groups…`,
 * with `ttl`) and listing group members (`GET …/groups/{group}/connections`, paged by `maxpagesize` and
 * `continuationToken`) need presence on the Redis backplane (docs/protocol.md §3.9); without it user groups answer 501
 * and the listing covers this server. Not provided: streams, `:execute`, `:generateToken`. Group changes for a connection of another server that no server acknowledges
 * answer 404 after the backplane's `ackTimeoutMs`.
 *
 * Every send goes through the hub's lifetime manager, so with the Redis backplane it reaches the clients of every
 * server on the Redis, ASP.NET Core servers included. Existence checks (`HEAD`, v1 `GET`) answer for every server
 * that registers presence, and for this server's connections without it. Closing a connection of another server publishes a SignalR Close message to it on the backplane:
 * the server owning it — ours or .NET's — writes it to the client, and the official clients close when they read it.
 *
 * The routes are one table ({@link MANAGEMENT_ROUTES}); the Fastify routes and the OpenAPI document are both made
 * from it.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { jsonHubProtocol } from '../../protocol/json-hub-protocol';
import { messagePackHubProtocol } from '../../protocol/messagepack-hub-protocol';
import { MessageType, type CloseMessage } from '../../protocol/messages';
import { encodeRedisInvocation } from '../../protocol/redis';
import type { HubEndpoint } from '../hub/hub-endpoint';
import type { BackplaneBus } from '../lifetime/backplane-bus';
import { RedisLifetimeManager } from '../redis/redis-lifetime-manager';
import { DEFAULT_PAGE_SIZE, MAXIMUM_PAGE_SIZE } from '../lifetime/presence';
import { parseAccessKey, verifyAccessToken, type ManagementAccessKey } from './access-token';
import { managementOptionDescriptors, type ManagementOptions } from './management-options';

export type { ManagementOptions } from './management-options';

/** A route's version: Azure's `/api/v1/…` routes, or the `api-version=2024-12-01` ones. */
export type ManagementApiVersion = 'v1' | '2024-12-01';

/** What a handler answers: a status and, for errors and results, a JSON body. */
interface Answer {
  readonly status: number;
  readonly body?: unknown;
}

/** What a handler is given. */
interface Call {
  readonly endpoint: HubEndpoint;
  readonly params: Readonly<Record<string, string>>;
  readonly query: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: unknown;
  readonly api: ManagementApi;
  /** The request's path, as sent (for `nextLink`). */
  readonly path: string;
}

/** One route of the API. `path` is relative to the mount path, in OpenAPI form (`{hub}`). */
export interface ManagementRoute {
  readonly method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';
  readonly path: string;
  readonly version: ManagementApiVersion;
  readonly summary: string;
  /** The status codes it answers with, and what each means (the OpenAPI responses). */
  readonly responses: Readonly<Record<number, string>>;
  /** Query parameters it reads besides `api-version`. */
  readonly query?: readonly ('excluded' | 'reason' | 'ttl' | 'maxpagesize' | 'continuationToken')[];
  /** Whether it takes a `PayloadMessage` body `{ target, arguments }`. */
  readonly payload?: boolean;
  /** False for the health checks, which load balancers call without a token. @default true */
  readonly authenticated?: boolean;
  /** @internal */
  readonly handle: (call: Call) => Promise<Answer> | Answer;
}

// -------------------------------------------------------------------------------------------------------------
// Answers, shaped as Azure's `ServiceResponse` model (Azure's `docs/swagger/v20241201.json`): `code`, `level`, `scope`,
// `errorKind` (`Unknown`, `NotExisted`, `NotInGroup`, `Invalid`), `message`, `isSuccess`.

type Scope = 'Request' | 'Connection' | 'User' | 'Group';

function failure(
  status: number,
  scope: Scope,
  errorKind: 'Unknown' | 'NotExisted' | 'NotInGroup' | 'Invalid',
  message: string,
): Answer {
  const code = status === 404 ? 'Error.NotFound' : status === 400 ? 'Error.InvalidRequest' : `Error.${status}`;
  return { status, body: { code, level: 'Error', scope, errorKind, message, isSuccess: false } };
}

const invalid = (scope: Scope, message: string) => failure(400, scope, 'Invalid', message);
const ACCEPTED: Answer = { status: 202 };
const OK: Answer = { status: 200 };
const NO_CONTENT: Answer = { status: 204 };
const NOT_FOUND: Answer = { status: 404 };

/** Azure's rule for hub names: a letter, then letters, digits or underscores (a registered name is accepted as is). */
const AZURE_HUB_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
/** Azure's rule for group names: 1 to 1024 characters. */
const MAXIMUM_GROUP_NAME_LENGTH = 1024;

class BadRequest extends Error {
  constructor(readonly answer: Answer) {
    super(String((answer.body as { message?: string } | undefined)?.message ?? 'Bad request'));
  }
}

function groupName(call: Call): string {
  const name = call.params.group;
  if (name.length === 0 || name.length > MAXIMUM_GROUP_NAME_LENGTH) {
    throw new BadRequest(invalid('Group', `Group name must be 1 to ${MAXIMUM_GROUP_NAME_LENGTH} characters long.`));
  }
  return name;
}

function queryList(call: Call, name: string): string[] {
  const value = call.query[name];
  const list = value === undefined ? [] : Array.isArray(value) ? value : [value];
  if (list.some((item) => item.trim() === ''))
    throw new BadRequest(invalid('Request', `Query parameter '${name}' has an empty value.`));
  return list;
}

function reason(call: Call): string | undefined {
  const value = call.query.reason;
  const text = Array.isArray(value) ? value[0] : value;
  return text === undefined || text === '' ? undefined : text;
}

/** The `PayloadMessage` body: `{ "target": "…", "arguments": [ … ] }` (target required, arguments optional). */
function payload(call: Call): { target: string; args: unknown[] } {
  const body = call.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BadRequest(invalid('Request', 'The body must be a JSON object { "target": "…", "arguments": [ … ] }.'));
  }
  const { target, arguments: args } = body as { target?: unknown; arguments?: unknown };
  if (typeof target !== 'string' || target.trim() === '')
    throw new BadRequest(invalid('Request', "The body's 'target' must be a non-empty string."));
  if (args !== undefined && args !== null && !Array.isArray(args))
    throw new BadRequest(invalid('Request', "The body's 'arguments' must be an array."));
  return { target, args: (args as unknown[] | undefined | null) ?? [] };
}

function closeMessage(text: string | undefined): CloseMessage {
  return text === undefined ? { type: MessageType.Close } : { type: MessageType.Close, error: text };
}

// -------------------------------------------------------------------------------------------------------------
// Operations

/** Which connections a close reaches. */
type CloseTarget =
  { kind: 'all' } | { kind: 'connection'; id: string } | { kind: 'group'; name: string } | { kind: 'user'; id: string };

/** What the routes need of the server around them. */
class ManagementApi {
  constructor(
    private readonly bus: BackplaneBus | undefined,
    readonly invokeTimeoutMs: number,
  ) {}

  hasConnection(endpoint: HubEndpoint, id: string): boolean {
    return endpoint.findConnection(id) !== undefined;
  }

  hasUser(endpoint: HubEndpoint, user: string): boolean {
    for (const connection of endpoint.liveConnections()) if (connection.userIdentifier === user) return true;
    return false;
  }

  hasGroup(endpoint: HubEndpoint, group: string): boolean {
    const lifetime = endpoint.lifetime as Partial<{ hasLocalMembers(name: string): boolean }>;
    return lifetime.hasLocalMembers?.(group) ?? false;
  }

  /** Existence checks: on every server with presence on the Redis backplane, on this server otherwise. */
  async connectionExists(endpoint: HubEndpoint, id: string): Promise<boolean> {
    if (this.hasConnection(endpoint, id)) return true;
    return endpoint.presence.scope === 'fleet' && (await endpoint.presence.connection(id)) !== undefined;
  }

  async userExists(endpoint: HubEndpoint, user: string): Promise<boolean> {
    if (this.hasUser(endpoint, user)) return true;
    return endpoint.presence.scope === 'fleet' && (await endpoint.presence.user(user).connections()).length > 0;
  }

  async groupExists(endpoint: HubEndpoint, group: string): Promise<boolean> {
    if (this.hasGroup(endpoint, group)) return true;
    return (
      endpoint.presence.scope === 'fleet' &&
      (await endpoint.presence.group(group).connections({ limit: 1 })).connections.length > 0
    );
  }

  /**
   * One page of a group's members, Azure's `PagedConnectionInfo`: `{ value: [{ connectionId, userId }], nextLink }`,
   * `nextLink` the same request with the `continuationToken` of the next page (null on the last).
   */
  async listGroup(call: Call): Promise<Answer> {
    const group = groupName(call);
    const size = queryInteger(call, 'maxpagesize', 1, MAXIMUM_PAGE_SIZE) ?? DEFAULT_PAGE_SIZE;
    const token = queryText(call, 'continuationToken');
    const page = await call.endpoint.presence
      .group(group)
      .connections({ limit: size, ...(token !== undefined && { cursor: token }) });
    const next =
      page.cursor === undefined
        ? null
        : `${call.path}?${new URLSearchParams({ 'api-version': '2024-12-01', maxpagesize: String(size), continuationToken: page.cursor }).toString()}`;
    return {
      status: 200,
      body: {
        value: page.connections.map(({ connectionId, userId }) => ({ connectionId, userId: userId ?? null })),
        nextLink: next,
      },
    };
  }

  /** Azure's user groups: `PUT …/users/{user}/groups/{group}?ttl=` (seconds), with presence on the Redis backplane. */
  async addUserToGroup(call: Call): Promise<Answer> {
    const group = groupName(call);
    const ttl = queryInteger(call, 'ttl', 0, Number.MAX_SAFE_INTEGER);
    if (call.endpoint.presence.scope !== 'fleet') return USER_GROUPS_NEED_PRESENCE;
    await call.endpoint.groups.addUserToGroup(call.params.user, group, ttl === undefined ? {} : { ttlSeconds: ttl });
    return OK;
  }

  async removeUserFromGroup(call: Call): Promise<Answer> {
    const group = groupName(call);
    if (call.endpoint.presence.scope !== 'fleet') return USER_GROUPS_NEED_PRESENCE;
    await call.endpoint.groups.removeUserFromGroup(call.params.user, group);
    return OK;
  }

  async removeUserFromAllGroups(call: Call): Promise<Answer> {
    const lifetime = call.endpoint.lifetime;
    if (call.endpoint.presence.scope !== 'fleet' || !(lifetime instanceof RedisLifetimeManager))
      return USER_GROUPS_NEED_PRESENCE;
    await lifetime.removeUserFromAllGroups(call.params.user);
    return OK;
  }

  /** Whether a user has a connection in the group (on any server, with presence). */
  async userInGroup(call: Call): Promise<Answer> {
    const group = groupName(call);
    const presence = call.endpoint.presence;
    const connections = await presence.user(call.params.user).connections();
    for (const connection of connections) {
      if ((await presence.groupsOf(connection.connectionId)).includes(group)) return OK;
    }
    return NOT_FOUND;
  }

  async addToGroup(endpoint: HubEndpoint, id: string, group: string): Promise<Answer> {
    // Without a backplane no other server can own it; with one, the owner acks (or nobody does).
    if (!(endpoint.lifetime instanceof RedisLifetimeManager) && !this.hasConnection(endpoint, id)) {
      return failure(404, 'Connection', 'NotExisted', `Connection '${id}' does not exist.`);
    }
    try {
      await endpoint.groups.addToGroup(id, group);
      return OK;
    } catch {
      return failure(404, 'Connection', 'NotExisted', `No server acknowledged connection '${id}': it does not exist.`);
    }
  }

  async removeFromGroup(endpoint: HubEndpoint, id: string, group: string): Promise<Answer> {
    if (!(endpoint.lifetime instanceof RedisLifetimeManager) && !this.hasConnection(endpoint, id)) {
      return failure(404, 'Connection', 'NotExisted', `Connection '${id}' does not exist.`);
    }
    try {
      await endpoint.groups.removeFromGroup(id, group);
      return OK;
    } catch {
      return failure(404, 'Connection', 'NotExisted', `No server acknowledged connection '${id}': it does not exist.`);
    }
  }

  /** Removes a connection of this server from every group it is in (other servers' memberships are not known here). */
  async removeFromAllGroups(endpoint: HubEndpoint, id: string): Promise<Answer> {
    if (!this.hasConnection(endpoint, id)) {
      return failure(404, 'Connection', 'NotExisted', `Connection '${id}' is not connected to this server.`);
    }
    const lifetime = endpoint.lifetime as Partial<{ localGroupsOf(id: string): readonly string[] }>;
    await Promise.all((lifetime.localGroupsOf?.(id) ?? []).map((group) => endpoint.groups.removeFromGroup(id, group)));
    return OK;
  }

  /**
   * Closes connections: this server's directly (a Close message with the reason as its error), and — with the Redis
   * backplane — every other server's by publishing that Close message on the target's channel, framed in each
   * protocol as a server frames an invocation; the owning server writes it to the client, which closes.
   */
  async close(
    endpoint: HubEndpoint,
    target: CloseTarget,
    excluded: readonly string[],
    text: string | undefined,
  ): Promise<void> {
    const message = closeMessage(text);
    let closedLocally = false;
    for (const connection of [...endpoint.liveConnections()]) {
      if (excluded.includes(connection.connectionId)) continue;
      const hit =
        target.kind === 'all' ||
        (target.kind === 'connection' && connection.connectionId === target.id) ||
        (target.kind === 'user' && connection.userIdentifier === target.id) ||
        (target.kind === 'group' && this.inLocalGroup(endpoint, connection.connectionId, target.name));
      if (hit) {
        connection.close(message);
        closedLocally = true;
      }
    }
    const lifetime = endpoint.lifetime;
    if (this.bus === undefined || !(lifetime instanceof RedisLifetimeManager)) return;
    // A connection id is one connection: found here, no other server has it.
    if (target.kind === 'connection' && closedLocally) return;
    const channels = lifetime.channels;
    const channel =
      target.kind === 'all'
        ? channels.all
        : target.kind === 'connection'
          ? channels.connection(target.id)
          : target.kind === 'group'
            ? channels.group(target.name)
            : channels.user(target.id);
    const messages = new Map<string, Uint8Array>([
      [jsonHubProtocol.name, jsonHubProtocol.writeMessage(message)],
      [messagePackHubProtocol.name, messagePackHubProtocol.writeMessage(message)],
    ]);
    await this.bus.publish(channel, encodeRedisInvocation({ excludedConnectionIds: excluded, messages }));
  }

  private inLocalGroup(endpoint: HubEndpoint, id: string, group: string): boolean {
    const lifetime = endpoint.lifetime as Partial<{ localGroupsOf(id: string): readonly string[] }>;
    return lifetime.localGroupsOf?.(id).includes(group) ?? false;
  }

  /** A client result (`:invoke`): `ClientInvocationResponse` `{ result }`. */
  async invoke(endpoint: HubEndpoint, id: string, target: string, args: unknown[]): Promise<Answer> {
    try {
      const result = await endpoint.clients
        .client(id)
        .invoke(target, ...args, AbortSignal.timeout(this.invokeTimeoutMs));
      return { status: 200, body: { result: result ?? null } };
    } catch (error) {
      const { name, message } = error as Error;
      if (name === 'IOException') return failure(404, 'Connection', 'NotExisted', message);
      if (message === 'Invocation canceled by the server.') {
        return failure(504, 'Connection', 'Unknown', `The client did not answer within ${this.invokeTimeoutMs} ms.`);
      }
      return failure(400, 'Connection', 'Unknown', message);
    }
  }
}

const sent = {
  202: 'Accepted',
  400: 'Bad request (ServiceResponse with errorKind)',
  401: 'Unauthorized',
  404: 'No such hub',
};
const existence = {
  200: 'Exists (on any server with presence, else on this server)',
  401: 'Unauthorized',
  404: 'Not found',
};
const userGroupChanged = {
  200: 'OK',
  400: 'Bad request',
  401: 'Unauthorized',
  501: 'Presence is off: user groups need it',
};
const changed = { 200: 'OK', 400: 'Bad request', 401: 'Unauthorized', 404: 'No server owns the connection' };
const closed = { 204: 'No Content', 400: 'Bad request', 401: 'Unauthorized', 404: 'No such hub' };

async function sendTo(call: Call, to: 'all' | 'user' | 'group' | 'connection'): Promise<Answer> {
  const clients = call.endpoint.clients;
  const { target, args } = payload(call);
  switch (to) {
    case 'all': {
      const excluded = queryList(call, 'excluded');
      await (excluded.length > 0 ? clients.allExcept(excluded) : clients.all).send(target, ...args);
      break;
    }
    case 'group': {
      const name = groupName(call);
      const excluded = queryList(call, 'excluded');
      await (excluded.length > 0 ? clients.groupExcept(name, excluded) : clients.group(name)).send(target, ...args);
      break;
    }
    case 'user':
      await clients.user(call.params.user).send(target, ...args);
      break;
    case 'connection':
      await clients.client(call.params.connectionId).send(target, ...args);
      break;
  }
  return ACCEPTED;
}

const exists = async (found: Promise<boolean>): Promise<Answer> => ((await found) ? OK : NOT_FOUND);

/** User-level groups are kept in Redis: a server without presence cannot keep them. */
const USER_GROUPS_NEED_PRESENCE: Answer = failure(
  501,
  'Group',
  'Unknown',
  'User groups need presence on the Redis backplane (the redis option `presence: true`).',
);

/** An integer query parameter within bounds; undefined when absent. */
function queryInteger(call: Call, name: string, min: number, max: number): number | undefined {
  const text = queryText(call, name);
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new BadRequest(invalid('Request', `Query parameter '${name}' must be an integer from ${min} to ${max}.`));
  }
  return value;
}

function queryText(call: Call, name: string): string | undefined {
  const value = call.query[name];
  const text = Array.isArray(value) ? value[0] : value;
  return text === undefined || text === '' ? undefined : text;
}

/**
 * Every route, both versions. Paths are relative to the mount path (`/api`). Version 1: the table of
 * `Azure/azure-signalr/docs/rest-api.md` and its `docs/swagger/v1.json`; 2024-12-01: its `docs/swagger/v20241201.json`.
 */
export const MANAGEMENT_ROUTES: readonly ManagementRoute[] = [
  // -- version 1 ---------------------------------------------------------------------------------------------
  {
    method: 'GET',
    path: '/v1/health',
    version: 'v1',
    summary: 'Get service health status.',
    responses: { 200: 'Healthy' },
    authenticated: false,
    handle: () => OK,
  },
  {
    method: 'POST',
    path: '/v1/hubs/{hub}',
    version: 'v1',
    summary: 'Broadcast a message to all clients connected to target hub.',
    responses: sent,
    query: ['excluded'],
    payload: true,
    handle: (call) => sendTo(call, 'all'),
  },
  {
    method: 'POST',
    path: '/v1/hubs/{hub}/users/{user}',
    version: 'v1',
    summary: 'Broadcast a message to all clients belong to the target user.',
    responses: sent,
    payload: true,
    handle: (call) => sendTo(call, 'user'),
  },
  {
    method: 'POST',
    path: '/v1/hubs/{hub}/groups/{group}',
    version: 'v1',
    summary: 'Broadcast a message to all clients within the target group.',
    responses: sent,
    query: ['excluded'],
    payload: true,
    handle: (call) => sendTo(call, 'group'),
  },
  {
    method: 'POST',
    path: '/v1/hubs/{hub}/connections/{connectionId}',
    version: 'v1',
    summary: 'Send message to the specific connection.',
    responses: sent,
    payload: true,
    handle: (call) => sendTo(call, 'connection'),
  },
  {
    method: 'GET',
    path: '/v1/hubs/{hub}/connections/{connectionId}',
    version: 'v1',
    summary:
      'Check if the connection with the given connectionId exists (on every server with presence, else on this server).',
    responses: existence,
    handle: (call) => exists(call.api.connectionExists(call.endpoint, call.params.connectionId)),
  },
  {
    method: 'DELETE',
    path: '/v1/hubs/{hub}/connections/{connectionId}',
    version: 'v1',
    summary: 'Close the client connection.',
    responses: { 200: 'OK', 401: 'Unauthorized', 404: 'No such hub' },
    query: ['reason'],
    handle: async (call) => (
      await call.api.close(call.endpoint, { kind: 'connection', id: call.params.connectionId }, [], reason(call)),
      OK
    ),
  },
  {
    method: 'GET',
    path: '/v1/hubs/{hub}/groups/{group}',
    version: 'v1',
    summary:
      'Check if there are any client connections inside the given group (on every server with presence, else on this server).',
    responses: existence,
    handle: (call) => exists(call.api.groupExists(call.endpoint, groupName(call))),
  },
  {
    method: 'GET',
    path: '/v1/hubs/{hub}/users/{user}',
    version: 'v1',
    summary:
      'Check if there are any client connections connected for the given user (on every server with presence, else on this server).',
    responses: existence,
    handle: (call) => exists(call.api.userExists(call.endpoint, call.params.user)),
  },
  {
    method: 'PUT',
    path: '/v1/hubs/{hub}/groups/{group}/connections/{connectionId}',
    version: 'v1',
    summary: 'Add a connection to the target group.',
    responses: changed,
    handle: (call) => call.api.addToGroup(call.endpoint, call.params.connectionId, groupName(call)),
  },
  {
    method: 'DELETE',
    path: '/v1/hubs/{hub}/groups/{group}/connections/{connectionId}',
    version: 'v1',
    summary: 'Remove a connection from the target group.',
    responses: changed,
    handle: (call) => call.api.removeFromGroup(call.endpoint, call.params.connectionId, groupName(call)),
  },
  {
    method: 'PUT',
    path: '/v1/hubs/{hub}/connections/{connectionId}/groups/{group}',
    version: 'v1',
    summary: 'Add a connection to the target group (alias).',
    responses: changed,
    handle: (call) => call.api.addToGroup(call.endpoint, call.params.connectionId, groupName(call)),
  },
  {
    method: 'PUT',
    path: '/v1/hubs/{hub}/groups/{group}/users/{user}',
    version: 'v1',
    summary: 'Add a user (every connection, now and later, on any server) to the target group.',
    responses: userGroupChanged,
    query: ['ttl'],
    handle: (call) => call.api.addUserToGroup(call),
  },
  {
    method: 'DELETE',
    path: '/v1/hubs/{hub}/groups/{group}/users/{user}',
    version: 'v1',
    summary: 'Remove a user from the target group.',
    responses: userGroupChanged,
    handle: (call) => call.api.removeUserFromGroup(call),
  },
  {
    method: 'DELETE',
    path: '/v1/hubs/{hub}/users/{user}/groups',
    version: 'v1',
    summary: 'Remove a user from all of its user groups.',
    responses: userGroupChanged,
    handle: (call) => call.api.removeUserFromAllGroups(call),
  },
  {
    method: 'GET',
    path: '/v1/hubs/{hub}/groups/{group}/users/{user}',
    version: 'v1',
    summary: 'Check whether a user has a connection in the target group.',
    responses: existence,
    handle: (call) => call.api.userInGroup(call),
  },
  {
    method: 'DELETE',
    path: '/v1/hubs/{hub}/connections/{connectionId}/groups/{group}',
    version: 'v1',
    summary: 'Remove a connection from the target group (alias).',
    responses: changed,
    handle: (call) => call.api.removeFromGroup(call.endpoint, call.params.connectionId, groupName(call)),
  },

  // -- 2024-12-01 ----------------------------------------------------------------------------------------------
  {
    method: 'HEAD',
    path: '/health',
    version: '2024-12-01',
    summary: 'Get service health status.',
    responses: { 200: 'Healthy' },
    authenticated: false,
    handle: () => OK,
  },
  {
    method: 'POST',
    path: '/hubs/{hub}/:send',
    version: '2024-12-01',
    summary: 'Broadcast a message to all clients connected to target hub.',
    responses: sent,
    query: ['excluded'],
    payload: true,
    handle: (call) => sendTo(call, 'all'),
  },
  {
    method: 'POST',
    path: '/hubs/{hub}/users/{user}/:send',
    version: '2024-12-01',
    summary: 'Broadcast a message to all clients belong to the target user.',
    responses: sent,
    payload: true,
    handle: (call) => sendTo(call, 'user'),
  },
  {
    method: 'POST',
    path: '/hubs/{hub}/groups/{group}/:send',
    version: '2024-12-01',
    summary: 'Broadcast a message to all clients within the target group.',
    responses: sent,
    query: ['excluded'],
    payload: true,
    handle: (call) => sendTo(call, 'group'),
  },
  {
    method: 'POST',
    path: '/hubs/{hub}/connections/{connectionId}/:send',
    version: '2024-12-01',
    summary: 'Send message to the specific connection.',
    responses: sent,
    payload: true,
    handle: (call) => sendTo(call, 'connection'),
  },
  {
    method: 'POST',
    path: '/hubs/{hub}/:closeConnections',
    version: '2024-12-01',
    summary: 'Close all of the connections in the hub.',
    responses: closed,
    query: ['excluded', 'reason'],
    handle: async (call) => (
      await call.api.close(call.endpoint, { kind: 'all' }, queryList(call, 'excluded'), reason(call)),
      NO_CONTENT
    ),
  },
  {
    method: 'POST',
    path: '/hubs/{hub}/groups/{group}/:closeConnections',
    version: '2024-12-01',
    summary: 'Close connections in the specific group.',
    responses: closed,
    query: ['excluded', 'reason'],
    handle: async (call) => (
      await call.api.close(
        call.endpoint,
        { kind: 'group', name: groupName(call) },
        queryList(call, 'excluded'),
        reason(call),
      ),
      NO_CONTENT
    ),
  },
  {
    method: 'POST',
    path: '/hubs/{hub}/users/{user}/:closeConnections',
    version: '2024-12-01',
    summary: 'Close connections for the specific user.',
    responses: closed,
    query: ['excluded', 'reason'],
    handle: async (call) => (
      await call.api.close(
        call.endpoint,
        { kind: 'user', id: call.params.user },
        queryList(call, 'excluded'),
        reason(call),
      ),
      NO_CONTENT
    ),
  },
  {
    method: 'PUT',
    path: '/hubs/{hub}/groups/{group}/connections/{connectionId}',
    version: '2024-12-01',
    summary: 'Add a connection to the target group.',
    responses: changed,
    handle: (call) => call.api.addToGroup(call.endpoint, call.params.connectionId, groupName(call)),
  },
  {
    method: 'DELETE',
    path: '/hubs/{hub}/groups/{group}/connections/{connectionId}',
    version: '2024-12-01',
    summary: 'Remove a connection from the target group.',
    responses: changed,
    handle: (call) => call.api.removeFromGroup(call.endpoint, call.params.connectionId, groupName(call)),
  },
  {
    method: 'DELETE',
    path: '/hubs/{hub}/connections/{connectionId}/groups',
    version: '2024-12-01',
    summary: 'Remove a connection (of this server) from all groups.',
    responses: { 200: 'OK', 401: 'Unauthorized', 404: 'Not connected to this server' },
    handle: (call) => call.api.removeFromAllGroups(call.endpoint, call.params.connectionId),
  },
  {
    method: 'DELETE',
    path: '/hubs/{hub}/connections/{connectionId}',
    version: '2024-12-01',
    summary: 'Close the client connection.',
    responses: { 200: 'OK', 401: 'Unauthorized', 404: 'No such hub' },
    query: ['reason'],
    handle: async (call) => (
      await call.api.close(call.endpoint, { kind: 'connection', id: call.params.connectionId }, [], reason(call)),
      OK
    ),
  },
  {
    method: 'HEAD',
    path: '/hubs/{hub}/connections/{connectionId}',
    version: '2024-12-01',
    summary:
      'Check if the connection with the given connectionId exists (on every server with presence, else on this server).',
    responses: existence,
    handle: (call) => exists(call.api.connectionExists(call.endpoint, call.params.connectionId)),
  },
  {
    method: 'HEAD',
    path: '/hubs/{hub}/groups/{group}',
    version: '2024-12-01',
    summary:
      'Check if there are any client connections inside the given group (on every server with presence, else on this server).',
    responses: existence,
    handle: (call) => exists(call.api.groupExists(call.endpoint, groupName(call))),
  },
  {
    method: 'HEAD',
    path: '/hubs/{hub}/users/{user}',
    version: '2024-12-01',
    summary:
      'Check if there are any client connections connected for the given user (on every server with presence, else on this server).',
    responses: existence,
    handle: (call) => exists(call.api.userExists(call.endpoint, call.params.user)),
  },
  {
    method: 'GET',
    path: '/hubs/{hub}/groups/{group}/connections',
    version: '2024-12-01',
    summary: 'List the connections in the target group, paged (every server with presence, else this server).',
    responses: {
      200: 'PagedConnectionInfo { value: [{ connectionId, userId }], nextLink }',
      400: 'Bad request',
      401: 'Unauthorized',
      404: 'No such hub',
    },
    query: ['maxpagesize', 'continuationToken'],
    handle: (call) => call.api.listGroup(call),
  },
  {
    method: 'PUT',
    path: '/hubs/{hub}/users/{user}/groups/{group}',
    version: '2024-12-01',
    summary:
      'Add a user (every connection, now and later, on any server) to the target group, for ttl seconds or until removed.',
    responses: userGroupChanged,
    query: ['ttl'],
    handle: (call) => call.api.addUserToGroup(call),
  },
  {
    method: 'DELETE',
    path: '/hubs/{hub}/users/{user}/groups/{group}',
    version: '2024-12-01',
    summary: 'Remove a user from the target group.',
    responses: userGroupChanged,
    handle: (call) => call.api.removeUserFromGroup(call),
  },
  {
    method: 'DELETE',
    path: '/hubs/{hub}/users/{user}/groups',
    version: '2024-12-01',
    summary: 'Remove a user from all of its user groups.',
    responses: userGroupChanged,
    handle: (call) => call.api.removeUserFromAllGroups(call),
  },
  {
    method: 'HEAD',
    path: '/hubs/{hub}/users/{user}/groups/{group}',
    version: '2024-12-01',
    summary: 'Check whether a user has a connection in the target group.',
    responses: existence,
    handle: (call) => call.api.userInGroup(call),
  },
  {
    method: 'POST',
    path: '/hubs/{hub}/connections/{connectionId}/:invoke',
    version: '2024-12-01',
    summary: 'Invoke a method on a connection and return its result.',
    responses: {
      200: 'ClientInvocationResponse { result }',
      400: 'Bad request, or the client answered with an error',
      401: 'Unauthorized',
      404: 'No server owns the connection',
      504: 'The client did not answer in time',
    },
    payload: true,
    handle: (call) => {
      const { target, args } = payload(call);
      return call.api.invoke(call.endpoint, call.params.connectionId, target, args);
    },
  },
];

/** A route's path as a pattern over the raw (still percent-encoded) path, with its parameter names in order. */
function compile(
  route: ManagementRoute,
  mountPath: string,
): { route: ManagementRoute; pattern: RegExp; names: string[] } {
  const names: string[] = [];
  const source = `${mountPath}${route.path}`
    .split(/(\{\w+\})/)
    .map((piece) => {
      const name = /^\{(\w+)\}$/.exec(piece)?.[1];
      if (name === undefined) return piece.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      names.push(name);
      return '([^/]+)';
    })
    .join('');
  return { route, pattern: new RegExp(`^${source}/?$`), names };
}

/** The OpenAPI 3.1 document of the API, made from {@link MANAGEMENT_ROUTES}. */
export function managementOpenApiDocument(mountPath: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of MANAGEMENT_ROUTES) {
    const parameters: unknown[] = [...route.path.matchAll(/\{(\w+)\}/g)].map(([, name]) => ({
      name,
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }));
    for (const name of route.query ?? []) {
      parameters.push(
        name === 'excluded'
          ? {
              name,
              in: 'query',
              required: false,
              schema: { type: 'array', items: { type: 'string' } },
              style: 'form',
              explode: true,
            }
          : { name, in: 'query', required: false, schema: { type: 'string' } },
      );
    }
    if (route.version === '2024-12-01' && route.authenticated !== false) {
      parameters.push({
        name: 'api-version',
        in: 'query',
        required: true,
        schema: { type: 'string', enum: ['2024-12-01'] },
      });
    }
    const operation: Record<string, unknown> = {
      summary: route.summary,
      tags: [route.version],
      parameters,
      responses: Object.fromEntries(
        Object.entries(route.responses).map(([code, description]) => [code, { description }]),
      ),
      ...(route.authenticated === false ? { security: [] } : {}),
      ...(route.payload === true && {
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { $ref: '#/components/schemas/PayloadMessage' } } },
        },
      }),
    };
    const key = `${mountPath}${route.path}`;
    (paths[key] ??= {})[route.method.toLowerCase()] = operation;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'fastify-signalr management API (Azure SignalR Service data-plane routes)', version: '2024-12-01' },
    paths,
    security: [{ bearer: [] }],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT (HS256, aud = request URL, exp)' },
      },
      schemas: {
        PayloadMessage: {
          type: 'object',
          required: ['target'],
          properties: { target: { type: 'string' }, arguments: { type: 'array', items: {} } },
        },
        ServiceResponse: {
          type: 'object',
          properties: {
            code: { type: 'string' },
            level: { type: 'string', enum: ['Info', 'Warning', 'Error'] },
            scope: { type: 'string', enum: ['Unknown', 'Request', 'Connection', 'User', 'Group'] },
            errorKind: { type: 'string', enum: ['Unknown', 'NotExisted', 'NotInGroup', 'Invalid'] },
            message: { type: 'string' },
            isSuccess: { type: 'boolean' },
          },
        },
        ClientInvocationResponse: { type: 'object', properties: { result: {} } },
      },
    },
  };
}

/** Where the OpenAPI document is served, under the mount path. */
export const OPENAPI_DOCUMENT_PATH = '/openapi.json';

/**
 * Registers the API on `app` (in its own encapsulated context). `bus` is the Redis backplane's, when there is one:
 * closes of other servers' connections are published on it.
 */
export async function registerManagementApi(
  app: FastifyInstance,
  options: ManagementOptions,
  endpoints: readonly HubEndpoint[],
  bus: BackplaneBus | undefined,
): Promise<void> {
  const key: ManagementAccessKey = parseAccessKey(options.accessKey);
  const mountPath = (options.path ?? managementOptionDescriptors.path.default!).replace(/\/+$/, '');
  const publicEndpoint = (options.publicEndpoint ?? key.endpoint)?.replace(/\/+$/, '');
  const api = new ManagementApi(bus, options.invokeTimeoutMs ?? managementOptionDescriptors.invokeTimeoutMs.default!);
  const document = managementOpenApiDocument(mountPath);

  await app.register(async (scope: FastifyInstance) => {
    scope.setErrorHandler((error: FastifyError, request, reply) => {
      if (error instanceof BadRequest) return reply.code(400).send(error.answer.body);
      const status =
        error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
      if (status >= 500) request.log.error({ err: error }, 'management API request failed');
      const answer = failure(
        status,
        'Request',
        status === 400 || status === 415 ? 'Invalid' : 'Unknown',
        status >= 500 ? 'Internal error.' : error.message,
      );
      return reply.code(status).send(answer.body);
    });

    const audienceOf = (request: FastifyRequest): string => {
      const path = request.url.split('?')[0];
      return `${publicEndpoint ?? `${request.protocol}://${request.host}`}${path}`;
    };

    scope.get(`${mountPath}${OPENAPI_DOCUMENT_PATH}`, async () => document);

    // One wildcard route per method and a table of patterns, rather than a Fastify route each: Fastify refuses path
    // parameters longer than its `maxParamLength` (100 by default) with 414, and Azure's group names go up to 1024.
    const compiled = MANAGEMENT_ROUTES.map((route) => compile(route, mountPath));
    scope.route({
      method: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'],
      url: `${mountPath}/*`,
      exposeHeadRoute: false,
      handler: async (request: FastifyRequest, reply: FastifyReply) => {
        const rawPath = request.url.split('?')[0];
        let matched: { route: ManagementRoute; params: Record<string, string> } | undefined;
        let pathKnown = false;
        for (const { route, pattern, names } of compiled) {
          const match = pattern.exec(rawPath);
          if (match === null) continue;
          pathKnown = true;
          if (route.method !== request.method) continue;
          const params: Record<string, string> = {};
          try {
            names.forEach((name, index) => (params[name] = decodeURIComponent(match[index + 1])));
          } catch {
            return reply.code(400).send(invalid('Request', 'The path is not validly percent-encoded.').body);
          }
          matched = { route, params };
          break;
        }
        if (matched === undefined) {
          const answer = pathKnown
            ? failure(405, 'Request', 'Unknown', `${request.method} is not allowed on this path.`)
            : failure(404, 'Request', 'Unknown', 'No such management API route.');
          return reply.code(answer.status).send(answer.body);
        }
        const { route, params } = matched;
        if (route.authenticated !== false) {
          const refused = verifyAccessToken(request.headers.authorization, key.key, audienceOf(request));
          if (refused !== undefined) {
            request.log.debug({ reason: refused }, 'management API: token refused');
            return reply.code(401).header('www-authenticate', 'Bearer').send();
          }
        }
        const query = request.query as Record<string, string | string[] | undefined>;
        if (route.version === '2024-12-01' && route.authenticated !== false && query['api-version'] !== '2024-12-01') {
          return reply
            .code(400)
            .send(invalid('Request', "Query parameter 'api-version' must be '2024-12-01' on this route.").body);
        }
        let endpoint: HubEndpoint | undefined;
        if (params.hub !== undefined) {
          const wanted = params.hub.toLowerCase();
          endpoint = endpoints.find((candidate) => candidate.options.name.toLowerCase() === wanted);
          if (endpoint === undefined) {
            const answer = AZURE_HUB_NAME.test(params.hub)
              ? failure(404, 'Request', 'NotExisted', `No hub named '${params.hub}' is served here.`)
              : invalid(
                  'Request',
                  'Hub name must start with a letter and contain only letters, digits and underscores.',
                );
            return reply.code(answer.status).send(answer.body);
          }
        }
        const answer = await route.handle({
          endpoint: endpoint as HubEndpoint,
          params,
          query,
          body: request.body,
          api,
          path: rawPath,
        });
        reply.code(answer.status);
        return answer.body === undefined ? reply.send() : reply.send(answer.body);
      },
    });
  });
}
