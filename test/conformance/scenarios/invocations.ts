/**
 * Invocation outcomes (docs/protocol.md §2.4, §2.6): results of every JSON type, `null` for void methods, every error
 * text with and without detailed errors, non-blocking invocations, method-name case, messages the server ignores, and
 * routing seen from raw frames (a connection sending to itself, its user, its group).
 */
import type { Scenario, ServerSettings, Step } from '../engine/scenario';
import { CONNECTED, RS, alone, connected, differs, invoke, negotiatedAndConnected, record } from './frames';

const DETAILED: ServerSettings = { enableDetailedErrors: true };

/** After the handshake, sends `frames` and observes `replies` messages, then a short silence. */
function outcome(
  name: string,
  frames: Array<string | Buffer>,
  replies: number,
  settings?: ServerSettings,
  query = '',
): Scenario {
  const steps: Step[] = [...connected(query), ...frames.map((frame) => ({ send: frame }))];
  if (replies > 0) steps.push({ receive: replies });
  steps.push({ listen: 100 });
  return { name, settings, steps };
}

/** `depth` arrays nested in each other: `[[…]]`. */
function nested(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

/** A record with the invalid UTF-8 sequence `C3 28` between `before` and `after`. */
function withInvalidUtf8(before: string, after: string): Buffer {
  return Buffer.concat([Buffer.from(before), Buffer.from([0xc3, 0x28]), Buffer.from(after + RS)]);
}

/** Echo of a JSON literal, written exactly as given. */
function echoLiteral(name: string, literal: string): Scenario {
  return outcome(name, [record(`{"type":1,"invocationId":"1","target":"Echo","arguments":[${literal}]}`)], 1);
}

export const invocationScenarios: Scenario[] = [
  // -- results ----------------------------------------------------------------------------------------------
  echoLiteral('Echo returns a string', '"héllo ✓ \\"quoted\\" \\\\ back"'),
  echoLiteral('Echo returns an empty string', '""'),
  echoLiteral('Echo returns an integer', '42'),
  echoLiteral('Echo returns a negative integer', '-7'),
  echoLiteral('Echo returns a large integer', '5000000000'),
  echoLiteral('Echo returns a fraction', '-3.25'),
  echoLiteral('Echo returns true', 'true'),
  echoLiteral('Echo returns false', 'false'),
  echoLiteral('Echo returns null', 'null'),
  echoLiteral('Echo returns an array', '[1,"two",null,[3],{"four":4}]'),
  echoLiteral('Echo returns an object with its property order', '{"b":1,"a":{"d":[true,null],"c":"x"},"empty":{}}'),
  echoLiteral('Echo returns an empty array', '[]'),
  echoLiteral('Echo returns HTML-sensitive characters unescaped', '"<script>&\'"'),
  differs(
    echoLiteral('Echo returns numbers as written', '[1.0,2.50,1e3,-0,1E-7,12345678901234567890]'),
    'JSON numbers are read as values',
    [
      ...CONNECTED,
      {
        receive: 1,
        messages: ['{"type":3,"invocationId":"1","result":[1.0,2.50,1e3,-0,1E-7,12345678901234567890]}'],
        frames: 'text',
      },
      { listen: 100, messages: [] },
    ],
    [
      ...CONNECTED,
      {
        receive: 1,
        messages: ['{"type":3,"invocationId":"1","result":[1,2.5,1000,0,1e-7,12345678901234567000]}'],
        frames: 'text',
      },
      { listen: 100, messages: [] },
    ],
  ),
  differs(
    echoLiteral(
      'Echo of characters .NET escapes',
      '"\\ud83d\\ude00 \\u2028 \\ufeff \\u007f \\u0001 \\u00ad \\u200b \\ufffd \\u00e9 \\u4e2d"',
    ),
    'Characters .NET escapes in strings are written as they are',
    [
      ...CONNECTED,
      {
        receive: 1,
        messages: [
          '{"type":3,"invocationId":"1","result":"\\uD83D\\uDE00 \\u2028 \\uFEFF \\u007F \\u0001 \u00ad \u200b � é 中"}',
        ],
        frames: 'text',
      },
      { listen: 100, messages: [] },
    ],
    [
      ...CONNECTED,
      {
        receive: 1,
        messages: ['{"type":3,"invocationId":"1","result":"😀 \u2028 \ufeff \u007f \\u0001 \u00ad \u200b � é 中"}'],
        frames: 'text',
      },
      { listen: 100, messages: [] },
    ],
  ),
  differs(
    outcome(
      'Echo of invalid UTF-8 in a string',
      [withInvalidUtf8('{"type":1,"invocationId":"1","target":"Echo","arguments":["', '"]}')],
      1,
    ),
    'Characters .NET escapes in strings are written as they are',
    [
      ...CONNECTED,
      { receive: 1, messages: ['{"type":3,"invocationId":"1","result":"\\uFFFD("}'], frames: 'text' },
      { listen: 100, messages: [] },
    ],
    [
      ...CONNECTED,
      { receive: 1, messages: ['{"type":3,"invocationId":"1","result":"�("}'], frames: 'text' },
      { listen: 100, messages: [] },
    ],
  ),
  differs(
    echoLiteral('Echo of a lone surrogate', '"\\ud800"'),
    'JSON that System.Text.Json refuses is read',
    [
      ...CONNECTED,
      {
        receive: 1,
        messages: ['{"type":7,"error":"Connection closed with an error.","allowReconnect":true}'],
        frames: 'text',
      },
      { listen: 100, messages: [], closed: 1000 },
    ],
    [
      ...CONNECTED,
      { receive: 1, messages: ['{"type":3,"invocationId":"1","result":"\\ud800"}'], frames: 'text' },
      { listen: 100, messages: [] },
    ],
  ),
  echoLiteral('Echo of arrays nested to the maximum depth of 64', nested(62)),
  differs(
    echoLiteral('Echo of arrays nested one level deeper than 64', nested(63)),
    'JSON that System.Text.Json refuses is read',
    [
      ...CONNECTED,
      {
        receive: 1,
        messages: ['{"type":7,"error":"Connection closed with an error.","allowReconnect":true}'],
        frames: 'text',
      },
      { listen: 100, messages: [], closed: 1000 },
    ],
    [
      ...CONNECTED,
      {
        receive: 1,
        messages: [
          '{"type":3,"invocationId":"1","result":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}',
        ],
        frames: 'text',
      },
      { listen: 100, messages: [] },
    ],
  ),
  outcome('a void method completes with result null', [invoke('1', 'JoinRoom', 'room')], 1),
  alone(outcome('SendMessage reaches the caller before its completion', [invoke('1', 'SendMessage', 'me', 'hi')], 2)),
  alone(outcome('the payload types the server writes (SendValues)', [invoke('1', 'SendValues')], 2)),
  outcome('WhoAmI without a user is null', [invoke('1', 'WhoAmI')], 1),
  outcome('WhoAmI is the user of the connect request', [invoke('1', 'WhoAmI')], 1, undefined, '?user=alice'),

  // -- method names and arguments ---------------------------------------------------------------------------
  outcome('method names are case-insensitive (lower case)', [invoke('1', 'echo', 'lower')], 1),
  outcome('method names are case-insensitive (upper case)', [invoke('1', 'ECHO', 'upper')], 1),
  outcome('an unknown method', [invoke('1', 'NoSuchMethod', 1)], 1),
  outcome('an unknown method with detailed errors', [invoke('1', 'NoSuchMethod', 1)], 1, DETAILED),
  outcome('too many arguments', [invoke('1', 'Echo', 1, 2)], 1),
  outcome('too few arguments', [invoke('1', 'Echo')], 1),
  outcome('too many arguments with detailed errors', [invoke('1', 'Echo', 1, 2)], 1, DETAILED),
  alone(outcome('an argument of the wrong type', [invoke('1', 'SendMessage', 1, 2)], 1)),
  alone(outcome('an argument of the wrong type with detailed errors', [invoke('1', 'SendMessage', 1, 2)], 1, DETAILED)),
  alone(
    outcome(
      'an argument the method cannot bind (an object for a string array)',
      [invoke('1', 'SendToConnections', { a: 1 }, 'u', 'm')],
      1,
    ),
  ),
  differs(
    outcome('null for a room name', [invoke('1', 'JoinRoom', null)], 1),
    'Null for a parameter typed string',
    [
      ...CONNECTED,
      {
        receive: 1,
        messages: [
          `{"type":3,"invocationId":"1","error":"An unexpected error occurred invoking 'JoinRoom' on the server."}`,
        ],
        frames: 'text',
      },
      { listen: 100, messages: [] },
    ],
    [
      ...CONNECTED,
      {
        receive: 1,
        messages: [
          `{"type":3,"invocationId":"1","error":"Failed to invoke 'JoinRoom' due to an error on the server."}`,
        ],
        frames: 'text',
      },
      { listen: 100, messages: [] },
    ],
  ),
  alone(outcome('null for a message', [invoke('1', 'SendMessage', null, null)], 2)),

  // -- errors thrown by hub methods -------------------------------------------------------------------------
  outcome('a HubException reaches the caller', [invoke('1', 'Fail', 'the reason')], 1),
  outcome('a HubException with detailed errors', [invoke('1', 'Fail', 'the reason')], 1, DETAILED),
  outcome('another error is hidden', [invoke('1', 'Crash')], 1),
  {
    name: 'another error with detailed errors names its type and message',
    settings: DETAILED,
    steps: [...connected(), { send: invoke('1', 'Crash') }, { receive: 1 }],
    knownDifference: {
      entry: 'Exception type names in detailed errors',
      reference: [
        ...CONNECTED,
        {
          receive: 1,
          messages: [
            `{"type":3,"invocationId":"1","error":"An unexpected error occurred invoking 'Crash' on the server. InvalidOperationException: Crash() failed with a secret detail"}`,
          ],
          frames: 'text',
        },
      ],
      ours: [
        ...CONNECTED,
        {
          receive: 1,
          messages: [
            `{"type":3,"invocationId":"1","error":"An unexpected error occurred invoking 'Crash' on the server. Error: Crash() failed with a secret detail"}`,
          ],
          frames: 'text',
        },
      ],
    },
  },
  outcome(
    'the connection stays usable after errors',
    [invoke('1', 'Crash'), invoke('2', 'NoSuchMethod'), invoke('3', 'Echo', 'still here')],
    3,
  ),

  // -- non-blocking invocations -----------------------------------------------------------------------------
  outcome(
    'an invocation without id gets no completion',
    [invoke(undefined, 'Echo', 'quiet'), invoke('2', 'Echo', 'loud')],
    1,
  ),
  outcome(
    'a failing invocation without id gets no completion',
    [
      invoke(undefined, 'Fail', 'x'),
      invoke(undefined, 'NoSuchMethod'),
      invoke(undefined, 'Echo', 1, 2),
      invoke('4', 'Echo', 'after'),
    ],
    1,
  ),
  alone(
    outcome('a non-blocking SendMessage still sends', [invoke(undefined, 'SendMessage', 'me', 'fire and forget')], 1),
  ),

  // -- messages the server takes but does not answer --------------------------------------------------------
  outcome(
    'a StreamInvocation of a plain method',
    [record('{"type":4,"invocationId":"1","target":"Echo","arguments":[1]}')],
    1,
  ),
  outcome(
    'a StreamInvocation of an unknown method',
    [record('{"type":4,"invocationId":"1","target":"NoSuchMethod","arguments":[]}')],
    1,
  ),
  outcome(
    'a Completion for an unknown invocation is ignored',
    [record('{"type":3,"invocationId":"99","result":1}'), invoke('1', 'Echo', 'after')],
    1,
  ),
  outcome(
    'a StreamItem for an unknown stream is ignored',
    [record('{"type":2,"invocationId":"99","item":1}'), invoke('1', 'Echo', 'after')],
    1,
  ),
  outcome(
    'a CancelInvocation for an unknown invocation is ignored',
    [record('{"type":5,"invocationId":"99"}'), invoke('1', 'Echo', 'after')],
    1,
  ),
  outcome(
    'Ack and Sequence without stateful reconnect are ignored',
    [record('{"type":8,"sequenceId":1}'), record('{"type":9,"sequenceId":1}'), invoke('1', 'Echo', 'after')],
    1,
  ),
  outcome(
    'invocations are answered in order',
    [invoke('1', 'Echo', 1) + invoke('2', 'JoinRoom', 'r') + invoke('3', 'Fail', 'x') + invoke('4', 'Echo', 4)],
    4,
  ),

  // -- routing seen from raw frames ------------------------------------------------------------------------
  {
    name: 'SendToConnection with the own connection id',
    settings: { transports: ['WebSockets'] },
    steps: [
      ...negotiatedAndConnected(),
      { send: invoke('1', 'SendToConnection', '{{id}}', 'me', 'to myself') },
      { receive: 2 },
    ],
  },
  {
    name: 'SendToConnections with the own id listed twice delivers once',
    settings: { transports: ['WebSockets'] },
    steps: [
      ...negotiatedAndConnected(),
      { send: invoke('1', 'SendToConnections', ['{{id}}', '{{id}}'], 'me', 'once') },
      { receive: 2 },
      { listen: 200 },
    ],
  },
  {
    name: 'SendToUsers with the user listed twice delivers once per connection',
    steps: [
      ...connected('?user=dave'),
      { send: invoke('1', 'SendToUsers', ['dave', 'dave'], 'me', 'once') },
      { receive: 2 },
      { listen: 200 },
    ],
  },
  alone({
    name: 'SendOthers does not reach the caller',
    steps: [...connected(), { send: invoke('1', 'SendOthers', 'me', 'not for me') }, { receive: 1 }, { listen: 100 }],
  }),
  {
    name: 'SendToUser reaches every connection of that user',
    steps: [
      ...connected('?user=carol'),
      { open: '?user=carol', socket: 'second' },
      { send: '{"protocol":"json","version":1}\u001e', socket: 'second' },
      { receive: 1, socket: 'second' },
      { send: invoke('1', 'SendToUser', 'carol', 'me', 'to carol') },
      { receive: 2 },
      { receive: 1, socket: 'second' },
    ],
  },
  {
    name: 'a group message after JoinRoom, none after LeaveRoom',
    steps: [
      ...connected(),
      { send: invoke('1', 'JoinRoom', 'lobby') + invoke('2', 'SendToRoom', 'lobby', 'me', 'inside') },
      { receive: 3 },
      { send: invoke('3', 'LeaveRoom', 'lobby') + invoke('4', 'SendToRoom', 'lobby', 'me', 'outside') },
      { receive: 2 },
      { listen: 100 },
    ],
  },
  {
    name: 'SendToRooms sends once per group the connection is in',
    steps: [
      ...connected(),
      {
        send:
          invoke('1', 'JoinRoom', 'a') +
          invoke('2', 'JoinRoom', 'b') +
          invoke('3', 'SendToRooms', ['a', 'b'], 'me', 'twice'),
      },
      { receive: 5 },
      { listen: 100 },
    ],
  },
];
