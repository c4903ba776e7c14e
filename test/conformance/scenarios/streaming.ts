/**
 * Streams over raw frames (docs/protocol.md §2.6, §2.9): server-to-client streams with StreamInvocation, StreamItem and
 * Completion; CancelInvocation; client-to-server streams with `streamIds`; the error texts of the mismatches; streams
 * over Server-Sent Events and long polling.
 *
 * `Counter(count, -1)` yields its first item and then waits until it is cancelled (.NET's `Task.Delay(-1)`), so what
 * follows a cancel does not depend on timing.
 */
import type { Scenario, Step } from '../engine/scenario';
import { CONNECTED, HANDSHAKE, connected, differs, invoke, record } from './frames';

/** A StreamInvocation of `target`. */
function streamInvocation(invocationId: string, target: string, ...args: unknown[]): string {
  return record(
    `{"type":4,"invocationId":${JSON.stringify(invocationId)},"target":${JSON.stringify(target)},"arguments":${JSON.stringify(args)}}`,
  );
}

/** An Invocation of `Sum` bound to the client-to-server streams `streamIds`. */
function sum(invocationId: string | undefined, ...streamIds: string[]): string {
  const id = invocationId === undefined ? '' : `"invocationId":"${invocationId}",`;
  return record(`{"type":1,${id}"target":"Sum","arguments":[],"streamIds":${JSON.stringify(streamIds)}}`);
}

/** A StreamItem of stream `id`. */
function item(id: string, value: unknown): string {
  return record(`{"type":2,"invocationId":"${id}","item":${JSON.stringify(value)}}`);
}

/** The Completion that ends stream `id` (with `error`, when given). */
function end(id: string, error?: string): string {
  return record(
    error === undefined
      ? `{"type":3,"invocationId":"${id}"}`
      : `{"type":3,"invocationId":"${id}","error":${JSON.stringify(error)}}`,
  );
}

/** Cancels stream `id`. */
function cancel(id: string): string {
  return record(`{"type":5,"invocationId":"${id}"}`);
}

/** Negotiates a connection, opens one HTTP transport and completes the handshake by POST. */
function overHttp(transport: 'ServerSentEvents' | 'LongPolling'): Step[] {
  const open: Step[] =
    transport === 'ServerSentEvents' ? [{ sse: '?id={{token}}' }] : [{ http: 'GET', path: '?id={{token}}' }];
  return [{ negotiate: '?negotiateVersion=1' }, ...open, { http: 'POST', path: '?id={{token}}', body: HANDSHAKE }];
}

export const streamingScenarios: Scenario[] = [
  {
    name: 'Counter streams its items and completes without a result',
    steps: [...connected(), { send: streamInvocation('1', 'Counter', 3, 0) }, { receive: 4 }, { listen: 100 }],
  },
  {
    name: 'an empty stream completes at once',
    steps: [...connected(), { send: streamInvocation('1', 'Counter', 0, 0) }, { receive: 1 }],
  },
  {
    name: 'CancelInvocation ends a stream with a plain Completion',
    steps: [
      ...connected(),
      { send: streamInvocation('1', 'Counter', 1000, -1) },
      { receive: 1 },
      { send: cancel('1') },
      { receive: 1 },
      { listen: 200 },
      { send: invoke('2', 'Echo', 'after the cancel') },
      { receive: 1 },
    ],
  },
  {
    name: 'CancelInvocation of an unknown id is ignored',
    steps: [
      ...connected(),
      { send: cancel('nope') },
      { listen: 200 },
      { send: invoke('1', 'Echo', 'still here') },
      { receive: 1 },
    ],
  },
  {
    name: 'CancelInvocation of a finished stream is ignored',
    steps: [
      ...connected(),
      { send: streamInvocation('1', 'Counter', 1, 0) },
      { receive: 2 },
      { send: cancel('1') },
      { listen: 200 },
      { send: invoke('2', 'Echo', 'still here') },
      { receive: 1 },
    ],
  },
  {
    name: 'two streams at once each end on their own',
    steps: [
      ...connected(),
      { send: streamInvocation('a', 'Counter', 1000, -1) },
      { receive: 1 },
      { send: streamInvocation('b', 'Counter', 1000, -1) },
      { receive: 1 },
      { send: cancel('a') },
      { receive: 1 },
      { send: cancel('b') },
      { receive: 1 },
    ],
  },
  {
    name: 'a stream that fails after its first item',
    steps: [...connected(), { send: streamInvocation('1', 'Counter', 3, -2) }, { receive: 2 }],
  },
  {
    name: 'a streaming method with arguments of the wrong types',
    steps: [...connected(), { send: streamInvocation('1', 'Counter', 'three', 0) }, { receive: 1 }],
  },
  {
    name: 'a streaming method with too few arguments',
    steps: [...connected(), { send: streamInvocation('1', 'Counter', 3) }, { receive: 1 }],
  },
  {
    name: 'a StreamInvocation of a method that does not exist',
    steps: [...connected(), { send: streamInvocation('1', 'NoSuchStream') }, { receive: 1 }],
  },
  {
    name: 'a non-streaming method called with a StreamInvocation',
    steps: [...connected(), { send: streamInvocation('1', 'Echo', 1) }, { receive: 1 }],
  },
  {
    name: 'a streaming method called with an Invocation',
    steps: [...connected(), { send: invoke('1', 'Counter', 3, 0) }, { receive: 1 }],
  },
  differs(
    {
      name: 'a duplicate stream invocation id',
      steps: [
        ...connected(),
        { send: streamInvocation('1', 'Counter', 1000, -1) },
        { receive: 1 },
        { send: streamInvocation('1', 'Counter', 1, 0) },
        { receive: 1 },
        { send: cancel('1') },
        { receive: 1, timeoutMs: 1000 },
      ],
    },
    'A stream whose invocation id was reused can still be cancelled',
    [
      ...CONNECTED,
      { receive: 1, messages: ['{"type":2,"invocationId":"1","item":0}'], frames: 'text' },
      {
        receive: 1,
        messages: ['{"type":3,"invocationId":"1","error":"Invocation ID \'1\' is already in use."}'],
        frames: 'text',
      },
      { receive: 1, messages: [], timedOut: true },
    ],
    [
      ...CONNECTED,
      { receive: 1, messages: ['{"type":2,"invocationId":"1","item":0}'], frames: 'text' },
      {
        receive: 1,
        messages: ['{"type":3,"invocationId":"1","error":"Invocation ID \'1\' is already in use."}'],
        frames: 'text',
      },
      { receive: 1, messages: ['{"type":3,"invocationId":"1"}'], frames: 'text' },
    ],
  ),
  differs(
    {
      name: 'a duplicate stream invocation id in the same frame',
      steps: [
        ...connected(),
        { send: streamInvocation('1', 'Counter', 1000, -1) + streamInvocation('1', 'Counter', 1, 0) },
        { receive: 2 },
      ],
    },
    "A stream's first item follows the rest of its frame",
    [
      ...CONNECTED,
      {
        receive: 2,
        messages: [
          '{"type":2,"invocationId":"1","item":0}',
          '{"type":3,"invocationId":"1","error":"Invocation ID \'1\' is already in use."}',
        ],
        frames: 'text',
      },
    ],
    [
      ...CONNECTED,
      {
        receive: 2,
        messages: [
          '{"type":3,"invocationId":"1","error":"Invocation ID \'1\' is already in use."}',
          '{"type":2,"invocationId":"1","item":0}',
        ],
        frames: 'text',
      },
    ],
  ),
  differs(
    {
      name: 'a stream and an invocation in the same frame',
      steps: [
        ...connected(),
        { send: streamInvocation('1', 'Counter', 2, 0) + invoke('2', 'Echo', 'beside the stream') },
        { receive: 4 },
      ],
    },
    "A stream's first item follows the rest of its frame",
    [
      ...CONNECTED,
      {
        receive: 4,
        messages: [
          '{"type":2,"invocationId":"1","item":0}',
          '{"type":2,"invocationId":"1","item":1}',
          '{"type":3,"invocationId":"1"}',
          '{"type":3,"invocationId":"2","result":"beside the stream"}',
        ],
        frames: 'text',
      },
    ],
    [
      ...CONNECTED,
      {
        receive: 4,
        messages: [
          '{"type":3,"invocationId":"2","result":"beside the stream"}',
          '{"type":2,"invocationId":"1","item":0}',
          '{"type":2,"invocationId":"1","item":1}',
          '{"type":3,"invocationId":"1"}',
        ],
        frames: 'text',
      },
    ],
  ),
  {
    name: 'a stream and an invocation in separate frames keep their order',
    steps: [
      ...connected(),
      { send: streamInvocation('1', 'Counter', 2, 0) },
      { receive: 3 },
      { send: invoke('2', 'Echo', 'after the stream') },
      { receive: 1 },
    ],
  },
  {
    name: 'Sum of an empty client-to-server stream is 0',
    steps: [...connected(), { send: sum('1', '2') + end('2') }, { receive: 1 }],
  },
  {
    name: 'items and the end of a client-to-server stream in the frame of the invocation',
    steps: [...connected(), { send: sum('1', '2') + item('2', 40) + item('2', 2) + end('2') }, { receive: 1 }],
  },
  {
    name: 'more items than the stream buffer holds',
    settings: { streamBufferCapacity: 2 },
    steps: [
      ...connected(),
      { send: sum('1', 'up') + Array.from({ length: 50 }, (_, i) => item('up', i + 1)).join('') + end('up') },
      { receive: 1 },
    ],
  },
  {
    name: 'a non-blocking invocation with a client-to-server stream gets no answer',
    steps: [
      ...connected(),
      { send: sum(undefined, '2') + item('2', 1) + end('2') },
      { listen: 300 },
      { send: invoke('1', 'Echo', 'next') },
      { receive: 1 },
    ],
  },
  {
    name: 'items for a stream id nobody opened are ignored',
    steps: [
      ...connected(),
      { send: item('nobody', 1) + end('nobody') },
      { listen: 200 },
      { send: invoke('1', 'Echo', 'still here') },
      { receive: 1 },
    ],
  },
  {
    name: 'two client-to-server streams for a method that takes one',
    steps: [...connected(), { send: sum('1', '2', '3') }, { receive: 1 }],
  },
  {
    name: 'a client-to-server stream id that is also the invocation id',
    steps: [...connected(), { send: sum('1', '1') + item('1', 5) + end('1') }, { receive: 1 }, { listen: 200 }],
  },
  {
    name: 'a streaming method with a client-to-server stream it does not take',
    steps: [
      ...connected(),
      { send: record('{"type":4,"invocationId":"1","target":"Counter","arguments":[1,0],"streamIds":["2"]}') },
      { receive: 1 },
    ],
  },
  {
    name: 'Sum called with a StreamInvocation',
    steps: [
      ...connected(),
      { send: record('{"type":4,"invocationId":"1","target":"Sum","arguments":[],"streamIds":["2"]}') },
      { receive: 1 },
    ],
  },
  {
    name: 'the connection closing while a client-to-server stream is open',
    steps: [
      ...connected(),
      { send: sum('1', '2') + item('2', 1) },
      { listen: 100 },
      { send: '{"type":7}\u001e' },
      { closed: true },
    ],
  },

  // -- over the HTTP transports -------------------------------------------------------------------------------
  {
    name: 'Counter over Server-Sent Events',
    steps: [
      ...overHttp('ServerSentEvents'),
      { receive: 1 },
      { http: 'POST', path: '?id={{token}}', body: streamInvocation('1', 'Counter', 3, 0) },
      { receive: 4 },
    ],
  },
  {
    name: 'a stream cancelled over Server-Sent Events',
    steps: [
      ...overHttp('ServerSentEvents'),
      { receive: 1 },
      { http: 'POST', path: '?id={{token}}', body: streamInvocation('1', 'Counter', 1000, -1) },
      { receive: 1 },
      { http: 'POST', path: '?id={{token}}', body: cancel('1') },
      { receive: 1 },
    ],
  },
  {
    name: 'Counter over long polling: one poll carries the items and the Completion',
    steps: [
      ...overHttp('LongPolling'),
      { http: 'GET', path: '?id={{token}}' },
      { http: 'POST', path: '?id={{token}}', body: streamInvocation('1', 'Counter', 3, 0) },
      { wait: 300 },
      { http: 'GET', path: '?id={{token}}' },
    ],
  },
  {
    name: 'Sum over long polling: the items come in separate POSTs',
    steps: [
      ...overHttp('LongPolling'),
      { http: 'GET', path: '?id={{token}}' },
      { http: 'POST', path: '?id={{token}}', body: sum('1', '2') },
      { http: 'POST', path: '?id={{token}}', body: item('2', 20) },
      { http: 'POST', path: '?id={{token}}', body: item('2', 22) + end('2') },
      { wait: 300 },
      { http: 'GET', path: '?id={{token}}' },
    ],
  },
  {
    name: 'Sum adds up a client-to-server stream',
    steps: [
      ...connected(),
      { send: sum('1', '2') },
      { send: item('2', 1) + item('2', 2) },
      { send: item('2', 5000000000) },
      { send: end('2') },
      { receive: 1 },
    ],
  },
  {
    name: 'a client-to-server stream that ends with an error',
    steps: [...connected(), { send: sum('1', '2') }, { send: end('2', 'client failed') }, { receive: 1 }],
  },
  {
    name: 'a stream item of the wrong type',
    steps: [
      ...connected(),
      { send: sum('1', '2') },
      { send: item('2', 'not a number') },
      { send: end('2') },
      { receive: 1 },
      { listen: 200 },
    ],
  },
  {
    name: 'fewer streams than the method expects',
    steps: [
      ...connected(),
      { send: record('{"type":1,"invocationId":"1","target":"Sum","arguments":[]}') },
      { receive: 1 },
    ],
  },
  {
    name: 'streams for a method that takes none',
    steps: [
      ...connected(),
      { send: record('{"type":1,"invocationId":"1","target":"Echo","arguments":[1],"streamIds":["2"]}') },
      { receive: 1 },
    ],
  },
];
