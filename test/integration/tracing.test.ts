/**
 * `signalRTracing()`: OpenTelemetry spans for hub invocations, shaped as ASP.NET Core's
 * `Microsoft.AspNetCore.SignalR.Server` activities — recorded by the real OpenTelemetry SDK (in-memory exporter)
 * while the official client and a raw WebSocket carrying W3C trace context call the hub.
 */
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import Fastify from 'fastify';
import { fastifySignalR, Hub, HubException, signalRTracing } from '../../src';
import { ClientPool, eventually } from '../support/clients';
import { RawWebSocket } from '../support/raw-websocket';
import { listen, type RunningServer } from '../support/servers';

const RS = '\u001e';
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

class TracedHub extends Hub {
  echo(text: string) {
    return text;
  }
  fail() {
    throw new HubException('refused');
  }
  crash() {
    throw new TypeError('broken');
  }
  /** Work the method does under its own span: a database call, say. */
  async lookUp() {
    return provider.getTracer('app').startActiveSpan('database query', async (span) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      span.end();
      return 'found';
    });
  }
  async *count(to: number) {
    for (let i = 1; i <= to; i++) yield i;
  }
}

let server: RunningServer;
const pool = new ClientPool(() => server.hubUrl);
beforeAll(async () => {
  // What an OpenTelemetry SDK sets up for a Node process: a context manager, and the W3C propagator.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const app = Fastify();
  await app.register(fastifySignalR, {
    hubFilters: [signalRTracing({ tracerProvider: provider })],
    hubs: [{ path: '/traced', hub: TracedHub, name: 'Chat.TracedHub' }],
  });
  server = await listen(app, '/traced');
});
afterAll(async () => {
  await pool.stopAll();
  await server.close();
  context.disable();
  propagation.disable();
});
beforeEach(() => exporter.reset());

const spans = (name: string): ReadableSpan[] => exporter.getFinishedSpans().filter((span) => span.name === name);

test('an invocation is one SERVER span named {hub}/{method} with the rpc attributes, OK, and no parent', async () => {
  const { connection } = await pool.connect({}, []);
  expect(await connection.invoke('Echo', 'hi')).toBe('hi');
  const [span] = spans('Chat.TracedHub/echo');
  expect(span.kind).toBe(SpanKind.SERVER);
  expect(span.attributes).toEqual({ 'rpc.system': 'signalr', 'rpc.service': 'Chat.TracedHub', 'rpc.method': 'echo' });
  expect(span.status.code).toBe(SpanStatusCode.OK);
  expect(span.parentSpanContext).toBeUndefined();
  expect(span.instrumentationScope.name).toBe('fastify-signalr');
});

test('a method that throws marks its span ERROR with error.type, a HubException too', async () => {
  const { connection } = await pool.connect({}, []);
  await expect(connection.invoke('Fail')).rejects.toThrow('refused');
  await expect(connection.invoke('Crash')).rejects.toThrow("An unexpected error occurred invoking 'Crash' on the server.");
  const [failed] = spans('Chat.TracedHub/fail');
  expect(failed.status).toEqual({ code: SpanStatusCode.ERROR, message: 'refused' });
  expect(failed.attributes['error.type']).toBe('HubException');
  const [crashed] = spans('Chat.TracedHub/crash');
  expect(crashed.status.code).toBe(SpanStatusCode.ERROR);
  expect(crashed.attributes['error.type']).toBe('TypeError');
});

test('spans the method starts are children of its span', async () => {
  const { connection } = await pool.connect({}, []);
  expect(await connection.invoke('LookUp')).toBe('found');
  const [method] = spans('Chat.TracedHub/lookUp');
  const [child] = spans('database query');
  expect(child.parentSpanContext?.spanId).toBe(method.spanContext().spanId);
  expect(child.spanContext().traceId).toBe(method.spanContext().traceId);
});

test('trace context in the Invocation headers continues the caller\'s trace', async () => {
  const traceId = '0af7651916cd43dd8448eb211c80319c';
  const callerSpanId = 'b7ad6b7169203331';
  const socket = await RawWebSocket.connect(server.hubUrl);
  try {
    socket.send(
      `{"protocol":"json","version":1}${RS}` +
        `{"type":1,"invocationId":"1","target":"Echo","arguments":["traced"],"headers":{"traceparent":"00-${traceId}-${callerSpanId}-01"}}${RS}`,
    );
    await eventually(() => spans('Chat.TracedHub/echo').length === 1, 'the span of the traced call');
  } finally {
    socket.close();
  }
  const [span] = spans('Chat.TracedHub/echo');
  expect(span.spanContext().traceId).toBe(traceId);
  expect(span.parentSpanContext?.spanId).toBe(callerSpanId);
  expect(span.parentSpanContext?.isRemote).toBe(true);
});

test('the lifecycle hooks and a stream are spans too', async () => {
  const { connection } = await pool.connect({}, []);
  const items: unknown[] = [];
  await new Promise<void>((resolve, reject) =>
    connection.stream('Count', 2).subscribe({ next: (item) => items.push(item), complete: resolve, error: reject }),
  );
  expect(items).toEqual([1, 2]);
  await connection.stop();
  await eventually(() => spans('Chat.TracedHub/OnDisconnectedAsync').length === 1, 'the OnDisconnectedAsync span');
  expect(spans('Chat.TracedHub/OnConnectedAsync')).toHaveLength(1);
  expect(spans('Chat.TracedHub/count')).toHaveLength(1);
});

test('without a tracer provider of its own the filter uses the global one, and records nothing when none is set', async () => {
  expect(trace.getTracerProvider().getTracer('x').startSpan('probe').isRecording()).toBe(false);
  const app = Fastify();
  await app.register(fastifySignalR, { hubFilters: [signalRTracing()], hubs: [{ path: '/quiet', hub: TracedHub }] });
  const quiet = await listen(app, '/quiet');
  const quietPool = new ClientPool(() => quiet.hubUrl);
  try {
    const { connection } = await quietPool.connect({}, []);
    expect(await connection.invoke('Echo', 'untraced')).toBe('untraced');
    expect(exporter.getFinishedSpans().filter((span) => span.attributes['rpc.service'] === 'TracedHub')).toEqual([]);
  } finally {
    await quietPool.stopAll();
    await quiet.close();
  }
});
