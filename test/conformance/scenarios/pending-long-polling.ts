/**
 * PENDING — not executed yet: fastify-signalr does not implement long polling. When it does, add a test file that
 * runs this table (`conformanceSuite('long polling', longPollingScenarios)`).
 *
 * The transport (spec §1.7, §1.8, §1.9): the first poll, polls that carry data, time out, are superseded or end;
 * DELETE; the disconnect timeout between polls; no keep-alive pings.
 */
import type { Scenario, ServerSettings } from '../engine/scenario';
import { HANDSHAKE, invoke } from './frames';

const LP_ONLY: ServerSettings = { transports: ['LongPolling'] };
const SHORT_POLLS: ServerSettings = { transports: ['LongPolling'], longPollTimeoutMs: 300 };
/** The headers every poll answer carries. */
const POLL_HEADERS = ['cache-control', 'pragma', 'expires'];

export const longPollingScenarios: Scenario[] = [
  {
    name: 'the first poll returns at once, empty',
    settings: LP_ONLY,
    steps: [{ negotiate: '?negotiateVersion=1' }, { http: 'GET', path: '?id={{token}}', observe: POLL_HEADERS }],
  },
  {
    name: 'a poll returns the handshake answer POSTed meanwhile',
    settings: LP_ONLY,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { http: 'GET', path: '?id={{token}}' },
      { http: 'GET', path: '?id={{token}}', observe: POLL_HEADERS, background: 'poll' },
      { wait: 50 },
      { http: 'POST', path: '?id={{token}}', body: HANDSHAKE },
      { awaitHttp: 'poll', withinMs: [0, 2000] },
    ],
  },
  {
    name: 'one poll carries every message buffered',
    settings: LP_ONLY,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { http: 'GET', path: '?id={{token}}' },
      { http: 'POST', path: '?id={{token}}', body: HANDSHAKE + invoke('1', 'Echo', 1) + invoke('2', 'Echo', 2) },
      { wait: 100 },
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
      { awaitHttp: 'poll', withinMs: [250, 1500] },
    ],
  },
  {
    name: 'a new poll ends the pending one with 204',
    settings: LP_ONLY,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { http: 'GET', path: '?id={{token}}' },
      { http: 'GET', path: '?id={{token}}', background: 'old' },
      { wait: 100 },
      { http: 'GET', path: '?id={{token}}', background: 'new' },
      { awaitHttp: 'old', withinMs: [0, 1000] },
    ],
  },
  {
    name: 'DELETE is 202 and ends the pending poll with 204',
    settings: LP_ONLY,
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { http: 'GET', path: '?id={{token}}' },
      { http: 'GET', path: '?id={{token}}', background: 'poll' },
      { wait: 100 },
      { http: 'DELETE', path: '?id={{token}}' },
      { awaitHttp: 'poll', withinMs: [0, 1000] },
      { wait: 100 },
      { http: 'GET', path: '?id={{token}}' },
    ],
  },
  {
    name: 'a Close message: the poll returns the Close, the next poll is 204',
    settings: LP_ONLY,
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
    settings: LP_ONLY,
    steps: [{ http: 'GET', path: '' }],
  },
  {
    name: 'a poll with an unknown id is 404',
    settings: LP_ONLY,
    steps: [{ http: 'GET', path: '?id=AAAAAAAAAAAAAAAAAAAAAA' }],
  },
  {
    name: 'POST on a long-polling connection is 200 text/plain',
    settings: LP_ONLY,
    steps: [{ negotiate: '?negotiateVersion=1' }, { http: 'GET', path: '?id={{token}}' }, { http: 'POST', path: '?id={{token}}', body: HANDSHAKE }],
  },
  {
    name: 'a connection that stops polling is gone after the disconnect timeout',
    settings: { transports: ['LongPolling'], disconnectTimeoutMs: 500 },
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { http: 'GET', path: '?id={{token}}' },
      { wait: 2500 },
      { http: 'GET', path: '?id={{token}}' },
    ],
  },
  {
    name: 'no keep-alive pings on long polling',
    settings: { transports: ['LongPolling'], keepAliveIntervalMs: 300, longPollTimeoutMs: 2000 },
    steps: [
      { negotiate: '?negotiateVersion=1' },
      { http: 'GET', path: '?id={{token}}' },
      { http: 'POST', path: '?id={{token}}', body: HANDSHAKE },
      { http: 'GET', path: '?id={{token}}' },
      { http: 'GET', path: '?id={{token}}', background: 'poll' },
      { awaitHttp: 'poll', withinMs: [1500, 3500] },
    ],
  },
  {
    name: 'a WebSocket for a long-polling connection cannot change transports',
    steps: [{ negotiate: '?negotiateVersion=1' }, { http: 'GET', path: '?id={{token}}' }, { open: '?id={{token}}' }],
  },
];
