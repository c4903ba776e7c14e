/**
 * The hub handshake (docs/protocol.md §2.2): what is accepted (versions, protocol-name case, extra properties, any
 * framing), every error answer and its text, and what happens to bytes that follow the handshake. A refused handshake
 * is an error record and a normal close without a Close message.
 */
import type { Scenario, ServerSettings, Step } from '../engine/scenario';
import { HANDSHAKE, RS, differs, invoke, record } from './frames';

const DETAILED: ServerSettings = { enableDetailedErrors: true };
const SMALL_LIMIT: ServerSettings = { maximumReceiveMessageSize: 256 };
const SHORT_HANDSHAKE_TIMEOUT: ServerSettings = { handshakeTimeoutMs: 300 };
/**
 * When a connection left without a handshake is closed, as its client sees it: after about the timeout, not at once.
 * The server's timer starts when it accepts the connection, before the client has seen the upgrade answer, so on a
 * busy host the close reaches the client up to ~100 ms "early" (ASP.NET Core's was seen at 247 ms of 300).
 */
const CLOSED_BY_HANDSHAKE_TIMEOUT: readonly [number, number] = [150, 1500];

/** Sends `text` as the handshake of a fresh socket, then observes the answer and the moment after it. */
function handshake(name: string, text: string | Buffer, settings?: ServerSettings): Scenario {
  return { name, settings, steps: [{ open: '' }, { send: text }, { receive: 1 }, { listen: 100 }] };
}

/** Sends `text` as the handshake of a fresh socket and observes the error record and the close it expects. */
function refused(name: string, text: string | Buffer, settings?: ServerSettings): Scenario {
  return { name, settings, steps: [{ open: '' }, { send: text }, { closed: true }] };
}

/** A handshake padded with an extra property to exactly `size` bytes, separator included. */
function handshakeOfSize(size: number): string {
  const empty = `{"protocol":"json","version":1,"pad":""}${RS}`;
  return empty.replace('"pad":""', `"pad":"${'x'.repeat(size - empty.length)}"`);
}

/** A successful handshake followed by an Echo, to show the connection works. */
const THEN_ECHO: Step[] = [{ send: invoke('1', 'Echo', 'works') }, { receive: 1 }];

export const handshakeScenarios: Scenario[] = [
  // -- accepted ---------------------------------------------------------------------------------------------
  handshake('json version 1', HANDSHAKE),
  handshake('json version 0', record('{"protocol":"json","version":0}')),
  handshake('json version 2 without stateful reconnect', record('{"protocol":"json","version":2}')),
  handshake('a negative version', record('{"protocol":"json","version":-1}')),
  handshake('the protocol name in upper case', record('{"protocol":"JSON","version":1}')),
  handshake('the protocol name in mixed case', record('{"protocol":"Json","version":1}')),
  handshake('version before protocol', record('{"version":1,"protocol":"json"}')),
  handshake(
    'extra properties are ignored',
    record('{"protocol":"json","version":1,"extra":{"nested":[1,{"a":null}]},"more":true}'),
  ),
  handshake('white space around the handshake', record(' \r\n {"protocol":"json","version":1} \t')),
  handshake(
    'invalid UTF-8 in an unknown property is not an error',
    Buffer.concat([
      Buffer.from('{"protocol":"json","version":1,"x":"'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from(`"}${RS}`),
    ]),
  ),
  handshake(
    'a repeated protocol property: the last one counts',
    record('{"protocol":"xml","protocol":"json","version":1}'),
  ),
  {
    name: 'a handshake split across three frames',
    steps: [
      { open: '' },
      { send: '{"protocol":' },
      { wait: 30 },
      { send: '"json","ver' },
      { wait: 30 },
      { send: `sion":1}${RS}` },
      { receive: 1 },
      ...THEN_ECHO,
    ],
  },
  {
    name: 'a handshake in one fragmented WebSocket message',
    steps: [
      { open: '' },
      { send: '{"protocol":"json",', fragment: true },
      { send: `"version":1}${RS}` },
      { receive: 1 },
      ...THEN_ECHO,
    ],
  },
  {
    name: 'a handshake in a Binary frame',
    steps: [{ open: '' }, { send: Buffer.from(HANDSHAKE) }, { receive: 1 }, ...THEN_ECHO],
  },
  {
    name: 'messages after the handshake in the same frame are read',
    steps: [
      { open: '' },
      { send: HANDSHAKE + invoke('1', 'Echo', 'same frame') + invoke('2', 'Echo', 2) },
      { receive: 3 },
    ],
  },
  {
    name: 'a message after the handshake split between frames',
    steps: [
      { open: '' },
      { send: HANDSHAKE + '{"type":1,"invocationId":"1",' },
      { wait: 30 },
      { send: `"target":"Echo","arguments":["split"]}${RS}` },
      { receive: 2 },
    ],
  },
  {
    name: 'a handshake of exactly the receive limit',
    settings: SMALL_LIMIT,
    steps: [{ open: '' }, { send: handshakeOfSize(256) }, { receive: 1 }, ...THEN_ECHO],
  },

  // -- refused ----------------------------------------------------------------------------------------------
  refused('an unknown protocol', record('{"protocol":"xml","version":1}')),
  refused('an unknown protocol keeps its spelling in the error', record('{"protocol":"Xml","version":1}')),
  refused('messagepack, which neither server offers here', record('{"protocol":"messagepack","version":1}')),
  refused('version 3', record('{"protocol":"json","version":3}')),
  refused('a fractional version', record('{"protocol":"json","version":1.5}')),
  refused('the version as a string', record('{"protocol":"json","version":"1"}')),
  refused('the protocol as a number', record('{"protocol":1,"version":1}')),
  refused('no protocol', record('{"version":1}')),
  refused('no version', record('{"protocol":"json"}')),
  refused('a null protocol', record('{"protocol":null,"version":1}')),
  refused('not JSON', record('hello')),
  refused('a JSON array', record('["json",1]')),
  refused('an empty record', RS),
  refused('a hub message instead of a handshake', record('{"type":1,"target":"Echo","arguments":[1]}')),
  refused('a Ping instead of a handshake', record('{"type":6}')),
  refused(
    'the error text of invalid UTF-8 in the protocol name with detailed errors',
    Buffer.concat([Buffer.from('{"protocol":"js'), Buffer.from([0xff, 0xfe]), Buffer.from(`on","version":1}${RS}`)]),
    DETAILED,
  ),
  refused(
    'invalid UTF-8 in the protocol name',
    Buffer.concat([Buffer.from('{"protocol":"js'), Buffer.from([0xff, 0xfe]), Buffer.from(`on","version":1}${RS}`)]),
  ),
  differs(
    {
      name: 'bytes after the JSON object of the handshake record',
      steps: [{ open: '' }, { send: record('{"protocol":"json","version":1}garbage') }, { listen: 200 }],
    },
    'Bytes after the JSON object of a record are refused',
    [
      { open: '', accepted: true },
      { listen: 200, messages: ['{}'], frames: 'text' },
    ],
    [
      { open: '', accepted: true },
      {
        listen: 200,
        messages: ['{"error":"An unexpected error occurred during connection handshake."}'],
        frames: 'text',
        closed: 1000,
      },
    ],
  ),
  differs(
    {
      name: 'a version written as 1.0',
      steps: [{ open: '' }, { send: record('{"protocol":"json","version":1.0}') }, { listen: 200 }],
    },
    'JSON numbers are read as values',
    [
      { open: '', accepted: true },
      {
        listen: 200,
        messages: ['{"error":"An unexpected error occurred during connection handshake."}'],
        frames: 'text',
        closed: 1000,
      },
    ],
    [
      { open: '', accepted: true },
      { listen: 200, messages: ['{}'], frames: 'text' },
    ],
  ),
  refused('a byte-order mark before the handshake', record('\ufeff{"protocol":"json","version":1}')),
  refused('the error text of a malformed handshake with detailed errors', record('{"protocol":"json"}'), DETAILED),
  refused(
    'the error text of a wrongly typed version with detailed errors',
    record('{"protocol":"json","version":"1"}'),
    DETAILED,
  ),
  differs(
    refused('the error text of invalid JSON with detailed errors', record('{"protocol":'), DETAILED),
    'Detailed texts of JSON syntax errors',
    [
      { open: '', accepted: true },
      {
        closed: 1000,
        messages: [
          '{"error":"An unexpected error occurred during connection handshake. JsonReaderException: Expected depth to be zero at the end of the JSON payload. There is an open JSON object or array that should be closed. LineNumber: 0 | BytePositionInLine: 12."}',
        ],
        frames: 'text',
      },
    ],
    [
      { open: '', accepted: true },
      {
        closed: 1000,
        messages: [
          '{"error":"An unexpected error occurred during connection handshake. InvalidDataException: Error reading JSON."}',
        ],
        frames: 'text',
      },
    ],
  ),
  refused('the error text of a null protocol with detailed errors', record('{"protocol":null,"version":1}'), DETAILED),
  refused('the error text of a JSON array with detailed errors', record('["json",1]'), DETAILED),
  refused(
    'the error text of a hub message instead of a handshake with detailed errors',
    record('{"type":6}'),
    DETAILED,
  ),
  refused(
    'the error text of a fractional version with detailed errors',
    record('{"protocol":"json","version":1.5}'),
    DETAILED,
  ),
  refused('a handshake one byte over the receive limit', handshakeOfSize(257), SMALL_LIMIT),
  refused('a handshake without a separator beyond the receive limit', handshakeOfSize(400).slice(0, -1), SMALL_LIMIT),
  {
    name: 'no handshake within the handshake timeout',
    settings: SHORT_HANDSHAKE_TIMEOUT,
    steps: [{ open: '' }, { closed: true, withinMs: CLOSED_BY_HANDSHAKE_TIMEOUT }],
  },
  {
    name: 'half a handshake within the handshake timeout',
    settings: SHORT_HANDSHAKE_TIMEOUT,
    steps: [{ open: '' }, { send: '{"protocol":"json"' }, { closed: true, withinMs: CLOSED_BY_HANDSHAKE_TIMEOUT }],
  },
  {
    name: 'a handshake in time is not timed out later',
    settings: SHORT_HANDSHAKE_TIMEOUT,
    steps: [{ open: '' }, { send: HANDSHAKE }, { receive: 1 }, { listen: 600 }, ...THEN_ECHO],
  },
];
