/**
 * The WebSockets transport and its endpoint `{hub}` (docs/protocol.md §1.1, §1.5, §1.8, §1.9): which id opens which
 * connection, the status codes and bodies of refused upgrades, POST and DELETE on a WebSocket connection, methods
 * that are not allowed, requests for transports a server does not offer, and what happens at the frame level
 * (frame types, invalid UTF-8 in a Text frame, close codes).
 *
 * Both servers offer only WebSockets here, so a GET without an upgrade is a long poll refused the same way by both.
 */
import type { Scenario, ServerSettings } from '../engine/scenario';
import { CONNECTED, HANDSHAKE, PING, alone, connected, differs, invoke, negotiatedAndConnected } from './frames';

const WEBSOCKETS_ONLY: ServerSettings = { transports: ['WebSockets'] };

/** A scenario with the WebSockets-only settings. */
function scenario(name: string, steps: Scenario['steps']): Scenario {
  return { name, settings: WEBSOCKETS_ONLY, steps };
}

export const webSocketTransportScenarios: Scenario[] = [
  // -- which ids open a WebSocket ----------------------------------------------------------------------------
  scenario('without an id a WebSocket starts a connection of its own', [
    ...connected(),
    { send: invoke('1', 'Echo', 'direct') },
    { receive: 1 },
  ]),
  scenario('the token of a v1 connection opens it', [
    ...negotiatedAndConnected(),
    { send: invoke('1', 'Echo', 'v1') },
    { receive: 1 },
  ]),
  scenario('the id of a v0 connection is its token', [
    { negotiate: '?negotiateVersion=0' },
    { open: '?id={{id}}' },
    { send: HANDSHAKE },
    { receive: 1 },
  ]),
  scenario('the public id of a v1 connection is 404', [{ negotiate: '?negotiateVersion=1' }, { open: '?id={{id}}' }]),
  scenario('an unknown id is 404', [{ open: '?id=AAAAAAAAAAAAAAAAAAAAAA' }]),
  scenario('an empty id starts a connection of its own', [{ open: '?id=' }, { send: HANDSHAKE }, { receive: 1 }]),
  scenario('the id key is case-insensitive', [
    { negotiate: '?negotiateVersion=1' },
    { open: '?ID={{token}}' },
    { send: HANDSHAKE },
    { receive: 1 },
  ]),
  scenario('a second WebSocket for an open connection is 409', [
    ...negotiatedAndConnected(),
    { open: '?id={{token}}', socket: 'second' },
    { send: invoke('1', 'Echo', 'first still works') },
    { receive: 1 },
  ]),
  scenario('a second WebSocket before the first handshake is 409', [
    { negotiate: '?negotiateVersion=1' },
    { open: '?id={{token}}' },
    { open: '?id={{token}}', socket: 'second' },
  ]),
  scenario('a connection whose WebSocket closed is gone (404)', [
    ...negotiatedAndConnected(),
    { close: true },
    { closed: true },
    { wait: 100 },
    { open: '?id={{token}}', socket: 'again' },
  ]),
  scenario('the hub URL with a trailing slash', [
    { negotiate: '?negotiateVersion=1' },
    { open: '/?id={{token}}' },
    { send: HANDSHAKE },
    { receive: 1 },
  ]),

  // -- POST and DELETE ---------------------------------------------------------------------------------------
  scenario('POST on a WebSocket connection is 405', [
    ...negotiatedAndConnected(),
    { http: 'POST', path: '?id={{token}}', body: invoke('1', 'Echo', 'posted') },
    // What was POSTed must not reach the hub.
    { listen: 200 },
  ]),
  scenario('POST without an id is 400', [{ http: 'POST', path: '', body: HANDSHAKE }]),
  scenario('POST with an unknown id is 404', [{ http: 'POST', path: '?id=AAAAAAAAAAAAAAAAAAAAAA', body: HANDSHAKE }]),
  scenario('POST with the public id of a v1 connection is 404', [
    { negotiate: '?negotiateVersion=1' },
    { http: 'POST', path: '?id={{id}}', body: HANDSHAKE },
  ]),
  scenario('bytes POSTed before the WebSocket opens are read first', [
    { negotiate: '?negotiateVersion=1' },
    { http: 'POST', path: '?id={{token}}', body: HANDSHAKE },
    { open: '?id={{token}}' },
    { send: invoke('1', 'Echo', 'after the POST') },
    { receive: 2 },
  ]),
  scenario('DELETE on a WebSocket connection is 400', [
    ...negotiatedAndConnected(),
    { http: 'DELETE', path: '?id={{token}}' },
    { send: invoke('1', 'Echo', 'still open') },
    { receive: 1 },
  ]),
  scenario('DELETE on a negotiated connection without a transport is 400', [
    { negotiate: '?negotiateVersion=1' },
    { http: 'DELETE', path: '?id={{token}}' },
  ]),
  scenario('DELETE without an id is 400', [{ http: 'DELETE', path: '' }]),
  scenario('DELETE with an unknown id is 404', [{ http: 'DELETE', path: '?id=AAAAAAAAAAAAAAAAAAAAAA' }]),

  // -- methods ------------------------------------------------------------------------------------------------
  scenario('PUT is 405', [{ negotiate: '?negotiateVersion=1' }, { http: 'PUT', path: '?id={{token}}', body: 'x' }]),
  scenario('PATCH is 405', [{ negotiate: '?negotiateVersion=1' }, { http: 'PATCH', path: '?id={{token}}', body: 'x' }]),
  scenario('OPTIONS without CORS is 405', [{ http: 'OPTIONS', path: '' }]),
  scenario('HEAD is 405', [{ negotiate: '?negotiateVersion=1' }, { http: 'HEAD', path: '?id={{token}}' }]),

  // -- transports that are not offered ------------------------------------------------------------------------
  scenario('a long poll without an id is 400', [{ http: 'GET', path: '' }]),
  scenario('a long poll with an unknown id is 404', [{ http: 'GET', path: '?id=AAAAAAAAAAAAAAAAAAAAAA' }]),
  scenario('a long poll on a server without long polling is 404 and names the transport', [
    { negotiate: '?negotiateVersion=1' },
    { http: 'GET', path: '?id={{token}}' },
  ]),
  scenario('an event stream on a server without Server-Sent Events is 404 and names the transport', [
    { negotiate: '?negotiateVersion=1' },
    { http: 'GET', path: '?id={{token}}', headers: { accept: 'text/event-stream' } },
  ]),
  {
    name: 'a WebSocket on a server without WebSockets is 404 and names the transport',
    settings: { transports: ['LongPolling'] },
    steps: [{ open: '' }],
  },
  scenario('a long poll on a WebSocket connection is refused', [
    ...negotiatedAndConnected(),
    { http: 'GET', path: '?id={{token}}' },
  ]),

  // -- frames -------------------------------------------------------------------------------------------------
  alone(
    scenario('everything the server sends on a JSON connection is in Text frames', [
      ...connected(),
      { send: invoke('1', 'SendMessage', 'me', 'text') + invoke('2', 'Fail', 'x') },
      { receive: 3 },
    ]),
  ),
  scenario('invalid UTF-8 in a Text frame', [
    ...connected(),
    {
      send: Buffer.concat([
        Buffer.from('{"type":1,"invocationId":"1","target":"Echo","arguments":["'),
        Buffer.from([0xc3, 0x28]),
        Buffer.from('"]}\u001e'),
      ]),
      frame: 'text',
    },
    { closed: true },
  ]),
  differs(
    scenario('a frame larger than 1 MiB made of small messages', [
      ...connected(),
      { send: PING.repeat(Math.ceil((1.5 * 1024 * 1024) / PING.length)) },
      { send: invoke('1', 'Echo', 'after the big frame') },
      { receive: 1 },
      { listen: 200 },
    ]),
    'WebSocket frames over 1 MiB close the socket',
    [
      ...CONNECTED,
      { receive: 1, messages: ['{"type":3,"invocationId":"1","result":"after the big frame"}'], frames: 'text' },
      { listen: 200, messages: [] },
    ],
    [...CONNECTED, { receive: 1, messages: [], closedFirst: 1009 }, { listen: 200, messages: [], closed: 1009 }],
  ),

  // -- the client closes the socket ---------------------------------------------------------------------------
  scenario('the client closes the socket with 1000 after the handshake', [
    ...connected(),
    { close: 1000 },
    { closed: true },
  ]),
  // The official Node client's stop(): ws sends a close frame without a status; the server's answer carries 1000.
  scenario('the client closes the socket without a status code', [
    ...connected(),
    { close: 'no status' },
    { closed: true },
  ]),
  differs(
    scenario('the client closes the socket with 1001', [...connected(), { close: 1001 }, { closed: true }]),
    'The close code of a client that closes is echoed',
    [...CONNECTED, { closed: 1000, messages: [] }],
    [...CONNECTED, { closed: 1001, messages: [] }],
  ),
  differs(
    scenario('the client closes the socket with an application code', [
      ...connected(),
      { close: 4000 },
      { closed: true },
    ]),
    'The close code of a client that closes is echoed',
    [...CONNECTED, { closed: 1000, messages: [] }],
    [...CONNECTED, { closed: 4000, messages: [] }],
  ),
  scenario('the client closes the socket during the handshake', [
    { open: '' },
    { send: '{"protocol":"json",' },
    { close: 1000 },
    { closed: true },
  ]),
];
