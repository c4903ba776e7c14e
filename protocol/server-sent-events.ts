/**
 * Server-Sent Events framing of hub messages (docs/protocol.md §1.6; ServerSentEventsMessageFormatter.cs):
 * every `\n`-separated line of a payload becomes `data: <line>\r\n` (a trailing `\r` before the `\n` is dropped),
 * and a blank `\r\n` ends the event. SSE carries Text only, so there is no base64 anywhere.
 */

const DATA = Buffer.from('data: ', 'latin1');
const CRLF = Buffer.from('\r\n', 'latin1');
const END_OF_EVENT = Buffer.from('\r\n\r\n', 'latin1');

/** The comment line a stream starts with, flushed at once so browsers fire `open` (Firefox workaround). */
export const SSE_PREAMBLE: Buffer = Buffer.from(':\r\n', 'latin1');

/** Frames one payload (one or more whole hub messages) as one event. */
export function formatServerSentEvent(payload: Uint8Array): Buffer {
  const data = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  // JSON written by the server holds no raw newline: one line, the common case.
  if (data.indexOf(0x0a) === -1) return Buffer.concat([DATA, data, END_OF_EVENT], DATA.length + data.length + 4);
  const parts: Buffer[] = [];
  let start = 0;
  for (;;) {
    const newline = data.indexOf(0x0a, start);
    const end = newline === -1 ? data.length : newline;
    const lineEnd = end > start && data[end - 1] === 0x0d ? end - 1 : end;
    parts.push(DATA, data.subarray(start, lineEnd), CRLF);
    if (newline === -1) break;
    start = newline + 1;
  }
  parts.push(CRLF);
  return Buffer.concat(parts);
}
