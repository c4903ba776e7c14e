/**
 * The hub programming model: what an application writes.
 *
 * A hub is a class whose public methods clients call by name (case-insensitively, as in ASP.NET Core). A new
 * instance handles each invocation and each connect/disconnect event, with `this.clients`, `this.groups`,
 * `this.context` and `this.abortSignal` bound to the connection and invocation it serves.
 *
 * Streaming (docs/protocol.md §2.9) in TypeScript terms:
 * - an `async *` (or `*`) generator method streams its results to the client (`connection.stream(...)`); so does a
 *   method listed in {@link Hub.streamingMethods} that returns any (async) iterable, such as a `ReadableStream`;
 * - a parameter declared with {@link clientStream} in {@link Hub.schemas} receives a client-to-server stream
 *   (a `Subject` passed to `connection.invoke`/`send`/`stream`) as an `AsyncIterable`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { TransportName } from '../../protocol/negotiate';
import type { HubPresence, UserGroupOptions } from '../lifetime/presence';

/** Sends to a set of connections. */
export interface ClientProxy {
  /** Invokes `method` on every connection of the set with `args`; resolves once the message is on its way. */
  send(method: string, ...args: unknown[]): Promise<void>;
}

/** Sends to one connection, and can call it for a result. */
export interface SingleClientProxy extends ClientProxy {
  /**
   * Calls `method` on the client and resolves with what its handler returns ("client results", docs/protocol.md §2.7).
   *
   * Rejects with a `HubException` holding the client's error (the official clients answer
   * `Client didn't provide a result.` when they have no handler), with a `HubException` carrying .NET's default
   * message when the answer has neither a result nor an error, with an `IOException`-named error when the
   * connection does not exist or goes away while the answer is awaited, and with a `HubException`
   * `Invocation canceled by the server.` when the signal aborts. When the last argument is an `AbortSignal` it is
   * not sent to the client: pass `AbortSignal.timeout(ms)` for a timeout, or `this.abortSignal` to give up with
   * the invocation. There is no default timeout, as in ASP.NET Core.
   *
   * `T` is not checked: the promise resolves with whatever value the client sent (ASP.NET Core converts it to the
   * declared type and fails the call when it cannot). Validate the answer where its type matters, for example with
   * the schema of the expected value.
   *
   * Inside a hub method, the first `invoke` gives up the method's invocation slot
   * (`maximumParallelInvocationsPerClient`) for the rest of the method, as ASP.NET Core 8+ does: the client's
   * answer arrives in order behind its other messages, and those may need the slot. So asking the caller itself
   * works with the default limit of 1, and later invocations of the caller may finish first. Not available in
   * `onConnected` (rejects with an `InvalidOperationException`-named error, as in .NET).
   */
  invoke<T = unknown>(method: string, ...args: unknown[]): Promise<T>;
}

/**
 * Every way to address clients of a hub (ASP.NET Core's `IHubClients`). `Proxy` and `Single` are the proxies it
 * hands out: {@link ClientProxy} and {@link SingleClientProxy}, or their typed forms for a hub declared with the
 * methods its clients handle (see {@link Hub}).
 */
export interface HubClients<Proxy = ClientProxy, Single = SingleClientProxy> {
  /** Every connection of the hub. */
  readonly all: Proxy;
  /** Every connection except these. */
  allExcept(excludedConnectionIds: readonly string[]): Proxy;
  /** One connection. */
  client(connectionId: string): Single;
  /** These connections. */
  clients(connectionIds: readonly string[]): Proxy;
  /** The members of a group. */
  group(groupName: string): Proxy;
  /** The members of any of these groups. */
  groups(groupNames: readonly string[]): Proxy;
  /** The members of a group except these connections. */
  groupExcept(groupName: string, excludedConnectionIds: readonly string[]): Proxy;
  /** Every connection of a user. */
  user(userId: string): Proxy;
  /** Every connection of these users. */
  users(userIds: readonly string[]): Proxy;
}

/** {@link HubClients} seen from a hub method, plus the caller-relative targets (`IHubCallerClients`). */
export interface HubCallerClients<Proxy = ClientProxy, Single = SingleClientProxy> extends HubClients<Proxy, Single> {
  /** The connection that called. */
  readonly caller: Single;
  /** Every connection except the caller. */
  readonly others: Proxy;
  /** The members of a group except the caller. */
  othersInGroup(groupName: string): Proxy;
}

// ---------------------------------------------------------------------------------------------------------------
// Strongly typed hubs (ASP.NET Core's `Hub<T>`): the hub names an interface of the methods its clients handle, and
// every send and client-result call is checked against it at compile time. Nothing changes on the wire or at run
// time: the interface's method names are the names the clients register (`connection.on('ReceiveMessage', …)`).

/** The client interface of a hub that declares none: any method name, any arguments. */
export interface UntypedClient {
  [method: string]: (...args: never[]) => unknown;
}

/** The names of a client interface's methods. */
export type ClientMethodName<TClient> = {
  [K in keyof TClient]: TClient[K] extends (...args: never[]) => unknown ? K : never;
}[keyof TClient] &
  string;

/** The parameters of a client method. */
export type ClientMethodArguments<TClient, M extends keyof TClient> = TClient[M] extends (...args: infer A) => unknown
  ? A
  : never;

/** What a client method's handler returns, once awaited: the result of a client-result call. */
export type ClientMethodResult<TClient, M extends keyof TClient> = TClient[M] extends (...args: never[]) => infer R
  ? Awaited<R>
  : never;

/** {@link ClientProxy} of a hub with a client interface: only its methods, with their arguments. */
export interface TypedClientProxy<TClient> {
  /** Invokes `method` on every connection of the set with `args`; resolves once the message is on its way. */
  send<M extends ClientMethodName<TClient>>(method: M, ...args: ClientMethodArguments<TClient, M>): Promise<void>;
}

/** {@link SingleClientProxy} of a hub with a client interface; `invoke` resolves with the method's return type. */
export interface TypedSingleClientProxy<TClient> extends TypedClientProxy<TClient> {
  /**
   * Calls `method` on the client for a result, as {@link SingleClientProxy.invoke} (an `AbortSignal` may follow
   * the arguments). The result type is the interface's word, not checked at run time: validate it where it matters.
   */
  invoke<M extends ClientMethodName<TClient>>(
    method: M,
    ...args: ClientMethodArguments<TClient, M> | [...ClientMethodArguments<TClient, M>, AbortSignal]
  ): Promise<ClientMethodResult<TClient, M>>;
}

/**
 * How `TClient` types the proxies: `any` (a `Hub<any>`, the type every hub class fits) accepts every proxy type,
 * {@link UntypedClient} (or any other index signature) keeps the untyped API, a declared interface types them.
 */
type ClientKind<TClient> =
  // Only `any` takes both branches of a conditional type (and so yields `boolean` here).
  boolean extends (TClient extends never ? true : false) ? 'any' : string extends keyof TClient ? 'untyped' : 'typed';

/** The clients of a hub from outside it: typed by the hub's client interface when it has one. */
export type HubClientsFor<TClient> = {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the type every hub's clients fit
  any: HubClients<any, any>;
  untyped: HubClients;
  typed: HubClients<TypedClientProxy<TClient>, TypedSingleClientProxy<TClient>>;
}[ClientKind<TClient>];

/** The clients of a hub as its methods see them: typed by the hub's client interface when it has one. */
export type HubCallerClientsFor<TClient> = {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the type every hub's clients fit
  any: HubCallerClients<any, any>;
  untyped: HubCallerClients;
  typed: HubCallerClients<TypedClientProxy<TClient>, TypedSingleClientProxy<TClient>>;
}[ClientKind<TClient>];

/** Group membership (`IGroupManager`). Works for connections on any server when a backplane is configured. */
export interface GroupManager {
  addToGroup(connectionId: string, groupName: string): Promise<void>;
  removeFromGroup(connectionId: string, groupName: string): Promise<void>;
  /**
   * Puts every current and future connection of a user, on any server, in a group until it is removed or
   * `ttlSeconds` passed (Azure SignalR Service's user groups). Needs presence on the Redis backplane (`presence: true`);
   * rejects otherwise.
   */
  addUserToGroup(userId: string, groupName: string, options?: UserGroupOptions): Promise<void>;
  /** Ends a user-level membership: every connection of the user, on any server, leaves the group. */
  removeUserFromGroup(userId: string, groupName: string): Promise<void>;
}

/**
 * What a connection keeps of the HTTP request that started its transport — `Context.GetHttpContext()` in .NET.
 *
 * A copy of the parts applications read, not the `FastifyRequest` itself: that request holds the Node
 * `IncomingMessage`, its raw header list and parser state, which would otherwise stay alive for as long as the
 * connection — a few kilobytes for each idle connection. ASP.NET Core does the same for the HTTP transports, whose
 * requests end long before the connection does (`HttpConnectionDispatcher.CloneHttpContext`).
 */
export interface HubHttpRequest {
  /** `GET` for WebSockets and Server-Sent Events, `GET` or `POST` for long polling. */
  readonly method: string;
  /** Path and query string as the client sent them. */
  readonly url: string;
  /** The request headers (lower-case names, as Node parses them). */
  readonly headers: IncomingHttpHeaders;
  /** The parsed query string. */
  readonly query: unknown;
  /** The client address, with Fastify's `trustProxy` applied. */
  readonly ip: string;
  /** The authenticated user as the auth layer left it on the request (`request.user`), if any. */
  readonly user: unknown;
}

/** What a hub knows of the connection it serves (`HubCallerContext`). */
export interface HubCallerContext {
  /** The public connection id (never the token). */
  readonly connectionId: string;
  /** The user id resolved when the connection started, if any. */
  readonly userIdentifier: string | undefined;
  /** The authenticated user as the auth layer left it on the request (`request.user`), if any. */
  readonly user: unknown;
  /** Per-connection storage that lives as long as the connection. */
  readonly items: Map<unknown, unknown>;
  /** The transport the connection uses. */
  readonly transport: TransportName;
  /** The hub protocol name the client chose (`json`, `messagepack`). */
  readonly protocol: string;
  /** Aborted when the connection ends. */
  readonly connectionAborted: AbortSignal;
  /** What the connection keeps of the HTTP request that started its transport (headers, query, user). */
  readonly httpRequest: HubHttpRequest;
  /** Closes the connection; the client gets a Close message without error and does not reconnect. */
  abort(): void;
}

/** An argument schema: anything with zod's `safeParse` shape. */
export interface ArgumentSchema {
  safeParse(value: unknown): { success: true; data: unknown } | { success: false; error: unknown };
}

/**
 * Checks a value from the network against an application's schema. A schema that throws (a failing transform, a
 * bug) counts as rejecting the value: bad input must not take the connection's message loop down.
 */
export function checkValue(schema: ArgumentSchema, value: unknown): { ok: true; value: unknown } | { ok: false } {
  try {
    const outcome = schema.safeParse(value);
    return outcome.success ? { ok: true, value: outcome.data } : { ok: false };
  } catch {
    return { ok: false };
  }
}

const kClientStream = Symbol('fastify-signalr.clientStream');

/**
 * Marks a parameter in {@link Hub.schemas} as bound to a client-to-server stream; create it with
 * {@link clientStream}.
 */
export interface ClientStreamParameter {
  readonly [kClientStream]: true;
  /** Checks (and may transform) every item; an item it rejects ends the stream with an error. */
  readonly itemSchema: ArgumentSchema | undefined;
}

/**
 * Declares a parameter that receives a client-to-server stream (docs/protocol.md §2.9): the client passes a `Subject`
 * (or another stream of its client library) in that position, and the method gets an `AsyncIterable` of its items,
 * ending when the client completes the stream, or throwing a `HubException` with the client's error.
 *
 * ```ts
 * class UploadHub extends Hub {
 *   static override schemas = { sum: [clientStream(z.number().int())] };
 *   async sum(numbers: AsyncIterable<number>): Promise<number> {
 *     let total = 0;
 *     for await (const n of numbers) total += n;
 *     return total;
 *   }
 * }
 * ```
 *
 * Such a parameter is not counted among the invocation's `arguments`: a client sends the other arguments plus one
 * stream id per stream parameter, and a different number of streams fails with .NET's `Client sent N stream(s),
 * Hub method expects M.` Items are buffered up to `streamBufferCapacity` per stream; beyond that the connection
 * stops reading from the client until the method consumes items, so a slow consumer never grows memory without
 * bound (and, as in ASP.NET Core, holds up that connection's other messages meanwhile). Streams still open when the
 * method returns are ended by the server; items the method did not read are dropped. Leaving a `for await` early
 * drops the rest of the stream.
 *
 * @param itemSchema checks each item (anything with zod's `safeParse`); an item it rejects ends the stream with
 *   a `HubException` `Failed to bind Stream message.`, as a badly typed item does in .NET
 */
export function clientStream(itemSchema?: ArgumentSchema): ClientStreamParameter {
  return Object.freeze({ [kClientStream]: true as const, itemSchema });
}

/** Whether a {@link Hub.schemas} entry declares a client-to-server stream. */
export function isClientStreamParameter(value: unknown): value is ClientStreamParameter {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kClientStream] === true;
}

/** One entry of a method's {@link Hub.schemas} list: an argument schema, or a {@link clientStream} parameter. */
export type HubParameterSchema = ArgumentSchema | ClientStreamParameter;

/**
 * Per-method parameter schemas, keyed by method name: one entry per parameter, in order. With schemas the
 * parameter list is the schema list, and an argument that fails its schema fails the invocation with .NET's
 * binding error instead of reaching the method. Parsed values (for example coerced dates) are what the method
 * gets. A {@link clientStream} entry makes that parameter a client-to-server stream.
 */
export type HubMethodSchemas<T> = { readonly [K in keyof T]?: readonly HubParameterSchema[] };

/** Decides whether the caller may invoke a hub method. */
export type MethodAuthorization = (context: HubCallerContext) => boolean | Promise<boolean>;

/** The services a hub instance is bound to: its connection's, and its invocation's signal. */
export interface HubBinding {
  readonly clients: HubCallerClients;
  readonly groups: GroupManager;
  readonly context: HubCallerContext;
  readonly abortSignal: AbortSignal;
}

const kBinding = Symbol('fastify-signalr.hubBinding');
const kPresence = Symbol('fastify-signalr.hubPresence');
declare const kClient: unique symbol;

/**
 * Base class of every hub. Subclass it, add methods, and register the class with the plugin:
 *
 * ```ts
 * class ChatHub extends Hub {
 *   async sendMessage(user: string, message: string) {
 *     await this.clients.all.send('ReceiveMessage', user, message);
 *   }
 * }
 * ```
 *
 * Every own or inherited method of the subclass is callable, except the lifecycle methods and names starting
 * with `_`. The return value (or resolved promise) is the invocation's result. Throw a `HubException` to send
 * the caller a message; any other error reaches the caller as a generic text unless detailed errors are enabled.
 *
 * A generator method streams its items to a client that calls it with `connection.stream(...)`; the stream stops
 * when the client disposes its subscription, which aborts {@link Hub.abortSignal}:
 *
 * ```ts
 * class TickerHub extends Hub {
 *   async *counter(count: number, delayMs: number) {
 *     for (let i = 0; i < count; i++) {
 *       yield i;
 *       await setTimeout(delayMs, undefined, { signal: this.abortSignal }); // from 'node:timers/promises'
 *     }
 *   }
 * }
 * ```
 *
 * An error thrown while streaming ends the stream with .NET's `An error occurred on the server while streaming
 * results.` (plus the detail rule). Streaming invocations, and invocations of methods with {@link clientStream}
 * parameters, run beside the others: they do not count against `maximumParallelInvocationsPerClient`.
 *
 * A hub can name the methods its clients handle, as ASP.NET Core's `Hub<T>`; sends and client-result calls are
 * then checked at compile time, here and through `app.signalr.hub(ChatHub)`:
 *
 * ```ts
 * interface ChatClient {
 *   ReceiveMessage(user: string, message: string): void;
 *   Confirm(question: string): boolean; // answered by a client-result handler
 * }
 * class ChatHub extends Hub<ChatClient> {
 *   async sendMessage(user: string, message: string) {
 *     await this.clients.all.send('ReceiveMessage', user, message); // a typo or a wrong argument fails to compile
 *     const sure = await this.clients.caller.invoke('Confirm', 'Really?'); // boolean
 *   }
 * }
 * ```
 *
 * @typeParam TClient - the client methods, by the name clients register them under; {@link UntypedClient} (any
 * method, any arguments) when omitted.
 */
export abstract class Hub<TClient extends object = UntypedClient> {
  /** The client interface, for type inference only: never set, and absent at run time. */
  declare readonly [kClient]?: TClient;

  /** Optional parameter schemas per method, and client-to-server streams; see {@link HubMethodSchemas}. */
  static schemas?: Readonly<Record<string, readonly HubParameterSchema[]>>;

  /**
   * Names of methods that stream their result without being generator functions: they return (or resolve to) an
   * `AsyncIterable` or `Iterable` — a `ReadableStream`, an array, a custom async iterator. Generator methods
   * (`async *name()` and `*name()`) stream without being listed; this needs native generators, which every
   * TypeScript target from ES2018 on emits.
   */
  static streamingMethods?: readonly string[];

  /**
   * Per-method authorization, keyed by method name: a predicate over the caller's context (its `user`,
   * `userIdentifier`, `items`). A call it refuses fails with .NET's `Failed to invoke '<name>' because user is
   * unauthorized` and the method does not run — ASP.NET Core's `[Authorize]` on a hub method. Hub-wide checks
   * belong in the hub registration's `authorize`, which refuses the connection itself.
   */
  static authorize?: Readonly<Record<string, MethodAuthorization>>;

  private [kBinding]!: HubBinding;
  private [kPresence]!: HubPresence;

  /** Clients of the hub, including the caller-relative targets. */
  get clients(): HubCallerClientsFor<TClient> {
    // The runtime proxies accept any method; the type narrows them to the client interface.
    return this[kBinding].clients as HubCallerClientsFor<TClient>;
  }

  /** Group membership. */
  get groups(): GroupManager {
    return this[kBinding].groups;
  }

  /** Who is connected to this hub, on this server or (with the Redis backplane's presence) on every server. */
  get presence(): HubPresence {
    return this[kPresence];
  }

  /** The connection this instance serves. */
  get context(): HubCallerContext {
    return this[kBinding].context;
  }

  /**
   * Aborted when the work of this invocation is no longer wanted: for a streaming method when the client cancels
   * the stream (disposes its subscription) or the connection ends; for other methods when the connection ends.
   * Pass it to timers, fetches and client invocations so they stop promptly (.NET's `CancellationToken` parameter).
   */
  get abortSignal(): AbortSignal {
    return this[kBinding].abortSignal;
  }

  /** Runs when a connection has completed its handshake, before it can invoke anything. */
  onConnected(): void | Promise<void> {}

  /**
   * Runs when a connection ends, before it leaves its groups.
   * @param _error why the connection failed, if it did not close cleanly
   */
  onDisconnected(_error?: Error): void | Promise<void> {}
}

/** A hub class with a constructor that takes no arguments. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any client interface
export type HubClass<T extends Hub<any> = Hub<any>> = new () => T;

/** The client interface a hub class declares ({@link UntypedClient} when none). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any client interface
export type ClientOf<H extends Hub<any>> = H extends Hub<infer TClient> ? TClient : UntypedClient;

/** Binds a fresh hub instance to a connection's services and its hub's presence. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any client interface
export function bindHub<T extends Hub<any>>(hub: T, binding: HubBinding, presence?: HubPresence): T {
  (hub as unknown as Record<symbol, HubBinding>)[kBinding] = binding;
  if (presence !== undefined) (hub as unknown as Record<symbol, HubPresence>)[kPresence] = presence;
  return hub;
}
