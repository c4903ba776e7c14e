/**
 * OpenTelemetry traces of hub method invocations, as ASP.NET Core's `Microsoft.AspNetCore.SignalR.Server`
 * ActivitySource records them (`DefaultHubDispatcher`, .NET 9+), delivered as a hub filter so a server that does not
 * trace pays nothing:
 *
 * - one SERVER span per invocation, named `{hub}/{method}`, and `{hub}/OnConnectedAsync` /
 *   `{hub}/OnDisconnectedAsync` around the lifecycle hooks;
 * - attributes `rpc.system` = `signalr`, `rpc.service` = the hub's name, `rpc.method` = the method's name;
 * - no parent unless the Invocation message carries W3C trace context in its headers (`traceparent`, as the .NET
 *   client sends) — a span is not bundled under the long-lived connection;
 * - status ERROR and `error.type` when the method (or an inner filter) throws, `HubException` included.
 *
 * The span is active while the method runs, so spans the method starts (database calls, HTTP requests) are its
 * children. A streaming method's span lasts until its stream ends, failed or cancelled.
 */
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Span,
  type TextMapGetter,
  type TracerProvider,
} from '@opentelemetry/api';
import { iteratorOf } from '../hub/async-values';
import type { HubFilter, HubInvocationContext } from '../hub/hub-filters';

/** Options of {@link signalRTracing}. */
export interface SignalRTracingOptions {
  /**
   * Where spans go.
   * @default the global tracer provider (the one an OpenTelemetry SDK registers)
   */
  readonly tracerProvider?: TracerProvider;
}

/** Instrumentation scope name of the spans. */
export const TRACER_NAME = 'fastify-signalr';

/** Reads W3C trace context from an Invocation message's headers. */
const headerGetter: TextMapGetter<Readonly<Record<string, string>>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

/**
 * A hub filter that records OpenTelemetry spans for every invocation and lifecycle hook, named and shaped as
 * ASP.NET Core's. Put it first in the plugin-wide `hubFilters` so the span covers the other filters too.
 *
 * ```ts
 * await app.register(fastifySignalR, { hubFilters: [signalRTracing()], hubs: [...] });
 * ```
 */
export function signalRTracing(options: SignalRTracingOptions = {}): HubFilter {
  const tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(TRACER_NAME);

  /** Starts a span of `{hub}/{method}`, a root unless `headers` carry the caller's trace context. */
  const start = (hubName: string, methodName: string, headers: Readonly<Record<string, string>> | undefined) => {
    // Hub method spans have no parent of their own (not the connection's, not whatever context the server is in);
    // trace context sent by the caller continues its trace.
    const parent = headers === undefined ? ROOT_CONTEXT : propagation.extract(ROOT_CONTEXT, headers, headerGetter);
    const span = tracer.startSpan(
      `${hubName}/${methodName}`,
      {
        kind: SpanKind.SERVER,
        attributes: { 'rpc.system': 'signalr', 'rpc.service': hubName, 'rpc.method': methodName },
      },
      parent,
    );
    return { span, active: trace.setSpan(parent, span) };
  };

  const failed = (span: Span, error: unknown): void => {
    span.setAttribute('error.type', error instanceof Error ? error.name : typeof error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : undefined });
  };

  const traced = async <T>(
    hubName: string,
    methodName: string,
    headers: Readonly<Record<string, string>> | undefined,
    run: () => Promise<T>,
  ): Promise<T> => {
    const { span, active } = start(hubName, methodName, headers);
    try {
      const result = await context.with(active, run);
      span.setStatus({ code: SpanStatusCode.OK });
      return result;
    } catch (error) {
      failed(span, error);
      throw error;
    } finally {
      span.end();
    }
  };

  /**
   * A streaming method's span lasts as long as its stream, as .NET's activity does: it ends when the last item
   * went out, the producer failed, or the client cancelled; the producer runs with the span active.
   */
  const tracedStream = async (
    invocation: HubInvocationContext,
    next: (invocation: HubInvocationContext) => Promise<unknown>,
  ) => {
    const { span, active } = start(invocation.hubName, invocation.methodName, invocation.headers);
    let source: unknown;
    try {
      source = await context.with(active, () => next(invocation));
    } catch (error) {
      failed(span, error);
      span.end();
      throw error;
    }
    const iterator = iteratorOf(source);
    if (iterator === undefined) {
      // Not a stream after all (the method's own error to report): nothing more to trace.
      span.end();
      return source;
    }
    return (async function* traceItems() {
      let finished = false;
      try {
        for (;;) {
          const step = await context.with(active, () => iterator.next());
          if (step.done === true) break;
          yield step.value;
        }
        finished = true;
        span.setStatus({ code: SpanStatusCode.OK });
      } catch (error) {
        finished = true;
        failed(span, error);
        throw error;
      } finally {
        // Cancelled by the client (or the connection ended): let the producer clean up.
        if (!finished) await iterator.return?.();
        span.end();
      }
    })();
  };

  return {
    invokeMethod: (invocation, next) =>
      invocation.streaming
        ? tracedStream(invocation, next)
        : traced(invocation.hubName, invocation.methodName, invocation.headers, () => next(invocation)),
    onConnected: (lifetime, next) => traced(lifetime.hubName, 'OnConnectedAsync', undefined, () => next(lifetime)),
    onDisconnected: (lifetime, error, next) =>
      traced(lifetime.hubName, 'OnDisconnectedAsync', undefined, () => next(lifetime, error)),
  };
}
