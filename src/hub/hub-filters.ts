/**
 * Hub filters — ASP.NET Core's `IHubFilter`: code that runs around every hub method invocation and around every
 * connection's `onConnected` / `onDisconnected`, for what cuts across methods: logging and timing, argument
 * clean-up, refusing calls, turning errors into messages for the caller.
 *
 * Semantics follow .NET (`HubFilterExtensions`, `DefaultHubDispatcher`): filters run in registration order, the
 * plugin-wide ones first and then the hub's own, each wrapping the next; a filter continues by calling `next`, may
 * pass it a changed context (new arguments), may return a result of its own without calling it, or may throw —
 * which fails the invocation exactly as if the method had thrown (a `HubException` message reaches the caller). A
 * method authorization check (`static authorize`) and argument binding happen before any filter runs. For a
 * streaming method the filters wrap the call that produces the stream, not each item; a filter may return another
 * stream in its place (to observe or transform the items).
 */
import type { Hub, HubCallerContext } from './hub';
import type { HubMethod } from './hub-methods';

/** What a filter sees of one invocation (`HubInvocationContext`). */
export interface HubInvocationContext {
  /** The hub instance that serves this invocation. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a filter serves hubs of any client interface
  readonly hub: Hub<any>;
  /** The calling connection. */
  readonly context: HubCallerContext;
  /** The hub's name (the `name` option: its Redis channel prefix, .NET's full type name when shared with .NET). */
  readonly hubName: string;
  /** The method's name as the hub class declares it (clients may call it in any case). */
  readonly methodName: string;
  /** Whether the method streams its result: `next` then resolves to the stream (an async or sync iterable). */
  readonly streaming: boolean;
  /** The bound arguments; client-to-server streams are `AsyncIterable`s among them. */
  readonly arguments: readonly unknown[];
  /** The headers of the Invocation message, if it had any (the .NET client sends `traceparent` there). */
  readonly headers: Readonly<Record<string, string>> | undefined;
}

/** What a filter sees of a connection starting or ending (`HubLifetimeContext`). */
export interface HubLifetimeContext {
  /** The hub instance that runs `onConnected` or `onDisconnected`. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a filter serves hubs of any client interface
  readonly hub: Hub<any>;
  /** The connection. */
  readonly context: HubCallerContext;
  /** The hub's name (see {@link HubInvocationContext.hubName}). */
  readonly hubName: string;
}

/**
 * A hub filter. Every member is optional; implement the ones you need. Register filters with the `hubFilters`
 * option, plugin-wide or per hub.
 *
 * ```ts
 * const timing: HubFilter = {
 *   async invokeMethod(invocation, next) {
 *     const started = performance.now();
 *     try {
 *       return await next(invocation);
 *     } finally {
 *       log.info({ method: invocation.methodName, ms: performance.now() - started });
 *     }
 *   },
 * };
 * ```
 */
export interface HubFilter {
  /**
   * Runs around a hub method. Return what `next` resolves to (the method's result), or a result of your own.
   * @param next the next filter, or the method itself; pass a context with other `arguments` to change them
   */
  invokeMethod?(
    invocation: HubInvocationContext,
    next: (invocation: HubInvocationContext) => Promise<unknown>,
  ): unknown;
  /** Runs around the hub's `onConnected`; throwing closes the connection with an error, as the hook throwing does. */
  onConnected?(
    lifetime: HubLifetimeContext,
    next: (lifetime: HubLifetimeContext) => Promise<void>,
  ): void | Promise<void>;
  /** Runs around the hub's `onDisconnected`; `error` is why the connection failed, if it did. */
  onDisconnected?(
    lifetime: HubLifetimeContext,
    error: Error | undefined,
    next: (lifetime: HubLifetimeContext, error: Error | undefined) => Promise<void>,
  ): void | Promise<void>;
}

/**
 * The filters of one hub, split by what they wrap. With no filter of a kind, the hub is called directly: a plain
 * method's result stays synchronous (its Completion goes out before the next message is handled, as in .NET) and
 * nothing is allocated per call.
 */
export class HubFilterPipeline {
  private readonly invocation: readonly HubFilter[];
  private readonly connected: readonly HubFilter[];
  private readonly disconnected: readonly HubFilter[];

  constructor(
    filters: readonly HubFilter[],
    private readonly hubName: string,
  ) {
    this.invocation = filters.filter((filter) => typeof filter.invokeMethod === 'function');
    this.connected = filters.filter((filter) => typeof filter.onConnected === 'function');
    this.disconnected = filters.filter((filter) => typeof filter.onDisconnected === 'function');
  }

  /** Calls `method` on `hub` with `args` through the invocation filters; the method's result, or a promise of it. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- hubs of any client interface
  invoke(hub: Hub<any>, method: HubMethod, args: unknown[], headers?: Readonly<Record<string, string>>): unknown {
    const filters = this.invocation;
    if (filters.length === 0) return method.implementation.apply(hub, args);
    const step = async (index: number, invocation: HubInvocationContext): Promise<unknown> =>
      index === filters.length
        ? method.implementation.apply(invocation.hub, invocation.arguments as unknown[])
        : filters[index].invokeMethod!(invocation, (next) => step(index + 1, next));
    return step(0, {
      hub,
      context: hub.context,
      hubName: this.hubName,
      methodName: method.name,
      streaming: method.streaming,
      arguments: args,
      headers,
    });
  }

  /** Runs the hub's `onConnected` through the filters. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- hubs of any client interface
  onConnected(hub: Hub<any>): void | Promise<void> {
    const filters = this.connected;
    if (filters.length === 0) return hub.onConnected();
    const step = async (index: number, lifetime: HubLifetimeContext): Promise<void> =>
      index === filters.length
        ? lifetime.hub.onConnected()
        : filters[index].onConnected!(lifetime, (next) => step(index + 1, next));
    return step(0, { hub, context: hub.context, hubName: this.hubName });
  }

  /** Runs the hub's `onDisconnected` through the filters. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- hubs of any client interface
  onDisconnected(hub: Hub<any>, error: Error | undefined): void | Promise<void> {
    const filters = this.disconnected;
    if (filters.length === 0) return hub.onDisconnected(error);
    const step = async (index: number, lifetime: HubLifetimeContext, reason: Error | undefined): Promise<void> =>
      index === filters.length
        ? lifetime.hub.onDisconnected(reason)
        : filters[index].onDisconnected!(lifetime, reason, (next, nextReason) => step(index + 1, next, nextReason));
    return step(0, { hub, context: hub.context, hubName: this.hubName }, error);
  }
}
