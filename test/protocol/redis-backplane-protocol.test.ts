/**
 * The Redis backplane payloads (docs/protocol.md §3.3): its byte examples, the smallest-form choices
 * of MessagePack-CSharp's writer at every width boundary, and the reader's tolerance (extra items, any int/str/
 * header width, old-spec byte strings) and errors.
 */
import { encode } from '@msgpack/msgpack';
import {
  RedisGroupAction,
  RedisProtocolError,
  decodeRedisAck,
  decodeRedisCompletion,
  decodeRedisGroupCommand,
  decodeRedisInvocation,
  encodeRedisAck,
  encodeRedisCompletion,
  encodeRedisGroupCommand,
  encodeRedisInvocation,
  jsonHubProtocol,
  type RedisInvocation,
} from '../../protocol';

const bytes = (hex: string): Buffer => Buffer.from(hex.replace(/\s+/g, ''), 'hex');
const hexOf = (data: Uint8Array): string => Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('hex');
const ascii = (text: string): string => Buffer.from(text, 'utf8').toString('hex');

/** `Send("hi")` framed in both hub protocols (docs/protocol.md §3.3 example). */
const SEND_HI_JSON = Buffer.from('{"type":1,"target":"Send","arguments":["hi"]}\u001e', 'utf8');
const SEND_HI_MSGPACK = bytes('0E 96 01 80 C0 A4 53 65 6E 64 91 A2 68 69 90');
const SEND_HI = bytes(
  `92 90 82 A4 6A 73 6F 6E C4 2E ${hexOf(SEND_HI_JSON)} AB 6D 65 73 73 61 67 65 70 61 63 6B C4 0F ${hexOf(SEND_HI_MSGPACK)}`,
);
const SERVER_37 = 'WEB1_02db60e5fab243b890a847fa5c4dcb29';

function sendHi(): RedisInvocation {
  return {
    excludedConnectionIds: [],
    messages: new Map([
      ['json', SEND_HI_JSON],
      ['messagepack', SEND_HI_MSGPACK],
    ]),
  };
}

describe('docs/protocol.md §3.3 examples', () => {
  it('Clients.All.SendAsync("Send", "hi") is the 85-byte invocation', () => {
    // The JSON entry is what our JSON hub protocol frames for the message.
    expect(hexOf(jsonHubProtocol.writeMessage({ type: 1, target: 'Send', arguments: ['hi'] }))).toBe(
      hexOf(SEND_HI_JSON),
    );
    const encoded = encodeRedisInvocation(sendHi());
    expect(encoded).toHaveLength(85);
    expect(encoded.toString('hex')).toBe(SEND_HI.toString('hex'));

    const decoded = decodeRedisInvocation(SEND_HI);
    expect(decoded.excludedConnectionIds).toEqual([]);
    expect([...decoded.messages.keys()]).toEqual(['json', 'messagepack']);
    expect(hexOf(decoded.messages.get('json') as Uint8Array)).toBe(hexOf(SEND_HI_JSON));
    expect(hexOf(decoded.messages.get('messagepack') as Uint8Array)).toBe(hexOf(SEND_HI_MSGPACK));
    expect(decoded).not.toHaveProperty('invocationId');
    expect(decoded).not.toHaveProperty('returnChannel');
  });

  it('the group command example: id 1, Add, group room1, connection abc, 37-char server name', () => {
    const expected = bytes(`95 01 D9 25 ${ascii(SERVER_37)} 01 A5 72 6F 6F 6D 31 A3 61 62 63`);
    const command = {
      id: 1,
      serverName: SERVER_37,
      action: RedisGroupAction.Add,
      groupName: 'room1',
      connectionId: 'abc',
    };
    expect(encodeRedisGroupCommand(command).toString('hex')).toBe(expected.toString('hex'));
    expect(decodeRedisGroupCommand(expected)).toEqual(command);
  });

  it('the ack example 91 01', () => {
    expect(encodeRedisAck(1).toString('hex')).toBe('9101');
    expect(decodeRedisAck(bytes('91 01'))).toBe(1);
  });

  it('the client-result reply example', () => {
    const completion = Buffer.from('{"type":3,"invocationId":"AbCd","result":42}\u001e', 'utf8');
    const expected = bytes(`92 A4 6A 73 6F 6E C4 2D ${hexOf(completion)}`);
    expect(hexOf(jsonHubProtocol.writeMessage({ type: 3, invocationId: 'AbCd', result: 42 }))).toBe(hexOf(completion));
    expect(encodeRedisCompletion({ protocolName: 'json', completion }).toString('hex')).toBe(expected.toString('hex'));
    const decoded = decodeRedisCompletion(expected);
    expect(decoded.protocolName).toBe('json');
    expect(hexOf(decoded.completion)).toBe(hexOf(completion));
  });
});

describe('encoding: the forms .NET writes', () => {
  it('a client-result invocation has 4 items: id and unprefixed return channel after the map', () => {
    const encoded = encodeRedisInvocation({
      ...sendHi(),
      invocationId: 'AbCd',
      returnChannel: 'Hub:internal:return:s',
    });
    expect(encoded[0]).toBe(0x94);
    expect(encoded.subarray(85).toString('hex')).toBe(`a4${ascii('AbCd')}b5${ascii('Hub:internal:return:s')}`);
    expect(decodeRedisInvocation(encoded)).toMatchObject({
      invocationId: 'AbCd',
      returnChannel: 'Hub:internal:return:s',
    });
  });

  it('an empty return channel means no reply expected, as .NET tests IsNullOrEmpty', () => {
    expect(encodeRedisInvocation({ ...sendHi(), invocationId: 'AbCd', returnChannel: '' }).toString('hex')).toBe(
      SEND_HI.toString('hex'),
    );
  });

  it('rejects a return channel without an invocation id', () => {
    expect(() => encodeRedisInvocation({ ...sendHi(), returnChannel: 'Hub:internal:return:s' })).toThrow(TypeError);
  });

  it('writes map entries in the given order', () => {
    const reversed = encodeRedisInvocation({
      excludedConnectionIds: [],
      messages: new Map([
        ['messagepack', SEND_HI_MSGPACK],
        ['json', SEND_HI_JSON],
      ]),
    });
    expect([...decodeRedisInvocation(reversed).messages.keys()]).toEqual(['messagepack', 'json']);
  });

  it('ints take the smallest form, unsigned when non-negative (ack and group command ids)', () => {
    const cases: [number, string][] = [
      [0, '00'],
      [127, '7f'],
      [128, 'cc80'],
      [255, 'ccff'],
      [256, 'cd0100'],
      [65535, 'cdffff'],
      [65536, 'ce00010000'],
      [2147483647, 'ce7fffffff'],
      [-1, 'ff'],
      [-32, 'e0'],
      [-33, 'd0df'],
      [-128, 'd080'],
      [-129, 'd1ff7f'],
      [-32768, 'd18000'],
      [-32769, 'd2ffff7fff'],
      [-2147483648, 'd280000000'],
    ];
    for (const [id, form] of cases) {
      expect(encodeRedisAck(id).toString('hex')).toBe(`91${form}`);
      expect(decodeRedisAck(encodeRedisAck(id))).toBe(id);
      const command = { id, serverName: 's', action: 2, groupName: 'g', connectionId: 'c' };
      expect(encodeRedisGroupCommand(command).toString('hex')).toBe(`95${form}a17302a167a163`);
      expect(decodeRedisGroupCommand(encodeRedisGroupCommand(command))).toEqual(command);
    }
  });

  it('rejects ids outside Int32 and actions outside a byte', () => {
    for (const id of [2147483648, -2147483649, 1.5, Number.NaN]) {
      expect(() => encodeRedisAck(id)).toThrow(RangeError);
      expect(() =>
        encodeRedisGroupCommand({ id, serverName: 's', action: 1, groupName: 'g', connectionId: 'c' }),
      ).toThrow(RangeError);
    }
    for (const action of [-1, 256]) {
      expect(() =>
        encodeRedisGroupCommand({ id: 1, serverName: 's', action, groupName: 'g', connectionId: 'c' }),
      ).toThrow(RangeError);
    }
  });

  it('strings take fixstr, str8, str16, str32 by UTF-8 byte length', () => {
    const cases: [string, string][] = [
      ['', 'a0'],
      ['x'.repeat(31), 'bf'],
      ['x'.repeat(32), 'd920'],
      ['x'.repeat(255), 'd9ff'],
      ['x'.repeat(256), 'da0100'],
      ['x'.repeat(65535), 'daffff'],
      ['x'.repeat(65536), 'db00010000'],
      // 16 chars but 32 bytes: the byte length decides.
      ['é'.repeat(16), 'd920'],
      ['✓'.repeat(10), 'be'],
    ];
    for (const [group, header] of cases) {
      const encoded = encodeRedisGroupCommand({
        id: 1,
        serverName: 's',
        action: 1,
        groupName: group,
        connectionId: 'c',
      });
      expect(encoded.toString('hex')).toBe(`9501a17301${header}${ascii(group)}a163`);
      // The same bytes as a general MessagePack encoder that also picks the smallest forms.
      expect(encoded.toString('hex')).toBe(hexOf(encode([1, 's', 1, group, 'c'])));
    }
  });

  it("writes a lone surrogate as U+FFFD (EF BF BD), as .NET's UTF-8 encoder does", () => {
    // (@msgpack/msgpack would write the surrogate's own three bytes, ED A0 80.)
    const encoded = encodeRedisGroupCommand({
      id: 1,
      serverName: 's',
      action: 1,
      groupName: '\ud800',
      connectionId: 'c',
    });
    expect(encoded.toString('hex')).toBe('9501a17301a3efbfbda163');
  });

  it('bin values take bin8, bin16, bin32 by length, and arrays/maps fix, 16- or 32-bit headers by count', () => {
    for (const length of [0, 255, 256, 65535, 65536]) {
      const payload = Buffer.alloc(length, 7);
      const ids = Array.from({ length: length % 40 }, (_, i) => `id${i}`);
      const invocation = { excludedConnectionIds: ids, messages: new Map([['json', payload]]) };
      const expected = encode([ids, { json: payload }]);
      expect(encodeRedisInvocation(invocation).toString('hex')).toBe(hexOf(expected));
      expect(hexOf(decodeRedisInvocation(encodeRedisInvocation(invocation)).messages.get('json') as Uint8Array)).toBe(
        hexOf(payload),
      );
    }
    for (const count of [15, 16, 65535, 65536]) {
      const ids = Array.from({ length: count }, () => 'c');
      const encoded = encodeRedisInvocation({ excludedConnectionIds: ids, messages: new Map() });
      expect(encoded.toString('hex')).toBe(hexOf(encode([ids, {}])));
      expect(decodeRedisInvocation(encoded).excludedConnectionIds).toHaveLength(count);
    }
    const manyProtocols = new Map(Array.from({ length: 16 }, (_, i) => [`p${i}`, Buffer.from([i])]));
    expect(encodeRedisInvocation({ excludedConnectionIds: [], messages: manyProtocols }).toString('hex')).toBe(
      hexOf(encode([[], Object.fromEntries(manyProtocols)])),
    );
  });

  it('non-ASCII ids and names survive a round trip', () => {
    const invocation = {
      excludedConnectionIds: ['conn-é', 'x'.repeat(70), '✓'.repeat(30)],
      messages: new Map([['prötocol', Buffer.from('payload')]]),
      invocationId: 'id-✓',
      returnChannel: 'Hub:internal:return:srv-ü',
    };
    const decoded = decodeRedisInvocation(encodeRedisInvocation(invocation));
    expect(decoded.excludedConnectionIds).toEqual(invocation.excludedConnectionIds);
    expect([...decoded.messages.keys()]).toEqual(['prötocol']);
    expect(decoded.invocationId).toBe('id-✓');
    expect(decoded.returnChannel).toBe('Hub:internal:return:srv-ü');
    expect(encodeRedisInvocation(invocation).toString('hex')).toBe(
      hexOf(
        encode([
          invocation.excludedConnectionIds,
          { prötocol: Buffer.from('payload') },
          'id-✓',
          invocation.returnChannel,
        ]),
      ),
    );
  });
});

describe('decoding: tolerance', () => {
  it('decoded hub messages are views of the received bytes, not copies', () => {
    const received = Buffer.concat([Buffer.from([1, 2, 3]), SEND_HI]).subarray(3);
    const decoded = decodeRedisInvocation(received);
    const json = decoded.messages.get('json') as Uint8Array;
    expect(json.buffer).toBe(received.buffer);
    expect(json.byteOffset).toBe(received.byteOffset + 10);
    // A plain Uint8Array works as well as a Buffer.
    const plain = new Uint8Array(SEND_HI);
    expect((decodeRedisInvocation(plain).messages.get('messagepack') as Uint8Array).buffer).toBe(plain.buffer);
  });

  it('accepts extra trailing items in every payload', () => {
    // Invocation with 3 items: the third is ignored (id and channel are read only from 4 items on).
    const three = bytes(`93 ${SEND_HI.subarray(1).toString('hex')} a3 78 79 7a`);
    expect(decodeRedisInvocation(three)).toEqual(decodeRedisInvocation(SEND_HI));
    // Invocation with 6 items: items 2-3 read, the rest ignored.
    const six = bytes(`96 ${SEND_HI.subarray(1).toString('hex')} a2 69 64 a1 63 c0 81 a1 6b 01`);
    expect(decodeRedisInvocation(six)).toMatchObject({ invocationId: 'id', returnChannel: 'c' });
    expect(decodeRedisGroupCommand(bytes('96 01 a1 73 02 a1 67 a1 63 c3'))).toEqual({
      id: 1,
      serverName: 's',
      action: 2,
      groupName: 'g',
      connectionId: 'c',
    });
    expect(decodeRedisAck(bytes('93 07 a1 78 90'))).toBe(7);
    const reply = decodeRedisCompletion(bytes('93 a4 6a 73 6f 6e c4 01 1e 2a'));
    expect(reply.protocolName).toBe('json');
    expect(hexOf(reply.completion)).toBe('1e');
  });

  it('accepts any int width for ids and actions', () => {
    const forms = [
      '07',
      'cc07',
      'cd0007',
      'ce00000007',
      'cf0000000000000007',
      'd007',
      'd10007',
      'd200000007',
      'd30000000000000007',
    ];
    for (const form of forms) {
      expect(decodeRedisAck(bytes(`91 ${form}`))).toBe(7);
      const command = decodeRedisGroupCommand(bytes(`95 ${form} a1 73 ${form.replace(/07$/, '01')} a1 67 a1 63`));
      expect(command).toMatchObject({ id: 7, action: 1 });
    }
    expect(decodeRedisAck(bytes('91 d0 80'))).toBe(-128);
    expect(decodeRedisAck(bytes('91 d3 ffffffff80000000'))).toBe(-2147483648);
    expect(decodeRedisAck(bytes('91 cf 000000007fffffff'))).toBe(2147483647);
  });

  it('accepts any str, array and map header width', () => {
    const json = Buffer.from('{}\u001e');
    const variants = [
      // excluded ids: array16 with a str8 id; map16; protocol name as str16; bin16
      `92 dc0001 d901 61 de0001 da0004 ${ascii('json')} c50003 ${hexOf(json)}`,
      // array32, str32 id, map32, str32 name, bin32
      `92 dd00000001 db00000001 61 df00000001 db00000004 ${ascii('json')} c600000003 ${hexOf(json)}`,
      // outer array as array16 with 4 items, str8 invocation id and str16 channel
      `dc0004 91 a1 61 81 a4 ${ascii('json')} c403 ${hexOf(json)} d902 6964 da0001 63`,
    ];
    for (const variant of variants) {
      const decoded = decodeRedisInvocation(bytes(variant));
      expect(decoded.excludedConnectionIds).toEqual(['a']);
      expect(hexOf(decoded.messages.get('json') as Uint8Array)).toBe(hexOf(json));
    }
    expect(decodeRedisInvocation(bytes(variants[2]))).toMatchObject({ invocationId: 'id', returnChannel: 'c' });
    expect(decodeRedisCompletion(bytes(`dd00000002 d904 ${ascii('json')} c403 ${hexOf(json)}`)).protocolName).toBe(
      'json',
    );
  });

  it('reads byte strings the way MessagePack-CSharp does: bin, fixstr/str16/str32 (old spec) and nil, not str8', () => {
    const value = (form: string) =>
      decodeRedisInvocation(bytes(`92 90 81 a4 ${ascii('json')} ${form}`)).messages.get('json');
    expect(hexOf(value('a3 7b7d1e') as Uint8Array)).toBe('7b7d1e');
    expect(hexOf(value('da0003 7b7d1e') as Uint8Array)).toBe('7b7d1e');
    expect(hexOf(value('db00000003 7b7d1e') as Uint8Array)).toBe('7b7d1e');
    expect(value('c0')).toHaveLength(0);
    expect(() => value('d903 7b7d1e')).toThrow(RedisProtocolError);
    expect(decodeRedisCompletion(bytes(`92 a4 ${ascii('json')} c0`)).completion).toHaveLength(0);
  });

  it('nil strings: a nil id or return channel is left out, nil excluded ids are skipped', () => {
    const decoded = decodeRedisInvocation(bytes(`94 92 c0 a1 61 80 c0 c0`));
    expect(decoded.excludedConnectionIds).toEqual(['a']);
    expect(decoded.messages.size).toBe(0);
    expect(decoded).not.toHaveProperty('invocationId');
    expect(decoded).not.toHaveProperty('returnChannel');
  });

  it('keeps the first value of a repeated protocol name, as .NET looks the first one up', () => {
    const decoded = decodeRedisInvocation(bytes(`92 90 82 a4 ${ascii('json')} c401 01 a4 ${ascii('json')} c401 02`));
    expect(hexOf(decoded.messages.get('json') as Uint8Array)).toBe('01');
  });

  it('passes any action byte through, as .NET casts without checking', () => {
    expect(decodeRedisGroupCommand(bytes('95 01 a1 73 cc ff a1 67 a1 63')).action).toBe(255);
  });
});

describe('decoding: errors', () => {
  it("rejects too few items with .NET's ValidateArraySize text", () => {
    expect(() => decodeRedisInvocation(bytes('91 90'))).toThrow(
      new RedisProtocolError('Insufficient items in Invocation array.'),
    );
    expect(() => decodeRedisInvocation(bytes('90'))).toThrow('Insufficient items in Invocation array.');
    expect(() => decodeRedisGroupCommand(bytes('94 01 a1 73 01 a1 67'))).toThrow(
      'Insufficient items in GroupCommand array.',
    );
    expect(() => decodeRedisAck(bytes('90'))).toThrow('Insufficient items in Ack array.');
    expect(() => decodeRedisCompletion(bytes('91 a4 6a 73 6f 6e'))).toThrow(
      'Insufficient items in CompletionMessage array.',
    );
    try {
      decodeRedisAck(bytes('90'));
    } catch (error) {
      expect(error).toBeInstanceOf(RedisProtocolError);
      expect((error as Error).name).toBe('InvalidDataException');
    }
  });

  // The problem is told in MessagePack-CSharp's words, as .NET's backplane reader would; the envelope says which
  // payload and where.
  it('rejects a payload that is not an array, or items of the wrong type', () => {
    expect(() => decodeRedisAck(bytes('01'))).toThrow(
      'Invalid Ack payload at offset 0: Unexpected msgpack code 1 (positive fixint) encountered.',
    );
    expect(() => decodeRedisAck(bytes('91 a1 31'))).toThrow(
      'Invalid Ack payload at offset 1: Unexpected msgpack code 161 (fixstr) encountered.',
    );
    expect(() => decodeRedisInvocation(bytes('92 80 80'))).toThrow(
      'Invalid Invocation payload at offset 1: Unexpected msgpack code 128 (fixmap) encountered.',
    );
    expect(() => decodeRedisInvocation(bytes('92 90 90'))).toThrow(
      'Invalid Invocation payload at offset 2: Unexpected msgpack code 144 (fixarray) encountered.',
    );
    expect(() => decodeRedisInvocation(bytes('92 91 01 80'))).toThrow(
      'Invalid Invocation payload at offset 2: Unexpected msgpack code 1 (positive fixint) encountered.',
    );
    expect(() => decodeRedisGroupCommand(bytes('95 01 a1 73 c3 a1 67 a1 63'))).toThrow(
      'Invalid GroupCommand payload at offset 4: Unexpected msgpack code 195 (true) encountered.',
    );
  });

  it("rejects ints out of range with .NET's overflow error", () => {
    const overflow = 'Arithmetic operation resulted in an overflow.';
    expect(() => decodeRedisAck(bytes('91 ce 80000000'))).toThrow(`Invalid Ack payload at offset 1: ${overflow}`);
    expect(() => decodeRedisAck(bytes('91 d3 ffffffff7fffffff'))).toThrow(
      `Invalid Ack payload at offset 1: ${overflow}`,
    );
    expect(() => decodeRedisGroupCommand(bytes('95 01 a1 73 cd 0100 a1 67 a1 63'))).toThrow(
      `Invalid GroupCommand payload at offset 4: ${overflow}`,
    );
    expect(() => decodeRedisGroupCommand(bytes('95 01 a1 73 ff a1 67 a1 63'))).toThrow(
      `Invalid GroupCommand payload at offset 4: ${overflow}`,
    );
  });

  it('rejects every truncation of a valid payload with RedisProtocolError', () => {
    const payloads = [
      SEND_HI,
      encodeRedisInvocation({ ...sendHi(), excludedConnectionIds: ['a', 'b'], invocationId: 'id', returnChannel: 'c' }),
      encodeRedisGroupCommand({ id: 300, serverName: SERVER_37, action: 1, groupName: 'room1', connectionId: 'abc' }),
      encodeRedisAck(70000),
      encodeRedisCompletion({ protocolName: 'messagepack', completion: Buffer.alloc(300, 1) }),
    ];
    const decoders = [
      decodeRedisInvocation,
      decodeRedisInvocation,
      decodeRedisGroupCommand,
      decodeRedisAck,
      decodeRedisCompletion,
    ];
    payloads.forEach((payload, i) => {
      expect(() => decoders[i](payload)).not.toThrow();
      for (let length = 0; length < payload.length; length++) {
        expect(() => decoders[i](payload.subarray(0, length))).toThrow(RedisProtocolError);
      }
    });
  });

  it('rejects a header claiming more items than bytes left, before allocating', () => {
    const endOfStream = 'Attempted to read past the end of the stream.';
    expect(() => decodeRedisInvocation(bytes('92 dd 7fffffff'))).toThrow(
      `Invalid Invocation payload at offset 1: ${endOfStream}`,
    );
    expect(() => decodeRedisInvocation(bytes('92 90 df 7fffffff'))).toThrow(
      `Invalid Invocation payload at offset 2: ${endOfStream}`,
    );
  });
});
