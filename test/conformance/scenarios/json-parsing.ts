/**
 * Reading JSON hub messages after the handshake (docs/protocol.md §2.1, §2.4): framing across and within WebSocket
 * frames, property order, unknown properties, every required property missing or of the wrong type, the receive limit
 * at exactly the limit and one byte over, and invalid UTF-8. A message the server cannot read ends the connection with
 * a Close message carrying an error and `allowReconnect`.
 */
import type { Scenario, ServerSettings, Step } from '../engine/scenario';
import { CONNECTED, RS, connected, differs, invoke, record } from './frames';

const DETAILED: ServerSettings = { enableDetailedErrors: true };
const LIMIT = 512;
const SMALL_LIMIT: ServerSettings = { maximumReceiveMessageSize: LIMIT };

/** After the handshake, sends `frames` and observes `replies` messages (when > 0) and then a short silence. */
function reads(name: string, frames: Array<string | Buffer>, replies: number, settings?: ServerSettings): Scenario {
  const steps: Step[] = [...connected(), ...frames.map((frame) => ({ send: frame }))];
  if (replies > 0) steps.push({ receive: replies });
  steps.push({ listen: 100 });
  return { name, settings, steps };
}

/** After the handshake, sends `frame` and observes the Close and the socket closing. */
function rejects(name: string, frame: string | Buffer, settings?: ServerSettings): Scenario {
  return { name, settings, steps: [...connected(), { send: frame }, { closed: true }] };
}

/** A record with the invalid UTF-8 sequence `C3 28` between `before` and `after`. */
function withInvalidUtf8(before: string, after: string): Buffer {
  return Buffer.concat([Buffer.from(before), Buffer.from([0xc3, 0x28]), Buffer.from(after + RS)]);
}

/** An Echo invocation whose framed size is exactly `size` bytes. */
function echoOfSize(size: number): string {
  const empty = invoke('1', 'Echo', '');
  return empty.replace('[""]', `["${'z'.repeat(size - Buffer.byteLength(empty))}"]`);
}

export const jsonParsingScenarios: Scenario[] = [
  // -- framing ----------------------------------------------------------------------------------------------
  reads('three messages in one frame', [invoke('1', 'Echo', 1) + invoke('2', 'Echo', 2) + invoke('3', 'Echo', 3)], 3),
  reads(
    'a message split across two frames',
    ['{"type":1,"invocationId":"1","tar', `get":"Echo","arguments":["split"]}${RS}`],
    1,
  ),
  reads(
    'a message split inside a multi-byte character',
    [
      Buffer.from('{"type":1,"invocationId":"1","target":"Echo","arguments":["\xc3', 'latin1'),
      Buffer.from(`\xa9"]}${RS}`, 'latin1'),
    ],
    1,
  ),
  reads(
    'a message and a half, then the rest',
    [invoke('1', 'Echo', 'one') + '{"type":1,"invocationId":"2",', `"target":"Echo","arguments":["two"]}${RS}`],
    2,
  ),

  // -- properties --------------------------------------------------------------------------------------------
  reads(
    'type last, as the official client writes it',
    [record('{"target":"Echo","arguments":["last"],"invocationId":"1","type":1}')],
    1,
  ),
  reads('arguments before target', [record('{"type":1,"arguments":["early"],"invocationId":"1","target":"Echo"}')], 1),
  reads(
    'unknown properties are skipped',
    [
      record(
        '{"type":1,"invocationId":"1","future":{"a":[1,{"b":null}]},"target":"Echo","arguments":["x"],"more":"y"}',
      ),
    ],
    1,
  ),
  reads(
    'headers are read and not echoed',
    [record('{"type":1,"headers":{"a":"b"},"invocationId":"1","target":"Echo","arguments":["h"]}')],
    1,
  ),
  reads(
    'an empty invocation id is a non-blocking invocation',
    [record('{"type":1,"invocationId":"","target":"Echo","arguments":[1]}'), invoke('2', 'Echo', 2)],
    1,
  ),
  // .NET reads a null invocation id as a string of the wrong kind: a Close with an error, then the socket closes.
  // Waiting for the close (rather than a fixed silence) keeps the two servers' close timing out of the comparison.
  {
    name: 'a null invocation id ends the connection with an error',
    steps: [
      ...connected(),
      { send: record('{"type":1,"invocationId":null,"target":"Echo","arguments":[1]}') },
      { send: invoke('2', 'Echo', 2) },
      { closed: true },
    ],
  },
  reads(
    'white space around a message',
    [record(' \r\n {"type":1,"invocationId":"1","target":"Echo","arguments":["ws"]} \t')],
    1,
  ),
  reads(
    'an escaped target name',
    [record('{"type":1,"invocationId":"1","target":"\\u0045cho","arguments":["escaped"]}')],
    1,
  ),

  differs(
    {
      name: 'an unknown message type, then an invocation',
      steps: [
        ...connected(),
        { send: record('{"type":42,"whatever":true}') },
        { send: invoke('1', 'Echo', 'after') },
        { receive: 1, timeoutMs: 500 },
      ],
    },
    'Unknown message types are skipped',
    [...CONNECTED, { receive: 1, messages: [], timedOut: true }],
    [...CONNECTED, { receive: 1, messages: ['{"type":3,"invocationId":"1","result":"after"}'], frames: 'text' }],
  ),
  differs(
    {
      name: 'an unknown message type, then an invocation in the same frame',
      steps: [
        ...connected(),
        { send: record('{"type":42}') + invoke('1', 'Echo', 'after') },
        { receive: 1, timeoutMs: 500 },
      ],
    },
    'Unknown message types are skipped',
    [...CONNECTED, { receive: 1, messages: [], timedOut: true }],
    [...CONNECTED, { receive: 1, messages: ['{"type":3,"invocationId":"1","result":"after"}'], frames: 'text' }],
  ),
  differs(
    {
      name: 'a type written as 1.0',
      steps: [
        ...connected(),
        { send: record('{"type":1.0,"invocationId":"1","target":"Echo","arguments":["x"]}') },
        { receive: 1 },
      ],
    },
    'JSON numbers are read as values',
    [
      ...CONNECTED,
      {
        receive: 1,
        messages: ['{"type":7,"error":"Connection closed with an error.","allowReconnect":true}'],
        frames: 'text',
      },
    ],
    [...CONNECTED, { receive: 1, messages: ['{"type":3,"invocationId":"1","result":"x"}'], frames: 'text' }],
  ),

  reads(
    'invalid UTF-8 in an unknown property is not an error',
    [withInvalidUtf8('{"type":1,"invocationId":"1","x":"', '","target":"Echo","arguments":["fine"]}')],
    1,
  ),
  differs(
    {
      exclusive: true,
      name: 'invalid UTF-8 in a string argument of a string parameter',
      steps: [
        ...connected(),
        { send: withInvalidUtf8('{"type":1,"invocationId":"1","target":"SendMessage","arguments":["me","', '"]}') },
        { listen: 200 },
      ],
    },
    'Invalid UTF-8 in a string argument is replaced',
    [
      ...CONNECTED,
      {
        listen: 200,
        messages: [
          `{"type":3,"invocationId":"1","error":"Failed to invoke 'SendMessage' due to an error on the server."}`,
        ],
        frames: 'text',
      },
    ],
    [
      ...CONNECTED,
      {
        listen: 200,
        messages: [
          '{"type":1,"target":"ReceiveMessage","arguments":["me","�("]}',
          '{"type":3,"invocationId":"1","result":null}',
        ],
        frames: 'text',
      },
    ],
  ),

  // -- unreadable messages ------------------------------------------------------------------------------------
  rejects('invalid JSON', record('{"type":1,"target":')),
  rejects('not JSON at all', record('hello world')),
  rejects('a JSON array', record('[1,2,3]')),
  rejects('a JSON string', record('"text"')),
  rejects('an empty record', RS),
  rejects('no type', record('{"invocationId":"1","target":"Echo","arguments":[]}')),
  rejects('a string type', record('{"type":"1","invocationId":"1","target":"Echo","arguments":[]}')),
  rejects('a null type', record('{"type":null,"invocationId":"1","target":"Echo","arguments":[]}')),
  rejects('a fractional type', record('{"type":1.5,"invocationId":"1","target":"Echo","arguments":[]}')),
  rejects('a numeric target', record('{"type":1,"invocationId":"1","target":5,"arguments":[]}')),
  rejects('no target', record('{"type":1,"invocationId":"1","arguments":[]}')),
  rejects('an empty target', record('{"type":1,"invocationId":"1","target":"","arguments":[]}')),
  rejects('arguments as a string', record('{"type":1,"invocationId":"1","target":"Echo","arguments":"x"}')),
  rejects('arguments as an object', record('{"type":1,"invocationId":"1","target":"Echo","arguments":{"0":1}}')),
  rejects('null arguments', record('{"type":1,"invocationId":"1","target":"Echo","arguments":null}')),
  rejects('no arguments', record('{"type":1,"invocationId":"1","target":"Echo"}')),
  rejects('a numeric invocation id', record('{"type":1,"invocationId":1,"target":"Echo","arguments":[1]}')),
  rejects(
    'headers as an array',
    record('{"type":1,"headers":["a"],"invocationId":"1","target":"Echo","arguments":[1]}'),
  ),
  rejects(
    'a header with a numeric value',
    record('{"type":1,"headers":{"a":1},"invocationId":"1","target":"Echo","arguments":[1]}'),
  ),
  rejects(
    'stream ids as a string',
    record('{"type":1,"invocationId":"1","target":"Echo","arguments":[1],"streamIds":"1"}'),
  ),
  rejects('a Completion without an invocation id', record('{"type":3,"result":1}')),
  rejects('a Completion with both error and result', record('{"type":3,"invocationId":"9","error":"e","result":1}')),
  rejects('a StreamItem without an item', record('{"type":2,"invocationId":"9"}')),
  rejects('a CancelInvocation without an invocation id', record('{"type":5}')),
  rejects('a Close with a non-boolean allowReconnect', record('{"type":7,"allowReconnect":"yes"}')),
  rejects(
    'invalid UTF-8 in the target',
    withInvalidUtf8('{"type":1,"invocationId":"1","target":"Echo', '","arguments":[1]}'),
  ),
  rejects(
    'the error text of invalid UTF-8 in the target with detailed errors',
    withInvalidUtf8('{"type":1,"invocationId":"1","target":"Echo', '","arguments":[1]}'),
    DETAILED,
  ),
  rejects(
    'the error text of invalid UTF-8 in the invocation id with detailed errors',
    withInvalidUtf8('{"type":1,"invocationId":"1', '","target":"Echo","arguments":[1]}'),
    DETAILED,
  ),
  rejects(
    'the error text of invalid UTF-8 in a header with detailed errors',
    withInvalidUtf8('{"type":1,"headers":{"a":"', '"},"invocationId":"1","target":"Echo","arguments":[1]}'),
    DETAILED,
  ),
  rejects('binary garbage', Buffer.from([0xff, 0x00, 0x1e])),
  rejects(
    'the error text of a missing property with detailed errors',
    record('{"type":1,"invocationId":"1","target":"Echo"}'),
    DETAILED,
  ),
  rejects(
    'the error text of a wrongly typed property with detailed errors',
    record('{"type":1,"invocationId":"1","target":5,"arguments":[]}'),
    DETAILED,
  ),
  rejects('the error text of a JSON array with detailed errors', record('[1,2,3]'), DETAILED),
  rejects('the error text of a JSON string with detailed errors', record('"text"'), DETAILED),
  rejects('the error text of a JSON number with detailed errors', record('42'), DETAILED),
  rejects('the error text of JSON true with detailed errors', record('true'), DETAILED),
  rejects('the error text of JSON null with detailed errors', record('null'), DETAILED),
  rejects(
    'the error text of a fractional type with detailed errors',
    record('{"type":1.5,"invocationId":"1","target":"Echo","arguments":[]}'),
    DETAILED,
  ),
  rejects(
    'the error text of a type beyond Int32 with detailed errors',
    record('{"type":4294967297,"invocationId":"1","target":"Echo","arguments":[]}'),
    DETAILED,
  ),
  rejects(
    'the error text of a null target with detailed errors',
    record('{"type":1,"invocationId":"1","target":null,"arguments":[]}'),
    DETAILED,
  ),
  rejects(
    'the error text of a null Completion error with detailed errors',
    record('{"type":3,"invocationId":"9","error":null}'),
    DETAILED,
  ),
  rejects(
    'the error text of a null header value with detailed errors',
    record('{"type":1,"headers":{"a":null},"invocationId":"1","target":"Echo","arguments":[1]}'),
    DETAILED,
  ),
  rejects(
    'the error text of a fractional sequence id with detailed errors',
    record('{"type":8,"sequenceId":1.5}'),
    DETAILED,
  ),
  rejects(
    'the error text of a null invocation id with detailed errors',
    record('{"type":1,"invocationId":null,"target":"Echo","arguments":[1]}'),
    DETAILED,
  ),
  differs(
    {
      name: 'bytes after the JSON object of a record',
      steps: [
        ...connected(),
        { send: record('{"type":1,"invocationId":"1","target":"Echo","arguments":["x"]}garbage') },
        { listen: 200 },
      ],
    },
    'Bytes after the JSON object of a record are refused',
    [...CONNECTED, { listen: 200, messages: ['{"type":3,"invocationId":"1","result":"x"}'], frames: 'text' }],
    [
      ...CONNECTED,
      {
        listen: 200,
        messages: ['{"type":7,"error":"Connection closed with an error.","allowReconnect":true}'],
        frames: 'text',
        closed: 1000,
      },
    ],
  ),
  differs(
    {
      name: 'a second JSON object in one record',
      steps: [
        ...connected(),
        { send: record('{"type":1,"invocationId":"1","target":"Echo","arguments":["x"]}{"type":6}') },
        { listen: 200 },
      ],
    },
    'Bytes after the JSON object of a record are refused',
    [...CONNECTED, { listen: 200, messages: ['{"type":3,"invocationId":"1","result":"x"}'], frames: 'text' }],
    [
      ...CONNECTED,
      {
        listen: 200,
        messages: ['{"type":7,"error":"Connection closed with an error.","allowReconnect":true}'],
        frames: 'text',
        closed: 1000,
      },
    ],
  ),
  {
    name: 'messages before an unreadable one in the same frame are still processed',
    steps: [...connected(), { send: invoke('1', 'Echo', 'before') + record('not json') }, { closed: true }],
  },

  // -- the receive limit ------------------------------------------------------------------------------------
  reads('a message of exactly the receive limit', [echoOfSize(LIMIT)], 1, SMALL_LIMIT),
  rejects('a message one byte over the receive limit', echoOfSize(LIMIT + 1), SMALL_LIMIT),
  reads(
    'two messages of the limit each in one frame',
    [echoOfSize(LIMIT) + echoOfSize(LIMIT).replace('"1"', '"2"')],
    2,
    SMALL_LIMIT,
  ),
  {
    name: 'an unfinished message beyond the receive limit fails before its separator arrives',
    settings: SMALL_LIMIT,
    steps: [...connected(), { send: echoOfSize(LIMIT + 100).slice(0, LIMIT + 50) }, { closed: true }],
  },
  reads('a message over the default limit of 32 KiB is refused', [echoOfSize(32 * 1024 + 1)], 0),
  reads('a message of exactly 32 KiB passes', [echoOfSize(32 * 1024)], 1),
];
