/**
 * `POST {hub}/negotiate` (docs/protocol.md §1.2): version selection, error bodies (status 200), methods, request
 * content types, query-key case, and the exact response text (property order, compact JSON).
 *
 * Most scenarios offer only WebSockets on both servers, so the response lists the same transports; what a default
 * server offers is its own scenario.
 */
import type { Scenario, ServerSettings } from '../engine/scenario';

const WEBSOCKETS_ONLY: ServerSettings = { transports: ['WebSockets'] };

/** One negotiate request and its response. */
function negotiate(
  name: string,
  query: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Scenario {
  return {
    name,
    settings: WEBSOCKETS_ONLY,
    steps: [
      {
        http: init.method ?? 'POST',
        path: `/negotiate${query}`,
        headers: init.headers,
        body: init.body,
        save: { id: 'connectionId', token: 'connectionToken' },
      },
    ],
  };
}

export const negotiateScenarios: Scenario[] = [
  // -- versions ---------------------------------------------------------------------------------------------
  negotiate('version 1: id, token and transports in .NET property order', '?negotiateVersion=1'),
  negotiate('version 0: no token (the id is the token)', '?negotiateVersion=0'),
  negotiate('no version: version 0', ''),
  negotiate('a higher version is answered with version 1', '?negotiateVersion=2'),
  negotiate('a much higher version is answered with version 1', '?negotiateVersion=2147483647'),
  negotiate('a version beyond Int32 is a non-integer version', '?negotiateVersion=2147483648'),
  negotiate('a negative version is refused by name', '?negotiateVersion=-1'),
  negotiate('a non-numeric version is an error with status 200', '?negotiateVersion=abc'),
  negotiate('an empty version is an error', '?negotiateVersion='),
  negotiate('a decimal version is an error', '?negotiateVersion=1.0'),
  negotiate('a signed and padded version parses like int.TryParse', '?negotiateVersion=%20%2B1%20'),
  negotiate(
    'a repeated version key is joined with a comma and is not an integer',
    '?negotiateVersion=1&negotiateVersion=1',
  ),

  // -- query keys ---------------------------------------------------------------------------------------------
  negotiate('the version key is case-insensitive (upper case)', '?NEGOTIATEVERSION=1'),
  negotiate('the version key is case-insensitive (Pascal case)', '?NegotiateVersion=1'),
  negotiate(
    'stateful reconnect asked for but not allowed is left out',
    '?negotiateVersion=1&useStatefulReconnect=true',
  ),
  negotiate('other query parameters are ignored', '?negotiateVersion=1&user=alice&_=123'),

  // -- methods ------------------------------------------------------------------------------------------------
  negotiate('GET is 405', '?negotiateVersion=1', { method: 'GET' }),
  negotiate('PUT is 405', '?negotiateVersion=1', { method: 'PUT' }),
  negotiate('DELETE is 405', '?negotiateVersion=1', { method: 'DELETE' }),
  negotiate('PATCH is 405', '?negotiateVersion=1', { method: 'PATCH' }),
  negotiate('OPTIONS without CORS is 405', '?negotiateVersion=1', { method: 'OPTIONS' }),
  negotiate('HEAD is 405', '?negotiateVersion=1', { method: 'HEAD' }),
  negotiate('a trailing slash still reaches negotiate', '/?negotiateVersion=1'),

  // -- request bodies -----------------------------------------------------------------------------------------
  negotiate('application/json with an empty body', '?negotiateVersion=1', {
    headers: { 'content-type': 'application/json' },
  }),
  negotiate('application/json with an invalid JSON body is ignored', '?negotiateVersion=1', {
    headers: { 'content-type': 'application/json' },
    body: '{not json',
  }),
  negotiate('text/plain as the browser client sends it', '?negotiateVersion=1', {
    headers: { 'content-type': 'text/plain;charset=UTF-8', 'x-requested-with': 'XMLHttpRequest' },
    body: '',
  }),
  negotiate('a form body is ignored', '?negotiateVersion=1', {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'negotiateVersion=0',
  }),

  // -- what is offered ----------------------------------------------------------------------------------------
  {
    name: 'a server with every transport enabled lists them in .NET order',
    steps: [{ negotiate: '?negotiateVersion=1' }],
  },
  {
    name: 'two negotiations get two different ids and tokens',
    settings: WEBSOCKETS_ONLY,
    steps: [
      { negotiate: '?negotiateVersion=1', as: 'a' },
      { negotiate: '?negotiateVersion=1', as: 'b' },
    ],
  },
];
