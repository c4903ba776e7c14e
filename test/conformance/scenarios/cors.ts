/**
 * Cross-origin requests (docs/protocol.md §1.10): what a browser client on another origin needs — preflights of
 * negotiate and of the transport endpoint, credentials, the echoed origin — and what an origin that is not allowed gets
 * (no CORS headers), with one allowed origin, two, and any (`*`, echoed). Browsers apply no CORS to WebSockets; what a
 * server does with the `Origin` of an upgrade is its own scenario.
 */
import type { Scenario, ServerSettings, Step } from '../engine/scenario';
import { HANDSHAKE, differs } from './frames';

const ALLOWED = 'http://app.example';
const OTHER = 'http://other.example';
const CORS: ServerSettings = { corsOrigins: [ALLOWED] };
const TWO_ORIGINS: ServerSettings = { corsOrigins: [ALLOWED, 'http://second.example'] };
const ANY_ORIGIN: ServerSettings = { corsOrigins: ['*'] };
const CORS_HEADERS = [
  'access-control-allow-origin',
  'access-control-allow-credentials',
  'access-control-allow-methods',
  'access-control-allow-headers',
  'vary',
];
/** The headers the browser client asks to send on negotiate. */
const NEGOTIATE_PREFLIGHT = {
  'access-control-request-method': 'POST',
  'access-control-request-headers': 'x-requested-with,x-signalr-user-agent',
};

/** A preflight of negotiate from `origin`. */
function preflight(origin: string): Step {
  return {
    http: 'OPTIONS',
    path: '/negotiate?negotiateVersion=1',
    headers: { origin, ...NEGOTIATE_PREFLIGHT },
    observe: CORS_HEADERS,
  };
}

/** Negotiate from `origin`. */
function negotiateFrom(origin: string): Step {
  return {
    http: 'POST',
    path: '/negotiate?negotiateVersion=1',
    headers: { origin },
    observe: CORS_HEADERS,
    save: { token: 'connectionToken' },
  };
}

/** The answer to a request from an allowed origin, as each server writes it. */
function allowedAnswer(
  request: string,
  status: number,
  contentType: string,
  body: string,
  methods = '(none)',
  headers = '(none)',
) {
  const common = {
    request,
    status,
    'content-type': contentType,
    'access-control-allow-origin': ALLOWED,
    'access-control-allow-credentials': 'true',
    'access-control-allow-methods': methods,
    'access-control-allow-headers': headers,
  };
  return { reference: { ...common, vary: '(none)', body }, ours: { ...common, vary: 'Origin', body } };
}

/** The body of negotiate when the scenario saved only the token (the id is random). */
const NEGOTIATE_BODY =
  '{"negotiateVersion":1,"connectionId":"<random-1>","connectionToken":"<token>","availableTransports":[{"transport":"WebSockets","transferFormats":["Text","Binary"]},{"transport":"ServerSentEvents","transferFormats":["Text"]},{"transport":"LongPolling","transferFormats":["Text","Binary"]}]}';
/** The body of negotiate after a `negotiate` step, which saved both id and token. */
const NEGOTIATED_BODY =
  '{"negotiateVersion":1,"connectionId":"<id>","connectionToken":"<token>","availableTransports":[{"transport":"WebSockets","transferFormats":["Text","Binary"]},{"transport":"ServerSentEvents","transferFormats":["Text"]},{"transport":"LongPolling","transferFormats":["Text","Binary"]}]}';
const NEGOTIATED_PREFLIGHT = allowedAnswer(
  'OPTIONS /negotiate?negotiateVersion=1',
  204,
  '(none)',
  '',
  'POST',
  'x-requested-with,x-signalr-user-agent',
);
const NEGOTIATED = allowedAnswer('POST /negotiate?negotiateVersion=1', 200, 'application/json', NEGOTIATE_BODY);
const VARY = 'The answer to a single allowed origin varies by origin';

export const corsScenarios: Scenario[] = [
  // -- one allowed origin ---------------------------------------------------------------------------------------
  differs(
    { name: 'the preflight of negotiate allows the browser client', settings: CORS, steps: [preflight(ALLOWED)] },
    VARY,
    [NEGOTIATED_PREFLIGHT.reference],
    [NEGOTIATED_PREFLIGHT.ours],
  ),
  differs(
    {
      name: 'negotiate from an allowed origin echoes it with credentials',
      settings: CORS,
      steps: [negotiateFrom(ALLOWED)],
    },
    VARY,
    [NEGOTIATED.reference],
    [NEGOTIATED.ours],
  ),
  {
    name: 'negotiate from another origin gets no CORS headers',
    settings: CORS,
    steps: [negotiateFrom(OTHER)],
  },
  {
    name: 'the preflight from another origin is 204 without CORS headers',
    settings: CORS,
    steps: [preflight(OTHER)],
  },
  {
    name: 'an origin in upper case is another origin',
    settings: CORS,
    steps: [
      {
        http: 'POST',
        path: '/negotiate?negotiateVersion=1',
        headers: { origin: 'HTTP://APP.EXAMPLE' },
        observe: ['access-control-allow-origin'],
      },
    ],
  },
  {
    name: 'an origin with another port is another origin',
    settings: CORS,
    steps: [negotiateFrom('http://app.example:8080')],
  },
  {
    name: 'OPTIONS with an origin but no requested method is not a preflight',
    settings: CORS,
    steps: [
      {
        http: 'OPTIONS',
        path: '/negotiate?negotiateVersion=1',
        headers: { origin: ALLOWED },
        observe: ['access-control-allow-origin'],
      },
    ],
  },
  {
    name: 'a request without an origin gets no CORS headers',
    settings: CORS,
    steps: [{ http: 'POST', path: '/negotiate?negotiateVersion=1', observe: CORS_HEADERS }],
  },
  differs(
    {
      name: 'the preflight of a long-polling DELETE',
      settings: CORS,
      steps: [
        { negotiate: '?negotiateVersion=1' },
        {
          http: 'OPTIONS',
          path: '?id={{token}}',
          headers: {
            origin: ALLOWED,
            'access-control-request-method': 'DELETE',
            'access-control-request-headers': 'x-requested-with',
          },
          observe: CORS_HEADERS,
        },
      ],
    },
    VARY,
    [
      {
        request: 'POST /negotiate?negotiateVersion=1',
        status: 200,
        'content-type': 'application/json',
        body: NEGOTIATED_BODY,
      },
      allowedAnswer('OPTIONS ?id={{token}}', 204, '(none)', '', 'DELETE', 'x-requested-with').reference,
    ],
    [
      {
        request: 'POST /negotiate?negotiateVersion=1',
        status: 200,
        'content-type': 'application/json',
        body: NEGOTIATED_BODY,
      },
      allowedAnswer('OPTIONS ?id={{token}}', 204, '(none)', '', 'DELETE', 'x-requested-with').ours,
    ],
  ),
  differs(
    {
      name: 'long polls and sends from an allowed origin carry the CORS headers',
      settings: CORS,
      steps: [
        negotiateFrom(ALLOWED),
        {
          http: 'GET',
          path: '?id={{token}}',
          headers: { origin: ALLOWED },
          observe: ['access-control-allow-origin', 'vary'],
        },
        {
          http: 'POST',
          path: '?id={{token}}',
          headers: { origin: ALLOWED },
          body: HANDSHAKE,
          observe: ['access-control-allow-origin', 'vary'],
        },
        {
          http: 'DELETE',
          path: '?id={{token}}',
          headers: { origin: ALLOWED },
          observe: ['access-control-allow-origin', 'vary'],
        },
      ],
    },
    VARY,
    [
      NEGOTIATED.reference,
      {
        request: 'GET ?id={{token}}',
        status: 200,
        'content-type': 'application/octet-stream',
        'access-control-allow-origin': ALLOWED,
        vary: '(none)',
        body: '',
      },
      {
        request: 'POST ?id={{token}}',
        status: 200,
        'content-type': 'text/plain',
        'access-control-allow-origin': ALLOWED,
        vary: '(none)',
        body: '',
      },
      {
        request: 'DELETE ?id={{token}}',
        status: 202,
        'content-type': 'text/plain',
        'access-control-allow-origin': ALLOWED,
        vary: '(none)',
        body: '',
      },
    ],
    [
      NEGOTIATED.ours,
      {
        request: 'GET ?id={{token}}',
        status: 200,
        'content-type': 'application/octet-stream',
        'access-control-allow-origin': ALLOWED,
        vary: 'Origin',
        body: '',
      },
      {
        request: 'POST ?id={{token}}',
        status: 200,
        'content-type': 'text/plain',
        'access-control-allow-origin': ALLOWED,
        vary: 'Origin',
        body: '',
      },
      {
        request: 'DELETE ?id={{token}}',
        status: 202,
        'content-type': 'text/plain',
        'access-control-allow-origin': ALLOWED,
        vary: 'Origin',
        body: '',
      },
    ],
  ),
  {
    name: 'an error answer of the transport endpoint from an allowed origin',
    settings: TWO_ORIGINS,
    steps: [{ http: 'GET', path: '?id=AAAAAAAAAAAAAAAAAAAAAA', headers: { origin: ALLOWED }, observe: CORS_HEADERS }],
  },
  differs(
    {
      name: 'the Server-Sent Events stream from an allowed origin carries the CORS headers',
      settings: CORS,
      steps: [
        { negotiate: '?negotiateVersion=1' },
        { sse: '?id={{token}}', headers: { origin: ALLOWED }, observe: ['access-control-allow-origin', 'vary'] },
      ],
    },
    VARY,
    [
      {
        request: 'POST /negotiate?negotiateVersion=1',
        status: 200,
        'content-type': 'application/json',
        body: NEGOTIATED_BODY,
      },
      {
        sse: '?id={{token}}',
        status: 200,
        'content-type': 'text/event-stream',
        'access-control-allow-origin': ALLOWED,
        vary: '(none)',
      },
    ],
    [
      {
        request: 'POST /negotiate?negotiateVersion=1',
        status: 200,
        'content-type': 'application/json',
        body: NEGOTIATED_BODY,
      },
      {
        sse: '?id={{token}}',
        status: 200,
        'content-type': 'text/event-stream',
        'access-control-allow-origin': ALLOWED,
        vary: 'Origin',
      },
    ],
  ),

  // -- two allowed origins, and any origin -------------------------------------------------------------------
  {
    name: 'with two allowed origins the preflight echoes the one asking and varies by origin',
    settings: TWO_ORIGINS,
    steps: [preflight(ALLOWED)],
  },
  {
    name: 'with two allowed origins negotiate from another origin gets no CORS headers',
    settings: TWO_ORIGINS,
    steps: [negotiateFrom(OTHER)],
  },
  {
    name: 'with any origin allowed, each is echoed with credentials',
    settings: ANY_ORIGIN,
    steps: [preflight('http://anywhere.example'), negotiateFrom('http://elsewhere.example')],
  },

  // -- WebSockets --------------------------------------------------------------------------------------------
  {
    name: 'a WebSocket from an allowed origin',
    settings: CORS,
    steps: [{ open: '', headers: { origin: ALLOWED } }, { send: HANDSHAKE }, { receive: 1 }],
  },
  {
    name: "a WebSocket from the server's own origin",
    settings: CORS,
    steps: [{ open: '', headers: { origin: '{{server}}' } }, { send: HANDSHAKE }, { receive: 1 }],
  },
  differs(
    {
      name: 'a WebSocket from an origin that is not allowed',
      settings: CORS,
      steps: [{ open: '', headers: { origin: OTHER } }, { send: HANDSHAKE }, { receive: 1 }],
    },
    'WebSockets from other origins are refused',
    [
      { open: '', accepted: true },
      { receive: 1, messages: ['{}'], frames: 'text' },
    ],
    [
      { open: '', refused: 403, 'content-type': 'text/plain', body: 'Origin not allowed' },
      { notSent: 'the socket is closed' },
      { receive: 1, messages: [], closedFirst: '(never opened)' },
    ],
  ),
  differs(
    {
      name: 'a WebSocket from another origin on a server without CORS',
      settings: { transports: ['WebSockets'] },
      steps: [{ open: '', headers: { origin: OTHER } }, { send: HANDSHAKE }, { receive: 1 }],
    },
    'WebSockets from other origins are refused',
    [
      { open: '', accepted: true },
      { receive: 1, messages: ['{}'], frames: 'text' },
    ],
    [
      { open: '', refused: 403, 'content-type': 'text/plain', body: 'Origin not allowed' },
      { notSent: 'the socket is closed' },
      { receive: 1, messages: [], closedFirst: '(never opened)' },
    ],
  ),
];
