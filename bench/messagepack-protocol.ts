/**
 * Encode + decode throughput of one MessagePack hub message, framed, in three implementations:
 *
 * * ours (`protocol/messagepack-hub-protocol.ts`),
 * * the official client's codec (`@microsoft/signalr-protocol-msgpack`, @msgpack/msgpack 2.8 inside),
 * * the same envelope built on @msgpack/msgpack 3 (`Encoder#encodeSharedRef` + `Decoder#decode`), i.e. what a
 *   server would do with the library directly.
 *
 * Run: `node --import tsx bench/messagepack-protocol.ts [seconds per round]`.
 */
import { Decoder, Encoder } from '@msgpack/msgpack';
import { NullLogger, type HubMessage as ClientHubMessage } from '@microsoft/signalr';
import { MessagePackHubProtocol as ClientProtocol } from '@microsoft/signalr-protocol-msgpack';
import { frameBinaryMessage, LengthPrefixSplitter, messagePackHubProtocol, type HubMessage } from '../protocol';

const seconds = Number(process.argv[2] ?? 1);

const small: HubMessage = { type: 1, invocationId: '12', target: 'Echo', arguments: ['hi', 42] };
const object: HubMessage = {
  type: 1,
  invocationId: '12',
  target: 'Update',
  arguments: [
    {
      id: 123456,
      name: 'Widget with a reasonably long name',
      price: 19.99,
      tags: ['alpha', 'beta', 'gamma', 'delta'],
      stock: { warehouse: 'north-east', count: 4200, reserved: 17 },
      active: true,
      updated: new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)),
      notes: null,
      history: [1, 2, 3, 5, 8, 13, 21, 34, 55, 89],
    },
  ],
};

function ours(message: HubMessage): () => void {
  const reader = messagePackHubProtocol.createReader({ maximumMessageSize: 32768 });
  return () => {
    const bytes = messagePackHubProtocol.writeMessage(message);
    let count = 0;
    reader.push(bytes, () => count++);
    if (count !== 1) throw new Error('no message');
  };
}

function official(message: HubMessage): () => void {
  const client = new ClientProtocol();
  return () => {
    const bytes = client.writeMessage(message as unknown as ClientHubMessage) as ArrayBuffer;
    if (client.parseMessages(bytes, NullLogger.instance).length !== 1) throw new Error('no message');
  };
}

function library(message: HubMessage): () => void {
  const encoder = new Encoder();
  const decoder = new Decoder();
  const splitter = new LengthPrefixSplitter(32768);
  const m = message as {
    type: 1;
    headers?: object;
    invocationId?: string;
    target: string;
    arguments: unknown[];
    streamIds?: string[];
  };
  return () => {
    const body = encoder.encodeSharedRef([
      m.type,
      m.headers ?? {},
      m.invocationId ?? null,
      m.target,
      m.arguments,
      m.streamIds ?? [],
    ]);
    const framed = frameBinaryMessage(body);
    let count = 0;
    splitter.push(framed, (bytes, start, end) => {
      const items = decoder.decode(bytes.subarray(start, end)) as unknown[];
      const read: Record<string, unknown> = { type: items[0], target: items[3], arguments: items[4] };
      if (items[2]) read.invocationId = items[2];
      count++;
    });
    if (count !== 1) throw new Error('no message');
  };
}

function measure(run: () => void): number {
  for (let i = 0; i < 20000; i++) run();
  let ops = 0;
  const start = process.hrtime.bigint();
  const budget = BigInt(Math.round(seconds * 1e9));
  let elapsed = 0n;
  while (elapsed < budget) {
    for (let i = 0; i < 1000; i++) run();
    ops += 1000;
    elapsed = process.hrtime.bigint() - start;
  }
  return ops / (Number(elapsed) / 1e9);
}

const cases: [string, HubMessage][] = [
  ['small Invocation Echo("hi", 42)', small],
  ['Invocation with a ~300 B object', object],
];
for (const [name, message] of cases) {
  console.log(`${name}: ${messagePackHubProtocol.writeMessage(message).length} bytes framed`);
  const results: Record<string, number[]> = { ours: [], official: [], library: [] };
  for (let round = 0; round < 3; round++) {
    results.ours.push(measure(ours(message)));
    results.official.push(measure(official(message)));
    results.library.push(measure(library(message)));
  }
  for (const [impl, values] of Object.entries(results)) {
    const best = Math.max(...values);
    console.log(
      `  ${impl.padEnd(9)} ${Math.round(best).toLocaleString('en-US').padStart(11)} encode+decode/s (best of 3)`,
    );
  }
}
