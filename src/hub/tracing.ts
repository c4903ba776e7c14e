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
 * children. For a streaming method the span covers the call that produces the stream, not the items.
 */
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type TextMapGetter,
  type TracerProvider,
} from '@opentelemetry/api';
import type { HubFilter } from './hub-filters';

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

  const traced = async <T>(
    hubName: string,
    methodName: string,
    headers: Readonly<Record<string, string>> | undefined,
    run: () => Promise<T>,
  ): Promise<T> => {
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
    try {
      const result = await context.with(trace.setSpan(parent, span), run);
      span.setStatus({ code: SpanStatusCode.OK });
      return result;
    } catch (error) {
      const name = error instanceof Error ? error.name : typeof error;
      span.setAttribute('error.type', name);
      span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : undefined });
      throw error;
    } finally {
      span.end();
    }
  };

  return {
    invokeMethod: (invocation, next) =>
      traced(invocation.hubName, invocation.methodName, invocation.headers, () => next(invocation)),
    onConnected: (lifetime, next) => traced(lifetime.hubName, 'OnConnectedAsync', undefined, () => next(lifetime)),
    onDisconnected: (lifetime, error, next) =>
      traced(lifetime.hubName, 'OnDisconnectedAsync', undefined, () => next(lifetime, error)),
  };
}
