/**
 * What the MessagePack reader and writer agree on: the limits, the constants of the format and the errors, with the
 * texts of MessagePack-CSharp (`src/MessagePack.UnityClient/Assets/Scripts/MessagePack/MessagePackReader.cs` and
 * `MessagePackSecurity.cs` in `MessagePack-CSharp/MessagePack-CSharp`), which .NET peers report for the same input.
 */

/** Maximum nesting of arrays and maps read or written (MessagePack-CSharp `MessagePackSecurity.MaximumObjectGraphDepth`). */
export const MAX_DEPTH = 500;

/** The MessagePack extension type of timestamps (msgpack spec; MessagePack-CSharp `ReservedMessagePackExtensionTypeCode.DateTime`). */
export const TIMESTAMP_EXTENSION_TYPE = -1;

/** 2^32: the split point of the two 32-bit halves of a 64-bit integer or timestamp. */
export const TWO_POW_32 = 0x1_0000_0000;

/**
 * Invalid or truncated MessagePack. The texts are MessagePack-CSharp's: `EndOfStreamException` for missing bytes,
 * `MessagePackSerializationException` for an unexpected code.
 */
export class MessagePackFormatError extends Error {
  override readonly name = 'MessagePackSerializationException';
}

/** .NET's `EndOfStreamException` default text, thrown by `MessagePackReader` when bytes are missing. */
export const END_OF_STREAM = 'Attempted to read past the end of the stream.';

/** Missing bytes: a read or a declared length runs past the end of the input. */
export function endOfStream(): MessagePackFormatError {
  return new MessagePackFormatError(END_OF_STREAM);
}

/** MessagePack-CSharp `MessagePackCode.ToFormatName`. */
export function formatName(code: number): string {
  if (code <= 0x7f) return 'positive fixint';
  if (code <= 0x8f) return 'fixmap';
  if (code <= 0x9f) return 'fixarray';
  if (code <= 0xbf) return 'fixstr';
  if (code >= 0xe0) return 'negative fixint';
  return FORMAT_NAMES[code - 0xc0];
}

const FORMAT_NAMES = [
  'nil',
  '(never used)',
  'false',
  'true',
  'bin 8',
  'bin 16',
  'bin 32',
  'ext 8',
  'ext 16',
  'ext 32',
  'float 32',
  'float 64',
  'uint 8',
  'uint 16',
  'uint 32',
  'uint 64',
  'int 8',
  'int 16',
  'int 32',
  'int 64',
  'fixext 1',
  'fixext 2',
  'fixext 4',
  'fixext 8',
  'fixext 16',
  'str 8',
  'str 16',
  'str 32',
  'array 16',
  'array 32',
  'map 16',
  'map 32',
];

/** A code the read at hand does not accept (`MessagePackReader.ThrowInvalidCode`). */
export function unexpectedCode(code: number): MessagePackFormatError {
  return new MessagePackFormatError(`Unexpected msgpack code ${code} (${formatName(code)}) encountered.`);
}

/** The text of a graph nested deeper than {@link MAX_DEPTH} (`MessagePackSecurity.DepthStep`). */
export const TOO_DEEP = `This msgpack sequence has an object graph that exceeds the maximum depth allowed of ${MAX_DEPTH}.`;

/** Nesting beyond {@link MAX_DEPTH} while reading (an `InsufficientExecutionStackException` in .NET). */
export function tooDeep(): MessagePackFormatError {
  return new MessagePackFormatError(TOO_DEEP);
}

/** An integer outside the range of the type being read: a checked conversion in .NET (`OverflowException`). */
export function overflow(): MessagePackFormatError {
  return new MessagePackFormatError('Arithmetic operation resulted in an overflow.');
}
