/**
 * `signalRTracing()`: OpenTelemetry spans for hub invocations, shaped as ASP.NET Core's
 * `Microsoft.AspNetCore.SignalR.Server` activities — recorded by the real OpenTelemetry SDK (in-memory exporter)
 * while the official client and a raw WebSocket carrying W3C trace context call the hub.
 */
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
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
  /** Items made under spans of their own, with a pause between them. */
  async *ticks(to: number, delayMs: number) {
    for (let i = 1; i <= to; i++) {
      yield await provider.getTracer('app').startActiveSpan(`make item ${i}`, async (span) => {
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        span.end();
        return i;
      });
    }
  }
  async *broken() {
    yield 1;
    throw new HubException('the feed broke');
  }
  async *endless() {
    try {
      for (let i = 0; ; i++) {
        yield i;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    } finally {
      producerStopped = true;
    }
  }
}
let producerStopped = false;

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
  await expect(connection.invoke('Crash')).rejects.toThrow(
    "An unexpected error occurred invoking 'Crash' on the server.",
  );
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

test("trace context in the Invocation headers continues the caller's trace", async () => {
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

test('the lifecycle hooks are spans too', async () => {
  const { connection } = await pool.connect({}, []);
  await connection.stop();
  await eventually(() => spans('Chat.TracedHub/OnDisconnectedAsync').length === 1, 'the OnDisconnectedAsync span');
  expect(spans('Chat.TracedHub/OnConnectedAsync')).toHaveLength(1);
});

/** Collects a stream's items; resolves when it completes, rejects when it fails. */
const collect = (connection: import('@microsoft/signalr').HubConnection, method: string, ...args: unknown[]) => {
  const items: unknown[] = [];
  return new Promise<unknown[]>((resolve, reject) =>
    connection
      .stream(method, ...args)
      .subscribe({ next: (item) => items.push(item), complete: () => resolve(items), error: reject }),
  );
};

test("a stream's span lasts until its last item, and the items' own spans are its children", async () => {
  const { connection } = await pool.connect({}, []);
  expect(await collect(connection, 'Ticks', 3, 20)).toEqual([1, 2, 3]);
  await eventually(() => spans('Chat.TracedHub/ticks').length === 1, 'the stream span');
  const [stream] = spans('Chat.TracedHub/ticks');
  expect(stream.status.code).toBe(SpanStatusCode.OK);
  const items = [1, 2, 3].map((i) => spans(`make item ${i}`)[0]);
  for (const item of items) expect(item.parentSpanContext?.spanId).toBe(stream.spanContext().spanId);
  // The span lasted while the three items were made, 20 ms each (spans' own clocks are not compared: each is
  // anchored separately, so their end times can disagree by a fraction of a millisecond).
  const durationMs = (span: ReadableSpan) => span.duration[0] * 1e3 + span.duration[1] / 1e6;
  expect(durationMs(stream)).toBeGreaterThanOrEqual(3 * 20 - 3);
  expect(await collect(connection, 'Count', 2)).toEqual([1, 2]);
});

test('a stream that fails part way ends its span with ERROR', async () => {
  const { connection } = await pool.connect({}, []);
  await expect(collect(connection, 'Broken')).rejects.toThrow('the feed broke');
  await eventually(() => spans('Chat.TracedHub/broken').length === 1, 'the stream span');
  const [span] = spans('Chat.TracedHub/broken');
  expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: 'the feed broke' });
  expect(span.attributes['error.type']).toBe('HubException');
});

test('a stream the client cancels ends its span, and its producer stops', async () => {
  const { connection } = await pool.connect({}, []);
  producerStopped = false;
  const received: unknown[] = [];
  const subscription = connection
    .stream('Endless')
    .subscribe({ next: (item) => received.push(item), complete: () => undefined, error: () => undefined });
  await eventually(() => received.length >= 3, 'a few items');
  subscription.dispose();
  await eventually(() => spans('Chat.TracedHub/endless').length === 1, 'the stream span to end');
  await eventually(() => producerStopped, 'the producer to stop');
  expect(spans('Chat.TracedHub/endless')[0].status.code).not.toBe(SpanStatusCode.ERROR);
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
