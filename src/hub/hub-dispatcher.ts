/**
 * The dispatcher of one hub — ASP.NET Core's `DefaultHubDispatcher`: the hub's method table and filters, hub
 * instances made per invocation, binding (method lookup, argument count and schemas), the checks .NET makes before
 * a method runs (authorization, invocation kind, stream count, ids, stream limits), running the method, and its
 * Completion. One dispatcher serves every connection of its hub; what belongs to a connection (its invocation
 * slots, its streams, its writes) is reached through a `DispatchedConnection`, given to each call.
 */
import type { Logger } from '../shared/log-events';
import {
  MessageType,
  type CompletionMessage,
  type HubMessage,
  type InvocationMessage,
  type StreamInvocationMessage,
} from '../../protocol/messages';
import { HubException, InvocationErrors, namedError, withErrorDetail } from '../shared/errors';
import type { HubLifetimeManager } from '../lifetime/hub-lifetime-manager';
import { isThenable } from './async-values';
import type { DispatchedConnection } from './dispatched-connection';
import { bindHub, checkValue, type Hub, type HubBinding, type HubClass } from './hub';
import { HubFilterPipeline, type HubFilter } from './hub-filters';
import { discoverHubMethods, type HubMethod } from './hub-methods';
import type { HubStats, InvocationOutcome } from './hub-stats';
import { ClientInvoke, InvocationScope } from './invocation-scope';
import { ResultStream } from './result-stream';
import type { UploadStream } from './upload-stream';

/** The hub options the dispatcher applies. */
export interface HubMessageDispatcherOptions {
  readonly hub: HubClass;
  /** The hub's name, as filters see it. */
  readonly name: string;
  readonly hubFilters: readonly HubFilter[];
  readonly enableDetailedErrors: boolean;
}

/** How a failed invocation counts in metrics: a `HubException` is an answer meant for the caller. */
function failureOutcome(error: unknown): InvocationOutcome {
  return error instanceof HubException ? 'hub_exception' : 'error';
}

/** The dispatcher of one hub. */
export class HubMessageDispatcher {
  /** The invokable methods, by lower-cased name. */
  readonly methods: ReadonlyMap<string, HubMethod>;
  /** The hub filters every invocation and lifecycle hook goes through. */
  readonly filters: HubFilterPipeline;
  private readonly detailedErrors: boolean;

  constructor(
    private readonly options: HubMessageDispatcherOptions,
    private readonly lifetime: HubLifetimeManager,
    private readonly stats: HubStats,
    private readonly log: Logger,
  ) {
    this.methods = discoverHubMethods(options.hub);
    this.filters = new HubFilterPipeline(options.hubFilters, options.name);
    this.detailedErrors = options.enableDetailedErrors;
  }

  /** A fresh hub instance bound to a connection's services (and an invocation's signal). */
  createHub(binding: HubBinding): Hub {
    return bindHub(new this.options.hub(), binding, this.lifetime.presence);
  }

  /** Runs the hub's `onConnected`, where client results are refused (DefaultHubDispatcher: `invokeAllowed: false`). */
  onConnected(connection: DispatchedConnection): void | Promise<void> {
    return this.filters.onConnected(this.createHub(new InvocationScope(connection, ClientInvoke.Refused)));
  }

  /** Runs the hub's `onDisconnected`. */
  onDisconnected(connection: DispatchedConnection, error: Error | undefined): void | Promise<void> {
    return this.filters.onDisconnected(this.createHub(new InvocationScope(connection, ClientInvoke.Free)), error);
  }

  /**
   * Handles one message of `connection`; returns false when it has to wait (an Invocation for a slot, a StreamItem
   * for room in its upload), and is then offered again.
   */
  dispatch(connection: DispatchedConnection, message: HubMessage): boolean {
    switch (message.type) {
      case MessageType.Invocation:
        return this.receiveInvocation(connection, message);
      case MessageType.StreamInvocation:
        this.receiveStreamInvocation(connection, message);
        return true;
      case MessageType.StreamItem:
        return connection.openStreams?.offerItem(message) ?? true;
      case MessageType.Completion:
        this.receiveCompletion(connection, message);
        return true;
      case MessageType.CancelInvocation:
        // Cancels a running stream; unknown ids are ignored (docs/protocol.md §2.6).
        connection.openStreams?.cancel(message.invocationId);
        return true;
      case MessageType.Ping:
        // The first client Ping arms the client timeout
        // (src/SignalR/server/Core/src/Internal/DefaultHubDispatcher.cs@v10.0.0 L198-L200).
        connection.clientPinged();
        return true;
      case MessageType.Close:
        // The client is leaving: answer with a plain Close and end
        // (src/SignalR/server/Core/src/Internal/DefaultHubDispatcher.cs@v10.0.0 L231-L234).
        connection.close({ type: MessageType.Close });
        return true;
      case MessageType.Ack:
        connection.acknowledge(message.sequenceId);
        return true;
      case MessageType.Sequence:
        connection.resetSequence(message.sequenceId);
        return true;
      default:
        return true;
    }
  }

  // ------------------------------------------------------------------------------------------------------------
  // Invocations

  /**
   * An Invocation. Binding (method lookup, argument count and schemas) comes first and its failures are answered at
   * once, as .NET binds in the parser. A plain method then needs an invocation slot and waits for one; a method
   * with client-to-server stream parameters runs beside the others
   * (src/SignalR/server/Core/src/Internal/DefaultHubDispatcher.cs@v10.0.0 ProcessInvocation).
   */
  private receiveInvocation(connection: DispatchedConnection, message: InvocationMessage): boolean {
    let bound = connection.waitingInvocation;
    if (bound === null) {
      const method = this.methods.get(message.target.toLowerCase());
      if (method === undefined) {
        this.unknownMethod(connection, message);
        return true;
      }
      const args = this.bindArguments(connection, message, method);
      if (args === null) return true;
      bound = { method, args };
    }
    if (bound.method.streamParameters !== undefined) {
      this.runStreamCall(connection, message, bound.method, bound.args);
      return true;
    }
    if (!connection.takeSlot()) {
      connection.waitingInvocation = bound;
      return false;
    }
    connection.waitingInvocation = null;
    this.runInvocation(connection, message, bound.method, bound.args);
    return true;
  }

  /** Unknown methods fail binding with this HubException, whose detail always shows (docs/protocol.md §2.6). */
  private unknownMethod(connection: DispatchedConnection, message: InvocationMessage | StreamInvocationMessage): void {
    this.reject(
      connection,
      message.invocationId,
      withErrorDetail(
        InvocationErrors.failedToInvoke(message.target),
        new HubException(InvocationErrors.methodDoesNotExist),
        this.detailedErrors,
      ),
    );
  }

  /**
   * Runs a plain method in the slot just taken; the slot is released when it settles, or when it first invokes a
   * client. A method that returns a plain value completes synchronously, as in .NET, so its Completion precedes
   * anything the loop does next.
   */
  private runInvocation(
    connection: DispatchedConnection,
    message: InvocationMessage,
    method: HubMethod,
    args: unknown[],
  ): void {
    // The checks .NET makes inside the slot (src/SignalR/server/Core/src/Internal/DefaultHubDispatcher.cs@v10.0.0
    // Invoke): invocation kind, then stream count.
    if (method.streaming) {
      this.reject(connection, message.invocationId, InvocationErrors.streamingMethodWithInvocation(message.target));
      connection.releaseSlot();
      return;
    }
    if (!this.streamCountMatches(connection, message, method)) {
      connection.releaseSlot();
      return;
    }
    if (method.authorize === undefined) {
      this.execute(connection, message, method, args, undefined);
      return;
    }
    this.authorizeThen(
      connection,
      method,
      message,
      () => this.execute(connection, message, method, args, undefined),
      () => connection.releaseSlot(),
    );
  }

  /**
   * Runs a method with client-to-server stream parameters ("stream call"): outside the invocation limit, with its
   * uploads open until it settles (src/SignalR/server/Core/src/Internal/DefaultHubDispatcher.cs@v10.0.0 Invoke,
   * CleanupInvocation).
   */
  private runStreamCall(
    connection: DispatchedConnection,
    message: InvocationMessage,
    method: HubMethod,
    args: unknown[],
  ): void {
    if (method.streaming) {
      this.reject(connection, message.invocationId, InvocationErrors.streamingMethodWithInvocation(message.target));
      return;
    }
    if (!this.streamCountMatches(connection, message, method)) return;
    if (!this.roomForUploads(connection, message.invocationId, message.streamIds!.length)) return;
    const uploads = connection.streams.openUploads(message.streamIds!, method.streamParameters!);
    const fullArgs = withStreams(method, args, uploads);
    if (method.authorize === undefined) {
      this.execute(connection, message, method, fullArgs, uploads);
      return;
    }
    this.authorizeThen(
      connection,
      method,
      message,
      () => this.execute(connection, message, method, fullArgs, uploads),
      () => connection.streams.endUploads(uploads),
    );
  }

  /**
   * Runs an authorized plain method (in the slot it took) or stream call (with its open `uploads`), and answers
   * with its Completion when it settles.
   */
  private execute(
    connection: DispatchedConnection,
    message: InvocationMessage,
    method: HubMethod,
    args: unknown[],
    uploads: readonly UploadStream[] | undefined,
  ): void {
    const scope = new InvocationScope(
      connection,
      uploads === undefined ? ClientInvoke.ReleasesSlot : ClientInvoke.Free,
    );
    const started = connection.invocationStarted();
    let result: unknown;
    try {
      result = this.filters.invoke(this.createHub(scope), method, args, message.headers);
    } catch (error) {
      this.settle(connection, message, method, scope, uploads, started, true, error);
      return;
    }
    if (isThenable(result)) {
      result.then(
        (value) => this.settle(connection, message, method, scope, uploads, started, false, value),
        (error: unknown) => this.settle(connection, message, method, scope, uploads, started, true, error),
      );
      return;
    }
    this.settle(connection, message, method, scope, uploads, started, false, result);
  }

  /**
   * One path for every way an invocation settles: a stream call's uploads end before its Completion, as .NET
   * cleans up before writing it; a plain method's slot is given back after its Completion is queued, so nothing
   * the freed loop does can overtake it.
   */
  private settle(
    connection: DispatchedConnection,
    message: InvocationMessage,
    method: HubMethod,
    scope: InvocationScope,
    uploads: readonly UploadStream[] | undefined,
    started: number,
    failed: boolean,
    outcome: unknown,
  ): void {
    if (uploads !== undefined) connection.streams.endUploads(uploads);
    if (failed) this.invocationFailed(connection, message, method, outcome);
    else if (message.invocationId !== undefined) this.completeWithResult(connection, message, outcome);
    scope.releaseSlot();
    connection.invocationSettled(method.name, failed ? failureOutcome(outcome) : 'success', started);
  }

  /**
   * A StreamInvocation: binding, then the invocation kind, stream count and id checks of .NET's dispatcher, then
   * the stream runs beside everything else (src/SignalR/server/Core/src/Internal/DefaultHubDispatcher.cs@v10.0.0
   * Invoke, StreamAsync).
   */
  private receiveStreamInvocation(connection: DispatchedConnection, message: StreamInvocationMessage): void {
    const { target, invocationId } = message;
    const method = this.methods.get(target.toLowerCase());
    if (method === undefined) {
      this.unknownMethod(connection, message);
      return;
    }
    const args = this.bindArguments(connection, message, method);
    if (args === null) return;
    if (!method.streaming) {
      this.reject(connection, invocationId, InvocationErrors.nonStreamingMethodWithStreamInvocation(target));
      return;
    }
    if (!this.streamCountMatches(connection, message, method)) return;
    const streams = connection.streams;
    if (streams.hasResult(invocationId)) {
      // The running stream keeps its id (and stays cancellable); only the newcomer is refused.
      this.reject(connection, invocationId, InvocationErrors.invocationIdInUse(invocationId));
      return;
    }
    const limit = streams.resultLimitReached();
    if (limit !== null) {
      this.reject(connection, invocationId, InvocationErrors.tooManyStreams('server-to-client', limit));
      return;
    }
    if (!this.roomForUploads(connection, invocationId, message.streamIds?.length ?? 0)) return;
    const uploads =
      message.streamIds === undefined || message.streamIds.length === 0
        ? undefined
        : streams.openUploads(message.streamIds, method.streamParameters!);
    if (method.authorize === undefined) {
      this.startStream(connection, message, method, args, uploads);
      return;
    }
    this.authorizeThen(
      connection,
      method,
      message,
      () => this.startStream(connection, message, method, args, uploads),
      () => streams.endUploads(uploads),
    );
  }

  /** Starts an authorized server-to-client stream. */
  private startStream(
    connection: DispatchedConnection,
    message: StreamInvocationMessage,
    method: HubMethod,
    args: unknown[],
    uploads: UploadStream[] | undefined,
  ): void {
    const { target, invocationId } = message;
    const streams = connection.streams;
    // Checked again: while an asynchronous authorization ran, another stream may have taken the id.
    if (streams.hasResult(invocationId)) {
      this.reject(connection, invocationId, InvocationErrors.invocationIdInUse(invocationId));
      streams.endUploads(uploads);
      return;
    }
    const stream = new ResultStream(connection, invocationId, target, method.name, this.detailedErrors, uploads);
    streams.addResult(stream);
    const scope = new InvocationScope(connection, ClientInvoke.Free, stream.signal);
    const fullArgs = uploads === undefined ? args : withStreams(method, args, uploads);
    stream.start(() => this.filters.invoke(this.createHub(scope), method, fullArgs, message.headers));
  }

  /**
   * A Completion: first the end of an upload stream, then a client result; anything else is ignored
   * (src/SignalR/server/Core/src/Internal/DefaultHubDispatcher.cs@v10.0.0 L205-L221).
   */
  private receiveCompletion(connection: DispatchedConnection, message: CompletionMessage): void {
    if (connection.openStreams?.completeUpload(message.invocationId, message.error) === true) return;
    try {
      this.lifetime.setConnectionResult(connection.connectionId, message);
    } catch (error) {
      // An answer to a question asked of another connection: .NET lets the InvalidOperationException end the
      // connection that sent it, and the question stays open for the connection it was asked of.
      this.log.warn({ err: error, connectionId: connection.connectionId }, 'completion for another connection');
      connection.closeWithError(error);
    }
  }

  // ------------------------------------------------------------------------------------------------------------
  // Binding and the checks before a method runs

  /**
   * The arguments the method gets, or `null` after answering a binding failure: a wrong count, or an argument its
   * schema rejects (.NET's `InvocationBindingFailureMessage`; detail only with detailed errors).
   */
  private bindArguments(
    connection: DispatchedConnection,
    message: InvocationMessage | StreamInvocationMessage,
    method: HubMethod,
  ): unknown[] | null {
    const args = message.arguments;
    let failure: string | undefined;
    if (args.length !== method.parameterCount) {
      failure = InvocationErrors.argumentCount(args.length, method.parameterCount);
    } else if (method.schemas !== undefined) {
      const bound: unknown[] = new Array(args.length);
      for (let i = 0; i < args.length; i++) {
        const outcome = checkValue(method.schemas[i], args[i]);
        if (!outcome.ok) {
          failure = InvocationErrors.bindingArguments;
          break;
        }
        bound[i] = outcome.value;
      }
      if (failure === undefined) return bound;
    }
    if (failure === undefined) return args;
    this.reject(
      connection,
      message.invocationId,
      withErrorDetail(
        InvocationErrors.failedToInvoke(message.target),
        namedError('InvalidDataException', failure),
        this.detailedErrors,
      ),
    );
    return null;
  }

  /**
   * Runs `run` when the hub's `static authorize` predicate lets the caller call `method`; otherwise answers .NET's
   * `Failed to invoke '<target>' because user is unauthorized`
   * (src/SignalR/server/Core/src/Internal/DefaultHubDispatcher.cs@v10.0.0 L333-L339) and runs `refused`.
   */
  private authorizeThen(
    connection: DispatchedConnection,
    method: HubMethod,
    message: InvocationMessage | StreamInvocationMessage,
    run: () => void,
    refused: () => void,
  ): void {
    const deny = () => {
      this.reject(connection, message.invocationId, InvocationErrors.unauthorized(message.target));
      refused();
    };
    let verdict: boolean | PromiseLike<boolean>;
    try {
      verdict = method.authorize!(connection);
    } catch (error) {
      connection.logFailure(error, method.name, 'hub method authorization failed');
      deny();
      return;
    }
    if (!isThenable(verdict)) {
      if (verdict === true) run();
      else deny();
      return;
    }
    verdict.then(
      (allowed) => {
        if (connection.closed) refused();
        else if (allowed === true) run();
        else deny();
      },
      (error: unknown) => {
        connection.logFailure(error, method.name, 'hub method authorization failed');
        deny();
      },
    );
  }

  /** Answers a stream-count mismatch (a HubException, so its detail always shows) and returns false. */
  private streamCountMatches(
    connection: DispatchedConnection,
    message: InvocationMessage | StreamInvocationMessage,
    method: HubMethod,
  ): boolean {
    const sent = message.streamIds?.length ?? 0;
    const expected = method.streamParameters?.length ?? 0;
    if (sent === expected) return true;
    this.reject(
      connection,
      message.invocationId,
      withErrorDetail(
        InvocationErrors.unexpectedError(message.target),
        new HubException(InvocationErrors.streamCountMismatch(sent, expected)),
        this.detailedErrors,
      ),
    );
    return false;
  }

  /**
   * Whether `count` more client-to-server streams fit within `maximumStreamsPerConnection`; refuses the invocation
   * (a Completion with the error) when they do not.
   */
  private roomForUploads(connection: DispatchedConnection, invocationId: string | undefined, count: number): boolean {
    const limit = connection.streams.uploadLimitExceeded(count);
    if (limit === null) return true;
    this.reject(connection, invocationId, InvocationErrors.tooManyStreams('client-to-server', limit));
    return false;
  }

  // ------------------------------------------------------------------------------------------------------------
  // Answers

  private invocationFailed(
    connection: DispatchedConnection,
    message: InvocationMessage,
    method: HubMethod,
    error: unknown,
  ): void {
    connection.logFailure(error, method.name, 'hub method failed');
    if (message.invocationId === undefined) return;
    connection.sendCompletionError(
      message.invocationId,
      withErrorDetail(InvocationErrors.unexpectedError(message.target), error, this.detailedErrors),
    );
  }

  /** Sends a method's result; a result the protocol cannot serialize is answered as the method failing. */
  private completeWithResult(connection: DispatchedConnection, message: InvocationMessage, result: unknown): void {
    const invocationId = message.invocationId!;
    const failure = connection.sendCompletionResult(invocationId, message.target, result);
    if (failure === undefined) return;
    connection.sendCompletionError(
      invocationId,
      withErrorDetail(InvocationErrors.unexpectedError(message.target), failure, this.detailedErrors),
    );
  }

  /** Answers an invocation refused before its method ran (binding, authorization, invocation kind, ids). */
  private reject(connection: DispatchedConnection, invocationId: string | undefined, error: string): void {
    this.stats.invocationsRejected++;
    // Non-blocking invocations (no id) never get an answer.
    if (invocationId !== undefined) connection.sendCompletionError(invocationId, error);
  }
}

/** The full parameter list: the bound arguments with the upload streams at their declared positions. */
function withStreams(method: HubMethod, args: unknown[], uploads: readonly UploadStream[]): unknown[] {
  const parameters = method.streamParameters!;
  const all: unknown[] = new Array(args.length + uploads.length);
  let argument = 0;
  let stream = 0;
  for (let position = 0; position < all.length; position++) {
    if (stream < parameters.length && parameters[stream].position === position) all[position] = uploads[stream++];
    else all[position] = args[argument++];
  }
  return all;
}
