/**
 * Handshake and negotiate bodies against golden bytes (docs/protocol.md §1.2, §2.2).
 */
import {
  HANDSHAKE_SUCCESS,
  HandshakeReader,
  HubProtocolError,
  parseHandshakeRequest,
  selectNegotiateVersion,
  writeHandshakeError,
  writeNegotiateError,
  writeNegotiateResponse,
} from '../../protocol';

describe('handshake', () => {
  test('the success answer is the three bytes 7B 7D 1E', () => {
    expect(HANDSHAKE_SUCCESS.toString('hex')).toBe('7b7d1e');
  });

  test('an error answer is {"error":…} and 0x1E', () => {
    expect(writeHandshakeError("The protocol 'xml' is not supported.").toString('utf8')).toBe(
      '{"error":"The protocol \'xml\' is not supported."}\u001e',
    );
  });

  test.each([
    ['{"protocol":"json","version":1}', { protocol: 'json', version: 1 }],
    ['{"protocol":"messagepack","version":2}', { protocol: 'messagepack', version: 2 }],
    ['{"version":1,"protocol":"JSON","extra":[1]}', { protocol: 'JSON', version: 1 }],
  ])('reads %s', (json, expected) => {
    expect(parseHandshakeRequest(Buffer.from(json))).toEqual(expected);
  });

  test.each([
    ['not JSON', 'json', 'Error reading JSON.'],
    ['missing protocol', '{"version":1}', 'Missing required property \'protocol\'. Message content: {"version":1}'],
    [
      'missing version',
      '{"protocol":"json"}',
      'Missing required property \'version\'. Message content: {"protocol":"json"}',
    ],
    ['version as string', '{"protocol":"json","version":"1"}', "Expected 'version' to be of type Number."],
    [
      'fractional version',
      '{"protocol":"json","version":1.5}',
      'Either the JSON value is not in a supported format, or is out of bounds for an Int32.',
    ],
    ['protocol as number', '{"protocol":1,"version":1}', "Expected 'protocol' to be of type String."],
    ['a JSON array', '["json",1]', "Unexpected JSON Token Type 'Array'. Expected a JSON Object."],
    ['a hub message instead', '{"type":6}', 'Missing required property \'protocol\'. Message content: {"type":6}'],
  ])('rejects %s', (_name, json, error) => {
    expect(() => parseHandshakeRequest(Buffer.from(json))).toThrow(error);
    expect(() => parseHandshakeRequest(Buffer.from(json))).toThrow(HubProtocolError);
  });

  test('invalid UTF-8 fails in the protocol name and is ignored in other properties, as in .NET', () => {
    const inProtocol = Buffer.concat([
      Buffer.from('{"protocol":"js'),
      Buffer.from([0xff]),
      Buffer.from('on","version":1}'),
    ]);
    expect(() => parseHandshakeRequest(inProtocol)).toThrow(
      'Cannot transcode invalid UTF-8 JSON text to UTF-16 string.',
    );
    const elsewhere = Buffer.concat([
      Buffer.from('{"protocol":"json","version":1,"x":"'),
      Buffer.from([0xff]),
      Buffer.from('"}'),
    ]);
    expect(parseHandshakeRequest(elsewhere)).toEqual({ protocol: 'json', version: 1 });
  });

  test('the reader returns the record and keeps the bytes after it for the hub protocol', () => {
    const reader = new HandshakeReader(1024);
    expect(reader.push(Buffer.from('{"protocol":"js'))).toBeNull();
    const result = reader.push(Buffer.from('on","version":1}\u001e{"type":6}\u001e'));
    expect(result?.record.toString()).toBe('{"protocol":"json","version":1}');
    expect(Buffer.from(result!.rest).toString()).toBe('{"type":6}\u001e');
  });

  test('a handshake larger than the limit is canceled', () => {
    const reader = new HandshakeReader(16);
    expect(() => reader.push(Buffer.from('{"protocol":"json",'))).toThrow('Handshake was canceled.');
  });
});

describe('negotiate', () => {
  test.each([
    [undefined, { version: 0 }],
    ['1', { version: 1 }],
    ['0', { version: 0 }],
    ['2', { version: 1 }],
    ['99', { version: 1 }],
    [' 1 ', { version: 1 }],
    ['abc', { error: 'The client requested a non-integer protocol version.' }],
    ['1.5', { error: 'The client requested a non-integer protocol version.' }],
    ['', { error: 'The client requested a non-integer protocol version.' }],
    ['1,1', { error: 'The client requested a non-integer protocol version.' }],
    ['99999999999', { error: 'The client requested a non-integer protocol version.' }],
  ])('negotiateVersion=%s', (requested, expected) => {
    expect(selectNegotiateVersion(requested)).toEqual(expected);
  });

  test("a version below the minimum is refused with .NET's text", () => {
    expect(selectNegotiateVersion('0', 1)).toEqual({
      error: "The client requested version '0', but the server does not support this version.",
    });
  });

  test("v1 response in .NET's property order", () => {
    expect(
      writeNegotiateResponse({
        negotiateVersion: 1,
        connectionId: 'AAAAAAAAAAAAAAAAAAAAAA',
        connectionToken: 'BBBBBBBBBBBBBBBBBBBBBB',
        availableTransports: ['WebSockets', 'ServerSentEvents', 'LongPolling'],
      }),
    ).toBe(
      '{"negotiateVersion":1,"connectionId":"AAAAAAAAAAAAAAAAAAAAAA","connectionToken":"BBBBBBBBBBBBBBBBBBBBBB","availableTransports":[{"transport":"WebSockets","transferFormats":["Text","Binary"]},{"transport":"ServerSentEvents","transferFormats":["Text"]},{"transport":"LongPolling","transferFormats":["Text","Binary"]}]}',
    );
  });

  test('v0 response has no token; stateful reconnect comes first; transports may be empty', () => {
    expect(writeNegotiateResponse({ negotiateVersion: 0, connectionId: 'id', availableTransports: [] })).toBe(
      '{"negotiateVersion":0,"connectionId":"id","availableTransports":[]}',
    );
    expect(
      writeNegotiateResponse({
        useStatefulReconnect: true,
        negotiateVersion: 1,
        connectionId: 'id',
        connectionToken: 't',
        availableTransports: ['WebSockets'],
      }),
    ).toBe(
      '{"useStatefulReconnect":true,"negotiateVersion":1,"connectionId":"id","connectionToken":"t","availableTransports":[{"transport":"WebSockets","transferFormats":["Text","Binary"]}]}',
    );
  });

  test('an error response holds only the error', () => {
    expect(writeNegotiateError('The client requested a non-integer protocol version.')).toBe(
      '{"error":"The client requested a non-integer protocol version."}',
    );
  });
});
