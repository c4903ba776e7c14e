/**
 * PENDING — not executed yet: our chat sample has no streaming methods (`Counter`, `Sum`) until streaming lands.
 * When it does, add a test file that runs this table (`conformanceSuite('streaming', streamingScenarios)`).
 *
 * Streams over raw frames (spec §2.6, §2.9): server-to-client streams with StreamInvocation, StreamItem and
 * Completion; CancelInvocation; client-to-server streams with `streamIds`; the error texts of the mismatches.
 */
import type { Scenario } from '../engine/scenario';
import { connected, invoke, record } from './frames';

/** A StreamInvocation of `target`. */
function streamInvocation(invocationId: string, target: string, ...args: unknown[]): string {
  return record(`{"type":4,"invocationId":${JSON.stringify(invocationId)},"target":${JSON.stringify(target)},"arguments":${JSON.stringify(args)}}`);
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
    name: 'CancelInvocation stops a stream',
    steps: [
      ...connected(),
      { send: streamInvocation('1', 'Counter', 1000, 50) },
      { receive: 2 },
      { send: record('{"type":5,"invocationId":"1"}') },
      { wait: 200 },
      { listen: 300 },
      { send: invoke('2', 'Echo', 'after the cancel') },
      { receive: 1 },
    ],
  },
  {
    name: 'a streaming method called with an Invocation',
    steps: [...connected(), { send: invoke('1', 'Counter', 3, 0) }, { receive: 1 }],
  },
  {
    name: 'a duplicate stream invocation id',
    steps: [...connected(), { send: streamInvocation('1', 'Counter', 1000, 50) + streamInvocation('1', 'Counter', 1, 0) }, { receive: 2 }],
  },
  {
    name: 'a StreamInvocation without an invocation id closes the connection',
    steps: [...connected(), { send: record('{"type":4,"target":"Counter","arguments":[1,0]}') }, { closed: true }],
  },
  {
    name: 'Sum adds up a client-to-server stream',
    steps: [
      ...connected(),
      { send: record('{"type":1,"invocationId":"1","target":"Sum","arguments":[],"streamIds":["2"]}') },
      { send: record('{"type":2,"invocationId":"2","item":1}') + record('{"type":2,"invocationId":"2","item":2}') },
      { send: record('{"type":2,"invocationId":"2","item":5000000000}') },
      { send: record('{"type":3,"invocationId":"2"}') },
      { receive: 1 },
    ],
  },
  {
    name: 'a client-to-server stream that ends with an error',
    steps: [
      ...connected(),
      { send: record('{"type":1,"invocationId":"1","target":"Sum","arguments":[],"streamIds":["2"]}') },
      { send: record('{"type":3,"invocationId":"2","error":"client failed"}') },
      { receive: 1 },
    ],
  },
  {
    name: 'a stream item of the wrong type',
    steps: [
      ...connected(),
      { send: record('{"type":1,"invocationId":"1","target":"Sum","arguments":[],"streamIds":["2"]}') },
      { send: record('{"type":2,"invocationId":"2","item":"not a number"}') },
      { send: record('{"type":3,"invocationId":"2"}') },
      { receive: 1 },
      { listen: 200 },
    ],
  },
  {
    name: 'fewer streams than the method expects',
    steps: [...connected(), { send: record('{"type":1,"invocationId":"1","target":"Sum","arguments":[]}') }, { receive: 1 }],
  },
  {
    name: 'streams for a method that takes none',
    steps: [...connected(), { send: record('{"type":1,"invocationId":"1","target":"Echo","arguments":[1],"streamIds":["2"]}') }, { receive: 1 }],
  },
];
