/**
 * MessagePack values ↔ bytes, with the encoding choices of MessagePack-CSharp (what ASP.NET Core SignalR uses).
 *
 * Why a codec of our own rather than `@msgpack/msgpack` (the official client's library): .NET peers read and write
 * with MessagePack-CSharp, and that library cannot match it in three places — integer forms (it writes numbers
 * and bigints by one rule, where .NET writes a `long` in its smallest integer form), reader checks (MessagePack-CSharp
 * rejects a declared count larger than the bytes left, limits nesting, and names the failing code in its error
 * texts, which a peer sees in a completion or close message), and strings with lone surrogates. It is also faster
 * on the small messages a hub mostly carries: `bench/messagepack-protocol.ts` compares a framed invocation's
 * encode + decode with the official client's codec and with `@msgpack/msgpack` 3 side by side, and
 * `bench/redis-backplane-encode.ts` does the same for the Redis backplane payload.
 *
 * Spec: docs/protocol.md §2.5 and docs/stack.md §2.4. The output is byte-identical to `@msgpack/msgpack` with its
 * default options for every value both can write, which the tests check; it differs where that library cannot
 * match .NET:
 *
 * * `bigint` is written as an integer in its smallest form (int64/uint64 beyond 32 bits), as MessagePack-CSharp
 *   writes a `long`/`ulong`, while numbers keep `@msgpack/msgpack`'s rules (unsigned forms for non-negative
 *   integers, so 5000000000 is `cf …`; non-integers as float64). That library can only do one or the other
 *   (`useBigInt64` also turns numbers over 2^32 into float64).
 * * int64/uint64 values are read as `number` when safe and as `bigint` otherwise, so no value is read lossily.
 * * Reading follows MessagePack-CSharp's `MessagePackReader` (`./reader.ts`), with its errors (`./format.ts`).
 * * A JS `Map` is written as a map of its entries and a `Set` as an array (`@msgpack/msgpack` writes both as an
 *   empty map `80`); an `ArrayBuffer` as `bin`; an invalid `Date` as nil, as the JSON protocol writes it as null.
 * * A lone surrogate in a string is written as U+FFFD (`ef bf bd`), as .NET's UTF-8 encoder writes it;
 *   `@msgpack/msgpack` writes its WTF-8 bytes (`ed a0 80`), which are not valid UTF-8.
 *
 * Value mapping: nil ↔ `null` (`undefined` is written as nil), `bin` ↔ `Uint8Array` (read as a copy, so it does
 * not pin the connection's receive buffers), timestamp extension −1 ↔ `Date`, other extensions ↔ `@msgpack/msgpack`'s
 * `ExtData` (the one thing taken from that library: applications that already build extension values with it
 * pass them to hub calls as they are), maps ↔ plain objects (keys as strings).
 *
 * Files: `./format.ts` (limits, errors), `./reader.ts` ({@link MessagePackReader}), `./writer.ts`
 * ({@link MessagePackWriter} and the positional `put*` forms the Redis backplane shares).
 */
import { MessagePackFormatError } from './format';
import { MessagePackReader } from './reader';
import { MessagePackWriter } from './writer';

export { END_OF_STREAM, MAX_DEPTH, MessagePackFormatError, TIMESTAMP_EXTENSION_TYPE, formatName } from './format';
export { MessagePackReader, StringTable } from './reader';
export { MessagePackWriter } from './writer';

/** Encodes one value into a new Buffer. */
export function encodeMessagePackValue(value: unknown): Buffer {
  const writer = new MessagePackWriter(256);
  writer.writeValue(value);
  return writer.toBuffer();
}

/** Decodes exactly one value; trailing bytes are an error. Throws {@link MessagePackFormatError}. */
export function decodeMessagePackValue(bytes: Uint8Array): unknown {
  const reader = new MessagePackReader(bytes);
  const value = reader.readValue();
  if (reader.remaining !== 0) {
    throw new MessagePackFormatError(`${reader.remaining} byte(s) found after the value.`);
  }
  return value;
}
