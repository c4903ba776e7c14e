/**
 * Ping, Close and timeouts (docs/protocol.md §2.8): client Pings and Closes, server keep-alive pings, the client
 * timeout that starts with the client's first Ping, and the close frames that end a connection. Intervals are short on
 * both sides so the suite stays fast; timing is observed as bounds wide enough for .NET's 1 s heartbeat.
 */
import type { Scenario, ServerSettings, Step } from '../engine/scenario';
import { CLOSE, CONNECTED, PING, connected, invoke, record } from './frames';

/** Pings every 300 ms. */
const FAST_KEEP_ALIVE: ServerSettings = { keepAliveIntervalMs: 300 };
/** A client that pinged and then stays silent for 500 ms is closed. */
const SHORT_CLIENT_TIMEOUT: ServerSettings = { clientTimeoutIntervalMs: 500 };
const SHORT_CLIENT_TIMEOUT_DETAILED: ServerSettings = { clientTimeoutIntervalMs: 500, enableDetailedErrors: true };

/** Pings every 200 ms for `times` rounds. */
function keepPinging(times: number): Step[] {
  return Array.from({ length: times }, (): Step[] => [{ send: PING }, { wait: 200 }]).flat();
}

export const pingCloseKeepAliveScenarios: Scenario[] = [
  // -- client messages ----------------------------------------------------------------------------------------
  {
    name: 'a client Ping gets no answer',
    steps: [
      ...connected(),
      { send: PING },
      { listen: 200 },
      { send: invoke('1', 'Echo', 'after ping') },
      { receive: 1 },
    ],
  },
  {
    name: 'a client Close is answered with a Close and a normal close',
    steps: [...connected(), { send: CLOSE }, { closed: true }],
  },
  {
    name: 'a client Close with an error is answered the same way',
    steps: [
      ...connected(),
      { send: record('{"type":7,"error":"client failed","allowReconnect":true}') },
      { closed: true },
    ],
  },
  {
    name: 'messages after a Close in the same frame are not processed',
    steps: [...connected(), { send: CLOSE + invoke('1', 'Echo', 'too late') }, { closed: true }],
  },
  {
    name: 'a Close after an invocation in the same frame: the completion comes first',
    steps: [...connected(), { send: invoke('1', 'Echo', 'first') + CLOSE }, { closed: true }],
  },
  {
    name: 'a client Close before the handshake is a handshake error',
    steps: [{ open: '' }, { send: CLOSE }, { closed: true }],
  },

  // -- keep-alive ---------------------------------------------------------------------------------------------
  {
    name: 'with the default keep-alive no Ping comes within a second',
    steps: [...connected(), { listen: 1000 }],
  },
  {
    name: 'server pings with a 300 ms keep-alive',
    settings: FAST_KEEP_ALIVE,
    steps: [
      ...connected(),
      {
        listen: 2200,
        count: {
          message: '{"type":6}',
          ranges: { 'about one a second (1–3)': [1, 3], 'about every 300 ms (5–8)': [5, 8] },
        },
      },
    ],
    knownDifference: {
      entry: 'Short keep-alive intervals are honoured',
      reference: [
        ...CONNECTED,
        { listen: 2200, '{"type":6}': 'about one a second (1–3)', messages: [], frames: 'text' },
      ],
      ours: [...CONNECTED, { listen: 2200, '{"type":6}': 'about every 300 ms (5–8)', messages: [], frames: 'text' }],
    },
  },
  {
    name: 'server pings are Text frames holding {"type":6}',
    settings: FAST_KEEP_ALIVE,
    steps: [...connected(), { receive: 1, timeoutMs: 2500 }],
  },
  {
    name: 'server pings do not start before the handshake',
    settings: FAST_KEEP_ALIVE,
    steps: [{ open: '' }, { listen: 1300 }, { send: '{"protocol":"json","version":1}\u001e' }, { receive: 1 }],
  },

  // -- client timeout -----------------------------------------------------------------------------------------
  {
    name: 'a client that never pings is not timed out',
    settings: SHORT_CLIENT_TIMEOUT,
    steps: [...connected(), { listen: 1500 }, { send: invoke('1', 'Echo', 'still here') }, { receive: 1 }],
  },
  {
    name: 'a client that pinged once and then stays silent is closed with an error',
    settings: SHORT_CLIENT_TIMEOUT,
    steps: [...connected(), { send: PING }, { closed: true, withinMs: [450, 2600] }],
  },
  {
    name: 'the client-timeout Close with detailed errors',
    settings: SHORT_CLIENT_TIMEOUT_DETAILED,
    steps: [...connected(), { send: PING }, { closed: true, withinMs: [450, 2600] }],
  },
  {
    name: 'a client that keeps pinging stays connected',
    settings: SHORT_CLIENT_TIMEOUT,
    steps: [...connected(), ...keepPinging(8), { send: invoke('1', 'Echo', 'alive') }, { receive: 1 }],
  },
  {
    name: 'any message, not only a Ping, keeps the client alive',
    settings: SHORT_CLIENT_TIMEOUT,
    steps: [
      ...connected(),
      { send: PING },
      ...Array.from({ length: 6 }, (_, i): Step[] => [{ wait: 200 }, { send: invoke(undefined, 'Echo', i) }]).flat(),
      { send: invoke('1', 'Echo', 'alive') },
      { receive: 1 },
    ],
  },
];
