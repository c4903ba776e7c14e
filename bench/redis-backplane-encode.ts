/**
 * Throughput of the Redis backplane invocation codec on the docs/protocol.md §3.3 example
 * (`Clients.All.SendAsync("Send", "hi")`, 85 bytes): our hand-written encoder against `@msgpack/msgpack` writing the
 * same shape, and our decoder. One encode runs per broadcast, so this is on the hot path of every hub send.
 *
 * Run: `node --import tsx bench/redis-backplane-encode.ts [roundMs=300] [rounds=7]`.
 */
import { Encoder, decode } from '@msgpack/msgpack';
import { decodeRedisInvocation, encodeRedisInvocation, type RedisInvocation } from '../protocol';

const json = Buffer.from('{"type":1,"target":"Send","arguments":["hi"]}\u001e', 'utf8');
const messagepack = Buffer.from('0e960180c0a453656e6491a2686990', 'hex');
const invocation: RedisInvocation = {
  excludedConnectionIds: [],
  messages: new Map([
    ['json', json],
    ['messagepack', messagepack],
  ]),
};
const others: RedisInvocation = { ...invocation, excludedConnectionIds: ['phljMCRMqX8Z5XV46P6Tbg'] };

// @msgpack/msgpack writes a Map as an empty map, so it gets a plain object (same key order, same bytes).
const encoder = new Encoder();
const viaLibrary = (value: RedisInvocation): Uint8Array =>
  encoder.encode([value.excludedConnectionIds, { json, messagepack }]);

const encoded = encodeRedisInvocation(invocation);
if (encoded.length !== 85 || Buffer.compare(encoded, Buffer.from(viaLibrary(invocation))) !== 0) {
  throw new Error('The encoders disagree on the 85-byte invocation');
}

// The machine may be shared: each case runs several short rounds, interleaved with the other cases, and the
// median and best rounds are reported.
const roundMs = Number(process.argv[2] ?? 300);
const rounds = Number(process.argv[3] ?? 7);
let sink = 0;

interface Case {
  readonly name: string;
  readonly run: () => number;
  readonly rates: number[];
}
const cases: Case[] = [];

function measure(name: string, run: () => number): void {
  cases.push({ name, run, rates: [] });
}

function round(bench: Case): void {
  const batch = 10_000;
  let operations = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(roundMs) * 1_000_000n;
  let now = start;
  while (now < end) {
    for (let i = 0; i < batch; i++) sink += bench.run();
    operations += batch;
    now = process.hrtime.bigint();
  }
  bench.rates.push(operations / (Number(now - start) / 1e9));
}

measure('encode 85-byte invocation (hand-written)', () => encodeRedisInvocation(invocation).length);
measure('encode 85-byte invocation (@msgpack/msgpack Encoder)', () => viaLibrary(invocation).length);
measure('encode + 1 excluded id (hand-written)', () => encodeRedisInvocation(others).length);
measure('encode + 1 excluded id (@msgpack/msgpack Encoder)', () => viaLibrary(others).length);
measure('decode 85-byte invocation (hand-written, views)', () => decodeRedisInvocation(encoded).messages.size);
measure('decode 85-byte invocation (@msgpack/msgpack decode, copies)', () => (decode(encoded) as unknown[]).length);
for (const bench of cases) for (let i = 0; i < 100_000; i++) sink += bench.run(); // warm up
for (let r = 0; r < rounds; r++) for (const bench of cases) round(bench);
const format = (rate: number): string => Math.round(rate).toLocaleString('en-US').padStart(11);
for (const { name, rates } of cases) {
  const sorted = [...rates].sort((a, b) => a - b);
  console.log(
    `${name.padEnd(58)} median ${format(sorted[sorted.length >> 1])} ops/s   best ${format(sorted[sorted.length - 1])} ops/s`,
  );
}
if (sink === 0) console.log('');
