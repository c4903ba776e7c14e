/**
 * A MessagePack reader for tests that keeps the wire form of every value, in the shape of the golden file's
 * `decoded` trees (`test/golden/CAPTURE.md`): `{t: 'posfixint', v: 1}`, `{t: 'bin8', len, hex}`,
 * `{t: 'fixarray', n, items}`, `{t: 'fixmap', n, entries: [[key, value], …]}`, `{t: 'fixext4', len, hex, type}`.
 *
 * It is an oracle independent of the production codec: comparing its output with the golden trees checks that
 * the bytes carry exactly the encodings .NET chose (uint16 vs int32, str8 vs fixstr, …), and comparing it with a
 * hub payload's body checks the embedded hub message without a MessagePack hub protocol.
 */

/** One decoded value with its wire form. */
export type MsgTree =
  | { t: string; v: unknown }
  | { t: string; len: number; hex: string; type?: number }
  | { t: string; n: number; items: MsgTree[] }
  | { t: string; n: number; entries: [MsgTree, MsgTree][] };

/** Decodes exactly one value filling `bytes`; throws on trailing bytes or truncation. */
export function decodeTree(bytes: Uint8Array): MsgTree {
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [tree, end] = read(data, 0);
  if (end !== data.length) throw new Error(`${data.length - end} trailing bytes after the value`);
  return tree;
}

function need(data: Buffer, pos: number, count: number): void {
  if (pos + count > data.length) throw new Error(`truncated at ${pos}`);
}

function items(data: Buffer, pos: number, t: string, n: number): [MsgTree, number] {
  const list: MsgTree[] = [];
  for (let i = 0; i < n; i++) {
    const [item, next] = read(data, pos);
    list.push(item);
    pos = next;
  }
  return [{ t, n, items: list }, pos];
}

function entries(data: Buffer, pos: number, t: string, n: number): [MsgTree, number] {
  const list: [MsgTree, MsgTree][] = [];
  for (let i = 0; i < n; i++) {
    const [key, afterKey] = read(data, pos);
    const [value, next] = read(data, afterKey);
    list.push([key, value]);
    pos = next;
  }
  return [{ t, n, entries: list }, pos];
}

function str(data: Buffer, pos: number, t: string, len: number): [MsgTree, number] {
  need(data, pos, len);
  return [{ t, v: data.toString('utf8', pos, pos + len) }, pos + len];
}

function bin(data: Buffer, pos: number, t: string, len: number): [MsgTree, number] {
  need(data, pos, len);
  return [{ t, len, hex: data.toString('hex', pos, pos + len) }, pos + len];
}

function ext(data: Buffer, pos: number, t: string, len: number): [MsgTree, number] {
  need(data, pos, len + 1);
  const type = data.readInt8(pos);
  return [{ t, len, hex: data.toString('hex', pos + 1, pos + 1 + len), type }, pos + 1 + len];
}

function read(data: Buffer, pos: number): [MsgTree, number] {
  need(data, pos, 1);
  const c = data[pos++];
  if (c <= 0x7f) return [{ t: 'posfixint', v: c }, pos];
  if (c >= 0xe0) return [{ t: 'negfixint', v: c - 0x100 }, pos];
  if (c <= 0x8f) return entries(data, pos, 'fixmap', c & 0x0f);
  if (c <= 0x9f) return items(data, pos, 'fixarray', c & 0x0f);
  if (c <= 0xbf) return str(data, pos, 'fixstr', c & 0x1f);
  switch (c) {
    case 0xc0:
      return [{ t: 'nil', v: null }, pos];
    case 0xc2:
      return [{ t: 'false', v: false }, pos];
    case 0xc3:
      return [{ t: 'true', v: true }, pos];
    case 0xc4:
      need(data, pos, 1);
      return bin(data, pos + 1, 'bin8', data[pos]);
    case 0xc5:
      need(data, pos, 2);
      return bin(data, pos + 2, 'bin16', data.readUInt16BE(pos));
    case 0xc6:
      need(data, pos, 4);
      return bin(data, pos + 4, 'bin32', data.readUInt32BE(pos));
    case 0xc7:
      need(data, pos, 1);
      return ext(data, pos + 1, 'ext8', data[pos]);
    case 0xc8:
      need(data, pos, 2);
      return ext(data, pos + 2, 'ext16', data.readUInt16BE(pos));
    case 0xc9:
      need(data, pos, 4);
      return ext(data, pos + 4, 'ext32', data.readUInt32BE(pos));
    case 0xca:
      need(data, pos, 4);
      return [{ t: 'float32', v: data.readFloatBE(pos) }, pos + 4];
    case 0xcb:
      need(data, pos, 8);
      return [{ t: 'float64', v: data.readDoubleBE(pos) }, pos + 8];
    case 0xcc:
      need(data, pos, 1);
      return [{ t: 'uint8', v: data[pos] }, pos + 1];
    case 0xcd:
      need(data, pos, 2);
      return [{ t: 'uint16', v: data.readUInt16BE(pos) }, pos + 2];
    case 0xce:
      need(data, pos, 4);
      return [{ t: 'uint32', v: data.readUInt32BE(pos) }, pos + 4];
    case 0xcf:
      need(data, pos, 8);
      return [{ t: 'uint64', v: Number(data.readBigUInt64BE(pos)) }, pos + 8];
    case 0xd0:
      need(data, pos, 1);
      return [{ t: 'int8', v: data.readInt8(pos) }, pos + 1];
    case 0xd1:
      need(data, pos, 2);
      return [{ t: 'int16', v: data.readInt16BE(pos) }, pos + 2];
    case 0xd2:
      need(data, pos, 4);
      return [{ t: 'int32', v: data.readInt32BE(pos) }, pos + 4];
    case 0xd3:
      need(data, pos, 8);
      return [{ t: 'int64', v: Number(data.readBigInt64BE(pos)) }, pos + 8];
    case 0xd4:
      return ext(data, pos, 'fixext1', 1);
    case 0xd5:
      return ext(data, pos, 'fixext2', 2);
    case 0xd6:
      return ext(data, pos, 'fixext4', 4);
    case 0xd7:
      return ext(data, pos, 'fixext8', 8);
    case 0xd8:
      return ext(data, pos, 'fixext16', 16);
    case 0xd9:
      need(data, pos, 1);
      return str(data, pos + 1, 'str8', data[pos]);
    case 0xda:
      need(data, pos, 2);
      return str(data, pos + 2, 'str16', data.readUInt16BE(pos));
    case 0xdb:
      need(data, pos, 4);
      return str(data, pos + 4, 'str32', data.readUInt32BE(pos));
    case 0xdc:
      need(data, pos, 2);
      return items(data, pos + 2, 'array16', data.readUInt16BE(pos));
    case 0xdd:
      need(data, pos, 4);
      return items(data, pos + 4, 'array32', data.readUInt32BE(pos));
    case 0xde:
      need(data, pos, 2);
      return entries(data, pos + 2, 'map16', data.readUInt16BE(pos));
    case 0xdf:
      need(data, pos, 4);
      return entries(data, pos + 4, 'map32', data.readUInt32BE(pos));
    default:
      throw new Error(`never-used code 0x${c.toString(16)} at ${pos - 1}`);
  }
}
