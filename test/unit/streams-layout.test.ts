/**
 * Streams mode's layout as docs/protocol.md §3.10 states it, which every server of a fleet must compute alike: the
 * stream keys (a hash tag each), the marker key, and the stream of a channel — FNV-1a (32 bits) of its UTF-8 bytes
 * modulo the stream count, checked against the published FNV-1a test values — and how a reader tells an entry
 * written twice (its `writer` field) from a new one.
 */
import { modeMarkerKey, streamIndexOf, streamKey, WriterSequences } from '../../src/redis/streams-bus';

test('keys: one hash tag per stream, the marker beside them, both after the channel prefix', () => {
  expect(streamKey('', 0)).toBe('{signalr:stream:0}');
  expect(streamKey('ChatRoom', 7)).toBe('{ChatRoomsignalr:stream:7}');
  expect(modeMarkerKey('ChatRoom')).toBe('ChatRoomsignalr:backplane-mode');
});

test("a channel's stream is FNV-1a 32 of its UTF-8 bytes modulo the count", () => {
  // FNV-1a 32: "" → 0x811c9dc5, "a" → 0xe40c292c, "foobar" → 0xbf9cf968 (the reference test vectors).
  expect(streamIndexOf('a', 0x100000000 - 1)).toBe(0xe40c292c);
  expect(streamIndexOf('foobar', 0x100000000 - 1)).toBe(0xbf9cf968);
  expect(streamIndexOf('a', 8)).toBe(0xe40c292c % 8);
  // UTF-8, not UTF-16: "é" is the two bytes c3 a9.
  let hash = 0x811c9dc5;
  for (const byte of [0xc3, 0xa9]) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  expect(streamIndexOf('é', 1000)).toBe(hash % 1000);
  // One stream: every channel on it.
  expect(streamIndexOf('Chat.Hub:group:anything', 1)).toBe(0);
});

test('the channels of one hub spread over the streams of a cluster', () => {
  const used = new Set(Array.from({ length: 200 }, (_, i) => streamIndexOf(`Chat.Hub:group:g${i}`, 8)));
  expect(used.size).toBe(8);
});

test("a writer's repeated entry is told from a new one, per stream and per writer; a forgotten writer starts afresh", () => {
  const sequences = new WriterSequences();
  const at = 1_000_000;
  expect(sequences.admit('{s:0}', 'w1:1', at)).toBe(true);
  expect(sequences.admit('{s:0}', 'w1:2', at)).toBe(true);
  // Sent again after its reply was lost: the same number, or one read before, is a repeat.
  expect(sequences.admit('{s:0}', 'w1:2', at)).toBe(false);
  expect(sequences.admit('{s:0}', 'w1:1', at)).toBe(false);
  // Numbers may skip (the writer's other entries went to other streams).
  expect(sequences.admit('{s:0}', 'w1:9', at)).toBe(true);
  // Another stream and another writer keep their own numbers.
  expect(sequences.admit('{s:1}', 'w1:3', at)).toBe(true);
  expect(sequences.admit('{s:0}', 'w2:1', at)).toBe(true);
  // A writer field this layout does not know is delivered.
  expect(sequences.admit('{s:0}', 'no-sequence', at)).toBe(true);
  expect(sequences.admit('{s:0}', ':5', at)).toBe(true);
  expect(sequences.size).toBe(3);
  // Ten minutes without an entry from w1 on {s:1} and w2: forgotten at the next admission.
  expect(sequences.admit('{s:0}', 'w1:10', at + 10 * 60_000 + 1)).toBe(true);
  expect(sequences.size).toBe(1);
  expect(sequences.admit('{s:0}', 'w2:1', at + 10 * 60_000 + 2)).toBe(true);
});
