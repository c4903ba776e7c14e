/**
 * PENDING — not executed yet: fastify-signalr has no CORS option yet. When it does, add the setting's translation
 * to `engine/servers.ts` and a test file that runs this table (`conformanceSuite('CORS', corsScenarios)`).
 *
 * What a browser client on another origin needs (spec §1.10): preflights of negotiate and of the transport
 * endpoint, credentials, the echoed origin, and no CORS headers for an origin that is not allowed.
 */
import type { Scenario, ServerSettings } from '../engine/scenario';

const ALLOWED = 'http://app.example';
const CORS: ServerSettings = { transports: ['WebSockets', 'LongPolling'], corsOrigins: [ALLOWED] };
const CORS_HEADERS = [
  'access-control-allow-origin',
  'access-control-allow-credentials',
  'access-control-allow-methods',
  'access-control-allow-headers',
  'vary',
];

export const corsScenarios: Scenario[] = [
  {
    name: 'the preflight of negotiate allows the browser client',
    settings: CORS,
    steps: [
      {
        http: 'OPTIONS',
        path: '/negotiate?negotiateVersion=1',
        headers: {
          origin: ALLOWED,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'x-requested-with,x-signalr-user-agent',
        },
        observe: CORS_HEADERS,
      },
    ],
  },
  {
    name: 'negotiate from an allowed origin echoes it with credentials',
    settings: CORS,
    steps: [{ http: 'POST', path: '/negotiate?negotiateVersion=1', headers: { origin: ALLOWED }, observe: CORS_HEADERS }],
  },
  {
    name: 'negotiate from another origin gets no CORS headers',
    settings: CORS,
    steps: [{ http: 'POST', path: '/negotiate?negotiateVersion=1', headers: { origin: 'http://other.example' }, observe: CORS_HEADERS }],
  },
  {
    name: 'the preflight of a long-polling DELETE',
    settings: CORS,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      {
        http: 'OPTIONS',
        path: '?id={{token}}',
        headers: { origin: ALLOWED, 'access-control-request-method': 'DELETE', 'access-control-request-headers': 'x-requested-with' },
        observe: CORS_HEADERS,
      },
    ],
  },
];
