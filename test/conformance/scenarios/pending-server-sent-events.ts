/**
 * PENDING — not executed yet: fastify-signalr does not implement Server-Sent Events. When it does, add a test file
 * that runs this table (`conformanceSuite('Server-Sent Events', serverSentEventsScenarios)`) and remove the
 * transports entry of `KNOWN-DIFFERENCES.md` that it makes obsolete.
 *
 * The transport (spec §1.6, §1.8, §1.9): the stream's headers and first bytes, events carrying whole hub messages,
 * sends by POST, and the refusals of the transport endpoint.
 */
import type { Scenario, ServerSettings } from '../engine/scenario';
import { HANDSHAKE, invoke } from './frames';

const SSE_ONLY: ServerSettings = { transports: ['ServerSentEvents'] };

export const serverSentEventsScenarios: Scenario[] = [
  {
    name: 'negotiate offers Server-Sent Events with the Text format only',
    settings: SSE_ONLY,
    steps: [{ negotiate: '?negotiateVersion=1' }],
  },
  {
    name: 'the stream starts with a comment line and carries .NET headers',
    settings: SSE_ONLY,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { sse: '?id={{token}}', observe: ['cache-control', 'pragma', 'content-encoding'], rawPrefix: 3 },
    ],
  },
  {
    name: 'the handshake goes by POST and its answer comes as an event',
    settings: SSE_ONLY,
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
    settings: SSE_ONLY,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      // POSTed before the stream opens, so the answer is among the stream's first bytes.
      { http: 'POST', path: '?id={{token}}', body: HANDSHAKE },
      { sse: '?id={{token}}', rawPrefix: 16 },
    ],
  },
  {
    name: 'a stream without an id is 400',
    settings: SSE_ONLY,
    steps: [{ sse: '' }],
  },
  {
    name: 'a stream with an unknown id is 404',
    settings: SSE_ONLY,
    steps: [{ sse: '?id=AAAAAAAAAAAAAAAAAAAAAA' }],
  },
  {
    name: 'a second stream for a connection is 409',
    settings: SSE_ONLY,
    steps: [{ negotiate: '?negotiateVersion=1' }, { sse: '?id={{token}}' }, { sse: '?id={{token}}', socket: 'second' }],
  },
  {
    name: 'DELETE on a Server-Sent Events connection is 400',
    settings: SSE_ONLY,
    steps: [{ negotiate: '?negotiateVersion=1' }, { sse: '?id={{token}}' }, { http: 'DELETE', path: '?id={{token}}' }],
  },
  {
    name: 'a WebSocket for a Server-Sent Events connection cannot change transports',
    steps: [{ negotiate: '?negotiateVersion=1' }, { sse: '?id={{token}}', socket: 'events' }, { open: '?id={{token}}' }],
  },
  {
    name: 'a POST with an empty body is 200',
    settings: SSE_ONLY,
    steps: [{ negotiate: '?negotiateVersion=1' }, { sse: '?id={{token}}' }, { http: 'POST', path: '?id={{token}}', body: '' }],
  },
  {
    name: 'a Close message ends the stream',
    settings: SSE_ONLY,
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
    settings: SSE_ONLY,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { sse: '?id={{token}}' },
      { http: 'POST', path: '?id={{token}}', body: '{"protocol":"messagepack","version":1}\u001e' },
      { closed: true },
    ],
  },
];
