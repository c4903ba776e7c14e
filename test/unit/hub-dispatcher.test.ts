/**
 * The hub's dispatcher on its own, `dispatch(connection, message)` against a recording connection: binding
 * failures answered before any method runs, the invocation slot, and the one settle path — a plain method's
 * Completion queued before its slot is given back, a stream call outside the slots.
 */
import type { Logger } from '../../src/shared/log-events';
import {
  MessageType,
  type CloseMessage,
  type InvocationMessage,
  type StreamItemMessage,
} from '../../protocol/messages';
import type { BoundInvocation, DispatchedConnection } from '../../src/hub/dispatched-connection';
import { Hub, clientStream, type HubCallerClients } from '../../src/hub/hub';
import { HubMessageDispatcher } from '../../src/hub/hub-dispatcher';
import { HubException } from '../../src/shared/errors';
import { HubStats } from '../../src/hub/hub-stats';
import type { ResultStream } from '../../src/hub/result-stream';
import { StreamTracker } from '../../src/hub/stream-tracker';
import { InMemoryLifetimeManager } from '../../src/lifetime/in-memory-lifetime-manager';

class CalculatorHub extends Hub {
  static override schemas = { sum: [clientStream()] };

  add(a: number, b: number): number {
    return a + b;
  }

  fail(): never {
    throw new Error('internal detail');
  }

  refuse(): never {
    throw new HubException('not today');
  }

  async later(value: string): Promise<string> {
    await Promise.resolve();
    return value;
  }

  async sum(numbers: AsyncIterable<number>): Promise<number> {
    let total = 0;
    for await (const value of numbers) total += value;
    return total;
  }
}

/** A connection that records what the dispatcher asks of it. */
class RecordingConnection implements DispatchedConnection {
  readonly events: string[] = [];
  readonly connectionId = 'c1';
  readonly connectionAborted = new AbortController().signal;
  readonly items = new Map<unknown, unknown>();
  readonly user = undefined;
  readonly userIdentifier = undefined;
  readonly httpRequest = { headers: {}, query: {}, remoteAddress: '127.0.0.1', user: undefined } as never;
  readonly transport = 'WebSockets' as const;
  readonly protocol = 'json';
  readonly closed = false;
  readonly hubClients = {} as HubCallerClients;
  readonly groups = {
    addToGroup: async () => undefined,
    removeFromGroup: async () => undefined,
    addUserToGroup: async () => undefined,
    removeUserFromGroup: async () => undefined,
  };
  readonly outboundBacklog = 0;
  waitingInvocation: BoundInvocation | null = null;
  slots = 1;
  private tracker: StreamTracker | null = null;

  get streams(): StreamTracker {
    return (this.tracker ??= new StreamTracker(
      { maximumStreamsPerConnection: null, streamBufferCapacity: 10, enableDetailedErrors: false },
      () => this.events.push('wake'),
    ));
  }

  get openStreams(): StreamTracker | null {
    return this.tracker;
  }

  abort(): void {}
  guardedClients(): HubCallerClients {
    return this.hubClients;
  }
  takeSlot(): boolean {
    if (this.slots === 0) return false;
    this.slots--;
    this.events.push('take slot');
    return true;
  }
  releaseSlot(): void {
    this.slots++;
    this.events.push('release slot');
  }
  sendCompletionError(invocationId: string, error: string): void {
    this.events.push(`completion ${invocationId} error: ${error}`);
  }
  sendCompletionResult(invocationId: string, _target: string, result: unknown): unknown {
    this.events.push(`completion ${invocationId} result: ${JSON.stringify(result)}`);
    return undefined;
  }
  invocationStarted(): number {
    this.events.push('started');
    return 0;
  }
  invocationSettled(methodName: string, outcome: string): void {
    this.events.push(`settled ${methodName} ${outcome}`);
  }
  clientPinged(): void {
    this.events.push('pinged');
  }
  close(message: CloseMessage): void {
    this.events.push(`close ${JSON.stringify(message)}`);
  }
  closeWithError(): void {
    this.events.push('close with error');
  }
  acknowledge(): void {}
  resetSequence(): void {}
  logFailure(_error: unknown, methodName: string): void {
    this.events.push(`logged ${methodName}`);
  }
  writeStreamItem(message: StreamItemMessage): void {
    this.events.push(`item ${JSON.stringify(message.item)}`);
  }
  streamEnded(_stream: ResultStream, error: string | undefined): void {
    this.events.push(`stream ended ${error ?? ''}`);
  }
}

const log: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };

function setUp() {
  const stats = new HubStats();
  const dispatcher = new HubMessageDispatcher(
    { hub: CalculatorHub, name: 'calculator', hubFilters: [], enableDetailedErrors: false },
    new InMemoryLifetimeManager(),
    stats,
    log,
  );
  return { dispatcher, stats, connection: new RecordingConnection() };
}

function invocation(target: string, args: unknown[], invocationId?: string, streamIds?: string[]): InvocationMessage {
  return {
    type: MessageType.Invocation,
    target,
    arguments: args,
    ...(invocationId !== undefined && { invocationId }),
    ...(streamIds !== undefined && { streamIds }),
  };
}

test('a plain method runs in a slot, any letter case finds it, and its Completion is queued before the slot is given back', () => {
  const { dispatcher, connection } = setUp();
  expect(dispatcher.dispatch(connection, invocation('ADD', [1, 2], '1'))).toBe(true);
  expect(connection.events).toEqual([
    'take slot',
    'started',
    'completion 1 result: 3',
    'release slot',
    'settled add success',
  ]);
});

test('a failing method answers with .NET texts, detail only for a HubException, and still gives its slot back', () => {
  const { dispatcher, connection } = setUp();
  dispatcher.dispatch(connection, invocation('fail', [], '1'));
  dispatcher.dispatch(connection, invocation('refuse', [], '2'));
  expect(connection.events).toEqual([
    'take slot',
    'started',
    'logged fail',
    "completion 1 error: An unexpected error occurred invoking 'fail' on the server.",
    'release slot',
    'settled fail error',
    'take slot',
    'started',
    'logged refuse',
    "completion 2 error: An unexpected error occurred invoking 'refuse' on the server. HubException: not today",
    'release slot',
    'settled refuse hub_exception',
  ]);
});

test('binding failures are answered before a slot is taken and counted as rejected', () => {
  const { dispatcher, connection, stats } = setUp();
  dispatcher.dispatch(connection, invocation('missing', [], '1'));
  dispatcher.dispatch(connection, invocation('add', [1], '2'));
  expect(connection.events).toEqual([
    "completion 1 error: Failed to invoke 'missing' due to an error on the server. HubException: Method does not exist.",
    "completion 2 error: Failed to invoke 'add' due to an error on the server.",
  ]);
  expect(stats.invocationsRejected).toBe(2);
});

test('without a free slot the Invocation waits, bound once, and runs when dispatched again', async () => {
  const { dispatcher, connection } = setUp();
  connection.slots = 0;
  expect(dispatcher.dispatch(connection, invocation('later', ['x'], '1'))).toBe(false);
  expect(connection.waitingInvocation?.method.name).toBe('later');
  expect(connection.events).toEqual([]);
  connection.slots = 1;
  expect(dispatcher.dispatch(connection, invocation('later', ['x'], '1'))).toBe(true);
  expect(connection.waitingInvocation).toBeNull();
  await new Promise((resolve) => setImmediate(resolve));
  expect(connection.events).toEqual([
    'take slot',
    'started',
    'completion 1 result: "x"',
    'release slot',
    'settled later success',
  ]);
});

test('a stream call takes no slot, reads its upload to the end, and forgets the upload once it settled', async () => {
  const { dispatcher, connection } = setUp();
  connection.slots = 0;
  expect(dispatcher.dispatch(connection, invocation('sum', [], '1', ['s']))).toBe(true);
  for (const item of [1, 2, 3]) {
    dispatcher.dispatch(connection, { type: MessageType.StreamItem, invocationId: 's', item });
  }
  dispatcher.dispatch(connection, { type: MessageType.Completion, invocationId: 's' });
  await new Promise((resolve) => setImmediate(resolve));
  expect(connection.events).toEqual(['started', 'completion 1 result: 6', 'settled sum success']);
  // The upload is gone from the tracker: a late item for it is ignored.
  expect(connection.openStreams!.offerItem({ type: MessageType.StreamItem, invocationId: 's', item: 4 })).toBe(true);
});

test('connection-level messages go to the connection', () => {
  const { dispatcher, connection } = setUp();
  dispatcher.dispatch(connection, { type: MessageType.Ping });
  dispatcher.dispatch(connection, { type: MessageType.Close });
  expect(connection.events).toEqual(['pinged', 'close {"type":7}']);
});
