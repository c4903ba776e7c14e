/**
 * The long-polling transport (docs/protocol.md §1.7, §1.8, §1.9): the first poll, polls that carry data, time out, are
 * superseded or end; sends by POST; DELETE; the disconnect timeout between polls; no keep-alive pings; the
 * refusals of the transport endpoint for good and bad ids, methods and states; how a connection ends (a Close, a
 * failed handshake, the client timeout) as the polls see it.
 */
import type { Scenario, ServerSettings, Step } from '../engine/scenario';
import { HANDSHAKE, PING, alone, invoke } from './frames';

/**
 * Every transport: a GET without `Accept: text/event-stream` is a long poll, and the cannot-change-transports answers
 * can be seen. Few distinct settings keep the number of servers (and the suite's time) down.
 */
const LP: ServerSettings = {};
/** Polls that end after 2 s, and pings every 300 ms that must never reach a long-polling client. */
const SHORT_POLLS: ServerSettings = { keepAliveIntervalMs: 300, longPollTimeoutMs: 2000 };
/**
 * A short client timeout (it starts with the client's first Ping) and a small message limit; each scenario here
 * meets only one of them. Polls wait 5 s, longer than the timeout.
 */
const LP_LIMITS: ServerSettings = {
  clientTimeoutIntervalMs: 500,
  maximumReceiveMessageSize: 1024,
  longPollTimeoutMs: 5000,
};
/**
 * Short handshake and disconnect timeouts each apart: on a busy machine they could end the handshakes, or the
 * connections between polls, of other scenarios.
 */
const HANDSHAKE_TIMEOUT: ServerSettings = { handshakeTimeoutMs: 500, longPollTimeoutMs: 5000 };
const SHORT_DISCONNECT: ServerSettings = { disconnectTimeoutMs: 1500 };
/** The headers every poll answer carries. */
const POLL_HEADERS = ['cache-control', 'pragma', 'expires'];

/** Negotiates, makes the first poll and completes the handshake; the next poll gets its answer. */
function polling(): Step[] {
  return [
    { negotiate: '?negotiateVersion=1' },
    { http: 'GET', path: '?id={{token}}' },
    { http: 'POST', path: '?id={{token}}', body: HANDSHAKE },
    { http: 'GET', path: '?id={{token}}' },
  ];
}

// A `wait` after a background poll lets the poll reach the server before the request that should end it, also on a
// busy machine.
export const longPollingScenarios: Scenario[] = [
  {
    name: 'the first poll returns at once, empty',
    settings: LP,
    steps: [{ negotiate: '?negotiateVersion=1' }, { http: 'GET', path: '?id={{token}}', observe: POLL_HEADERS }],
  },
  {
    name: 'a poll returns the handshake answer POSTed meanwhile',
    settings: LP,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { http: 'GET', path: '?id={{token}}' },
      { http: 'GET', path: '?id={{token}}', observe: POLL_HEADERS, background: 'poll' },
      { wait: 500 },
      { http: 'POST', path: '?id={{token}}', body: HANDSHAKE },
      { awaitHttp: 'poll', withinMs: [0, 3000] },
    ],
  },
  {
    name: 'one poll carries every message buffered',
    settings: LP,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { http: 'GET', path: '?id={{token}}' },
      { http: 'POST', path: '?id={{token}}', body: HANDSHAKE + invoke('1', 'Echo', 1) + invoke('2', 'Echo', 2) },
      { wait: 500 },
      { http: 'GET', path: '?id={{token}}' },
    ],
  },
  {
    name: 'a poll without data ends after the poll timeout',
    settings: SHORT_POLLS,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { http: 'GET', path: '?id={{token}}' },
      { http: 'GET', path: '?id={{token}}', background: 'poll' },
      { awaitHttp: 'poll', withinMs: [1500, 4500] },
    ],
  },
  {
    name: 'a new poll ends the pending one with 204',
    settings: LP,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { http: 'GET', path: '?id={{token}}' },
      { http: 'GET', path: '?id={{token}}', background: 'old' },
      { wait: 500 },
      { http: 'GET', path: '?id={{token}}', background: 'new' },
      { awaitHttp: 'old', withinMs: [0, 3000] },
    ],
  },
  {
    name: 'DELETE is 202 and ends the pending poll with 204',
    settings: LP,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { http: 'GET', path: '?id={{token}}' },
      { http: 'GET', path: '?id={{token}}', background: 'poll' },
      { wait: 500 },
      { http: 'DELETE', path: '?id={{token}}' },
      { awaitHttp: 'poll', withinMs: [0, 3000] },
      { wait: 100 },
      { http: 'GET', path: '?id={{token}}' },
    ],
  },
  {
    name: 'a Close message: the poll returns the Close, the next poll is 204',
    settings: LP,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { http: 'GET', path: '?id={{token}}' },
      { http: 'POST', path: '?id={{token}}', body: HANDSHAKE },
      { http: 'GET', path: '?id={{token}}' },
      { http: 'POST', path: '?id={{token}}', body: '{"type":7}\u001e' },
      { wait: 100 },
      { http: 'GET', path: '?id={{token}}' },
      { http: 'GET', path: '?id={{token}}' },
    ],
  },
  {
    name: 'a poll without an id is 400',
    settings: LP,
    steps: [{ http: 'GET', path: '' }],
  },
  {
    name: 'a poll with an unknown id is 404',
    settings: LP,
    steps: [{ http: 'GET', path: '?id=AAAAAAAAAAAAAAAAAAAAAA' }],
  },
  {
    name: 'POST on a long-polling connection is 200 text/plain',
    settings: LP,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { http: 'GET', path: '?id={{token}}' },
      { http: 'POST', path: '?id={{token}}', body: HANDSHAKE },
    ],
  },
  {
    name: 'a connection that stops polling is gone after the disconnect timeout',
    // The disconnect timeout is long enough that a busy machine reaches the first poll in time; the heartbeat checks
    // once a second.
    settings: SHORT_DISCONNECT,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { http: 'GET', path: '?id={{token}}' },
      { wait: 4000 },
      { http: 'GET', path: '?id={{token}}' },
    ],
  },
  {
    name: 'no keep-alive pings on long polling',
    settings: SHORT_POLLS,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { http: 'GET', path: '?id={{token}}' },
      { http: 'POST', path: '?id={{token}}', body: HANDSHAKE },
      { http: 'GET', path: '?id={{token}}' },
      { http: 'GET', path: '?id={{token}}', background: 'poll' },
      { awaitHttp: 'poll', withinMs: [1500, 4500] },
    ],
  },
  {
    name: 'a WebSocket for a long-polling connection cannot change transports',
    steps: [{ negotiate: '?negotiateVersion=1' }, { http: 'GET', path: '?id={{token}}' }, { open: '?id={{token}}' }],
  },

  // -- more ids, methods and states ----------------------------------------------------------------------------
  {
    name: 'the id of a v0 connection is its token for polls',
    settings: LP,
    steps: [
      { negotiate: '?negotiateVersion=0' },
      { http: 'GET', path: '?id={{id}}' },
      { http: 'POST', path: '?id={{id}}', body: HANDSHAKE },
      { http: 'GET', path: '?id={{id}}' },
    ],
  },
  {
    name: 'the public id of a v1 connection is 404 for a poll',
    settings: LP,
    steps: [{ negotiate: '?negotiateVersion=1' }, { http: 'GET', path: '?id={{id}}' }],
  },
  {
    name: 'POST and DELETE without an id are 400, with an unknown id 404',
    settings: LP,
    steps: [
      { http: 'POST', path: '', body: HANDSHAKE },
      { http: 'POST', path: '?id=AAAAAAAAAAAAAAAAAAAAAA', body: HANDSHAKE },
      { http: 'DELETE', path: '' },
      { http: 'DELETE', path: '?id=AAAAAAAAAAAAAAAAAAAAAA' },
    ],
  },
  {
    name: 'PUT, PATCH and HEAD on the transport endpoint are 405',
    settings: LP,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { http: 'GET', path: '?id={{token}}' },
      { http: 'PUT', path: '?id={{token}}', body: 'x' },
      { http: 'PATCH', path: '?id={{token}}', body: 'x' },
      { http: 'HEAD', path: '?id={{token}}' },
    ],
  },
  {
    name: 'DELETE before the first poll',
    settings: LP,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { http: 'DELETE', path: '?id={{token}}' },
      { http: 'GET', path: '?id={{token}}' },
    ],
  },
  {
    name: 'DELETE without a pending poll ends the connection; a second DELETE is 404',
    settings: LP,
    steps: [
      ...polling(),
      { http: 'DELETE', path: '?id={{token}}' },
      { wait: 100 },
      { http: 'DELETE', path: '?id={{token}}' },
      { http: 'POST', path: '?id={{token}}', body: PING },
    ],
  },
  {
    name: 'bytes POSTed before the first poll are read',
    settings: LP,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { http: 'POST', path: '?id={{token}}', body: HANDSHAKE },
      { http: 'GET', path: '?id={{token}}' },
      { wait: 300 },
      { http: 'GET', path: '?id={{token}}' },
    ],
  },
  {
    name: 'a message may span POSTs, and a POST may be empty',
    settings: LP,
    steps: [
      ...polling(),
      { http: 'POST', path: '?id={{token}}', body: '{"type":1,"invocationId":"1",' },
      { http: 'POST', path: '?id={{token}}', body: '' },
      { http: 'POST', path: '?id={{token}}', body: '"target":"Echo","arguments":["joined"]}\u001e' },
      { wait: 300 },
      { http: 'GET', path: '?id={{token}}' },
    ],
  },
  {
    name: 'a POST of any content type is read',
    settings: LP,
    steps: [
      ...polling(),
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
      { wait: 300 },
      { http: 'GET', path: '?id={{token}}' },
    ],
  },
  {
    name: 'a poll answers with an invocation POSTed meanwhile, and the cache headers',
    settings: LP,
    steps: [
      ...polling(),
      { http: 'GET', path: '?id={{token}}', observe: POLL_HEADERS, background: 'poll' },
      { wait: 500 },
      { http: 'POST', path: '?id={{token}}', body: invoke('1', 'Echo', 'answered by the poll') },
      { awaitHttp: 'poll', withinMs: [0, 3000] },
    ],
  },
  {
    name: 'a poll that times out carries the cache headers',
    settings: SHORT_POLLS,
    steps: [...polling(), { http: 'GET', path: '?id={{token}}', observe: POLL_HEADERS }],
  },
  {
    name: 'a superseded poll carries the cache headers',
    settings: LP,
    steps: [
      ...polling(),
      { http: 'GET', path: '?id={{token}}', observe: POLL_HEADERS, background: 'old' },
      { wait: 500 },
      { http: 'GET', path: '?id={{token}}', background: 'new' },
      { awaitHttp: 'old', withinMs: [0, 3000] },
    ],
  },
  alone({
    name: 'a broadcast waits for the next poll',
    settings: LP,
    steps: [
      ...polling(),
      { http: 'POST', path: '?id={{token}}', body: invoke('1', 'SendMessage', 'me', 'to all') },
      { wait: 300 },
      { http: 'GET', path: '?id={{token}}' },
    ],
  }),
  {
    name: 'an event stream request for a long-polling connection',
    settings: LP,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { http: 'GET', path: '?id={{token}}' },
      { http: 'GET', path: '?id={{token}}', headers: { accept: 'text/event-stream' } },
    ],
  },

  // -- how a connection ends ----------------------------------------------------------------------------------
  {
    name: 'an invalid handshake: the next poll has the error, the one after is 204',
    settings: LP,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { http: 'GET', path: '?id={{token}}' },
      { http: 'POST', path: '?id={{token}}', body: '{"protocol":"xml","version":1}\u001e' },
      { wait: 100 },
      { http: 'GET', path: '?id={{token}}' },
      { http: 'GET', path: '?id={{token}}' },
      { http: 'GET', path: '?id={{token}}' },
    ],
  },
  {
    name: 'a pending poll gets the Close of a Close message',
    settings: LP,
    steps: [
      ...polling(),
      { http: 'GET', path: '?id={{token}}', background: 'poll' },
      { wait: 500 },
      { http: 'POST', path: '?id={{token}}', body: '{"type":7}\u001e' },
      { awaitHttp: 'poll', withinMs: [0, 3000] },
      { http: 'GET', path: '?id={{token}}' },
    ],
  },
  {
    name: 'the client timeout ends a polling connection with an error',
    settings: LP_LIMITS,
    steps: [
      ...polling(),
      { http: 'POST', path: '?id={{token}}', body: PING },
      { http: 'GET', path: '?id={{token}}', background: 'poll' },
      // Counted from the poll, which a busy machine may send late: only the upper bound, well below the 5 s poll
      // timeout, tells that the timeout ended it.
      { awaitHttp: 'poll', withinMs: [0, 4000] },
      { http: 'GET', path: '?id={{token}}' },
    ],
  },
  {
    name: 'no handshake within the handshake timeout',
    settings: HANDSHAKE_TIMEOUT,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { http: 'GET', path: '?id={{token}}' },
      { http: 'GET', path: '?id={{token}}', background: 'poll' },
      // Counted from the poll, which a busy machine may send late: only the upper bound, well below the 5 s poll
      // timeout, tells that the timeout ended it.
      { awaitHttp: 'poll', withinMs: [0, 4000] },
      { http: 'GET', path: '?id={{token}}' },
    ],
  },
  {
    name: 'a message too big for the receive limit ends the connection with an error',
    settings: LP_LIMITS,
    steps: [
      ...polling(),
      { http: 'POST', path: '?id={{token}}', body: invoke('1', 'Echo', 'x'.repeat(2000)) },
      { wait: 300 },
      { http: 'GET', path: '?id={{token}}' },
      { http: 'GET', path: '?id={{token}}' },
    ],
  },
];
