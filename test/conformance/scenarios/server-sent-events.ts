/**
 * The Server-Sent Events transport (docs/protocol.md §1.6, §1.8, §1.9): the stream's headers and first bytes, events
 * carrying whole hub messages, sends by POST, the refusals of the transport endpoint for good and bad ids, methods and
 * states, and how the stream ends — by a Close, a failed handshake, a timeout, or the client going away.
 */
import type { Scenario, ServerSettings, Step } from '../engine/scenario';
import { HANDSHAKE, PING, alone, invoke } from './frames';

/**
 * Every transport: a GET with `Accept: text/event-stream` is a stream, one without it a long poll, and the
 * cannot-change-transports answers can be seen. Few distinct settings keep the number of servers (and the suite's
 * time) down.
 */
const SSE: ServerSettings = {};
/** A short client timeout (it starts with the client's first Ping) and a small message limit. */
const SSE_LIMITS: ServerSettings = { clientTimeoutIntervalMs: 500, maximumReceiveMessageSize: 1024 };

/** Negotiates, opens the stream and completes the handshake by POST; `{{token}}` names the connection. */
function streaming(): Step[] {
  return [
    { negotiate: '?negotiateVersion=1' },
    { sse: '?id={{token}}' },
    { http: 'POST', path: '?id={{token}}', body: HANDSHAKE },
    { receive: 1 },
  ];
}

export const serverSentEventsScenarios: Scenario[] = [
  {
    name: 'negotiate offers Server-Sent Events with the Text format only',
    settings: SSE,
    steps: [{ negotiate: '?negotiateVersion=1' }],
  },
  {
    name: 'the stream starts with a comment line and carries .NET headers',
    settings: SSE,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { sse: '?id={{token}}', observe: ['cache-control', 'pragma', 'content-encoding'], rawPrefix: 3 },
    ],
  },
  {
    name: 'the handshake goes by POST and its answer comes as an event',
    settings: SSE,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { sse: '?id={{token}}' },
      { http: 'POST', path: '?id={{token}}', body: HANDSHAKE, headers: { 'content-type': 'text/plain;charset=UTF-8' } },
      { receive: 1 },
      { http: 'POST', path: '?id={{token}}', body: invoke('1', 'Echo', 'over SSE') },
      { receive: 1 },
    ],
  },
  {
    name: 'an event is data lines ending in a blank line',
    settings: SSE,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      // POSTed before the stream opens, so the answer is among the stream's first bytes.
      { http: 'POST', path: '?id={{token}}', body: HANDSHAKE },
      { sse: '?id={{token}}', rawPrefix: 16 },
    ],
  },
  {
    name: 'a stream without an id is 400',
    settings: SSE,
    steps: [{ sse: '' }],
  },
  {
    name: 'a stream with an unknown id is 404',
    settings: SSE,
    steps: [{ sse: '?id=AAAAAAAAAAAAAAAAAAAAAA' }],
  },
  {
    name: 'a second stream for a connection is 409',
    settings: SSE,
    steps: [{ negotiate: '?negotiateVersion=1' }, { sse: '?id={{token}}' }, { sse: '?id={{token}}', socket: 'second' }],
  },
  {
    name: 'DELETE on a Server-Sent Events connection is 400',
    settings: SSE,
    steps: [{ negotiate: '?negotiateVersion=1' }, { sse: '?id={{token}}' }, { http: 'DELETE', path: '?id={{token}}' }],
  },
  {
    name: 'a WebSocket for a Server-Sent Events connection cannot change transports',
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { sse: '?id={{token}}', socket: 'events' },
      { open: '?id={{token}}' },
    ],
  },
  {
    name: 'a POST with an empty body is 200',
    settings: SSE,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { sse: '?id={{token}}' },
      { http: 'POST', path: '?id={{token}}', body: '' },
    ],
  },
  {
    name: 'a Close message ends the stream',
    settings: SSE,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { sse: '?id={{token}}' },
      { http: 'POST', path: '?id={{token}}', body: HANDSHAKE },
      { receive: 1 },
      { http: 'POST', path: '?id={{token}}', body: '{"type":7}\u001e' },
      { closed: true },
    ],
  },
  {
    // The reference server offers no MessagePack (see pending-messagepack.ts), so it refuses the protocol by name;
    // a server that offers it must refuse it here for the transfer format.
    name: 'the messagepack protocol cannot run over Server-Sent Events',
    settings: SSE,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { sse: '?id={{token}}' },
      { http: 'POST', path: '?id={{token}}', body: '{"protocol":"messagepack","version":1}\u001e' },
      { closed: true },
    ],
  },

  // -- ids, methods and states -------------------------------------------------------------------------------
  {
    name: 'the id of a v0 connection opens its stream',
    settings: SSE,
    steps: [
      { negotiate: '?negotiateVersion=0' },
      { sse: '?id={{id}}' },
      { http: 'POST', path: '?id={{id}}', body: HANDSHAKE },
      { receive: 1 },
    ],
  },
  {
    name: 'the public id of a v1 connection is 404 for a stream',
    settings: SSE,
    steps: [{ negotiate: '?negotiateVersion=1' }, { sse: '?id={{id}}' }],
  },
  {
    name: 'POST without an id is 400',
    settings: SSE,
    steps: [{ http: 'POST', path: '', body: HANDSHAKE }],
  },
  {
    name: 'POST with an unknown id is 404',
    settings: SSE,
    steps: [{ http: 'POST', path: '?id=AAAAAAAAAAAAAAAAAAAAAA', body: HANDSHAKE }],
  },
  {
    name: 'DELETE without an id is 400 and with an unknown id 404',
    settings: SSE,
    steps: [
      { http: 'DELETE', path: '' },
      { http: 'DELETE', path: '?id=AAAAAAAAAAAAAAAAAAAAAA' },
    ],
  },
  {
    name: 'PUT, PATCH and HEAD on the transport endpoint are 405',
    settings: SSE,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { sse: '?id={{token}}' },
      { http: 'PUT', path: '?id={{token}}', body: 'x' },
      { http: 'PATCH', path: '?id={{token}}', body: 'x' },
      { http: 'HEAD', path: '?id={{token}}' },
    ],
  },
  {
    name: 'a long poll for a Server-Sent Events connection cannot change transports',
    settings: SSE,
    steps: [{ negotiate: '?negotiateVersion=1' }, { sse: '?id={{token}}' }, { http: 'GET', path: '?id={{token}}' }],
  },
  {
    name: 'a stream for a long-polling connection cannot change transports',
    settings: SSE,
    steps: [{ negotiate: '?negotiateVersion=1' }, { http: 'GET', path: '?id={{token}}' }, { sse: '?id={{token}}' }],
  },
  {
    name: 'a stream for a WebSocket connection cannot change transports',
    settings: SSE,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { open: '?id={{token}}', socket: 'socket' },
      { sse: '?id={{token}}' },
    ],
  },
  {
    name: 'bytes POSTed before the stream opens are read when it does',
    settings: SSE,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { http: 'POST', path: '?id={{token}}', body: HANDSHAKE + invoke('1', 'Echo', 'early') },
      { sse: '?id={{token}}' },
      { receive: 2 },
    ],
  },
  {
    name: 'a POST may carry several messages, and a message may span POSTs',
    settings: SSE,
    steps: [
      ...streaming(),
      {
        http: 'POST',
        path: '?id={{token}}',
        body: invoke('1', 'Echo', 1) + invoke('2', 'Echo', 2) + '{"type":1,"invocationId":"3",',
      },
      { http: 'POST', path: '?id={{token}}', body: '"target":"Echo","arguments":[3]}\u001e' },
      { receive: 3 },
    ],
  },
  {
    name: 'a POST of any content type is read',
    settings: SSE,
    steps: [
      ...streaming(),
      {
        http: 'POST',
        path: '?id={{token}}',
        body: invoke('1', 'Echo', 'json'),
        headers: { 'content-type': 'application/json' },
      },
      {
        http: 'POST',
        path: '?id={{token}}',
        body: invoke('2', 'Echo', 'octets'),
        headers: { 'content-type': 'application/octet-stream' },
      },
      {
        http: 'POST',
        path: '?id={{token}}',
        body: invoke('3', 'Echo', 'form'),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      },
      { receive: 3 },
    ],
  },
  alone({
    name: 'a broadcast arrives as an event',
    settings: SSE,
    steps: [
      ...streaming(),
      { http: 'POST', path: '?id={{token}}', body: invoke('1', 'SendMessage', 'me', 'to all') },
      { receive: 2 },
    ],
  }),

  // -- how the stream ends -----------------------------------------------------------------------------------
  {
    name: 'an invalid handshake ends the stream with the error',
    settings: SSE,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { sse: '?id={{token}}' },
      { http: 'POST', path: '?id={{token}}', body: '{"protocol":"json","version":99}\u001e' },
      { closed: true },
      { http: 'POST', path: '?id={{token}}', body: PING },
    ],
  },
  {
    name: 'no handshake within the handshake timeout ends the stream',
    // Apart: on a busy machine a short handshake timeout could end the handshakes of other scenarios.
    settings: { handshakeTimeoutMs: 500 },
    // Counted from the stream's start, which a busy machine may see late: only the upper bound tells.
    steps: [{ negotiate: '?negotiateVersion=1' }, { sse: '?id={{token}}' }, { closed: true, withinMs: [0, 4000] }],
  },
  {
    name: 'a client that pinged and then stays silent is closed with an error',
    settings: SSE_LIMITS,
    steps: [
      ...streaming(),
      { http: 'POST', path: '?id={{token}}', body: PING },
      { closed: true, withinMs: [400, 4000] },
    ],
  },
  {
    name: 'keep-alive pings arrive as events',
    settings: { keepAliveIntervalMs: 1000 },
    steps: [...streaming(), { listen: 2600, count: { message: '{"type":6}', ranges: { 'one to three': [1, 3] } } }],
  },
  {
    name: 'a client that goes away ends its connection',
    settings: SSE,
    steps: [
      ...streaming(),
      { close: true },
      { wait: 300 },
      { http: 'POST', path: '?id={{token}}', body: PING },
      { sse: '?id={{token}}', socket: 'again' },
    ],
  },
  {
    name: 'a message too big for the receive limit closes the stream with an error',
    settings: SSE_LIMITS,
    steps: [
      ...streaming(),
      { http: 'POST', path: '?id={{token}}', body: invoke('1', 'Echo', 'x'.repeat(2000)) },
      { closed: true },
    ],
  },
];
