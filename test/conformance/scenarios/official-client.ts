/**
 * The official client's own flows, per transport: the unmodified `@microsoft/signalr` Node client connects to each
 * server and does what applications do — invoke, send, stream both ways and cancel, answer client results, get
 * errors, be closed by the server, stop — and what it saw (results, errors, server calls, why it closed, which HTTP
 * requests it made and how they were answered) must be the same.
 *
 * Each flow runs over WebSockets, Server-Sent Events and long polling (JSON: the reference server has no
 * MessagePack).
 */
import type { Scenario, ServerSettings, Step, TransportName } from '../engine/scenario';
import { alone } from './frames';

const TRANSPORTS: readonly TransportName[] = ['WebSockets', 'ServerSentEvents', 'LongPolling'];
/**
 * A small message limit and detailed errors: the flows that use it meet one or both. (Few distinct settings keep
 * the number of servers, and the suite's time, down.)
 */
const LIMITS: ServerSettings = { maximumReceiveMessageSize: 1024, enableDetailedErrors: true };
const WEBSOCKETS_ONLY: ServerSettings = { transports: ['WebSockets'] };

/** One flow: a name and its steps for a transport. */
interface Flow {
  readonly name: string;
  readonly settings?: ServerSettings;
  /** Sends to every connection (see `Scenario.exclusive`). */
  readonly broadcast?: boolean;
  readonly steps: (transport: TransportName) => Step[];
}

/** Values whose JSON round trip the client sees unchanged. */
const VALUES: readonly unknown[] = [
  42,
  -1.5,
  'text with "quotes" and ü ✓',
  true,
  null,
  [1, 'two', null],
  { a: [1, { b: null }] },
];

const FLOWS: readonly Flow[] = [
  {
    name: 'connects, invokes and stops cleanly',
    steps: (transport) => [
      { start: transport },
      ...VALUES.map((value): Step => ({ call: 'Echo', args: [value] })),
      { call: 'echo', args: ['method names are case-insensitive'] },
      { call: 'WhoAmI' },
      { requests: 'client' },
      { stop: 'client' },
    ],
  },
  {
    name: 'the user id comes from the query string',
    steps: (transport) => [{ start: transport, query: 'user=alice' }, { call: 'WhoAmI' }, { stop: 'client' }],
  },
  {
    name: 'a broadcast reaches the caller; send completes without a result',
    broadcast: true,
    steps: (transport) => [
      { start: transport },
      { call: 'SendMessage', args: ['me', 'invoked'] },
      { call: 'SendMessage', kind: 'send', args: ['me', 'sent'] },
      { events: 2 },
      { call: 'SendValues' },
      { events: 1 },
      { stop: 'client' },
    ],
  },
  {
    name: 'errors the caller sees',
    steps: (transport) => [
      { start: transport },
      { call: 'Fail', args: ['boom'] },
      { call: 'Crash' },
      { call: 'NoSuchMethod' },
      { call: 'Echo' },
      { call: 'Counter', args: [1, 0] },
      { call: 'Echo', kind: 'stream', args: [1] },
      { call: 'Echo', args: ['still connected'] },
      { stop: 'client' },
    ],
  },
  {
    name: 'server-to-client streams, and cancelling one',
    steps: (transport) => [
      { start: transport },
      { call: 'Counter', kind: 'stream', args: [5, 0] },
      { call: 'Counter', kind: 'stream', args: [0, 0] },
      { call: 'Counter', kind: 'stream', args: [1000, -1], take: 1 },
      { call: 'Counter', kind: 'stream', args: [3, -2] },
      { call: 'Echo', args: ['after the streams'] },
      { stop: 'client' },
    ],
  },
  {
    name: 'client-to-server streams',
    steps: (transport) => [
      { start: transport },
      { call: 'Sum', upload: { items: [1, 2, 3, 4, 5000000000] } },
      { call: 'Sum', upload: { items: [] } },
      { call: 'Sum', upload: { items: [1], error: 'upload broke' } },
      { call: 'Sum', upload: { items: ['not a number'] } },
      { call: 'Sum', kind: 'stream', upload: { items: [1] } },
      { stop: 'client' },
    ],
  },
  {
    name: 'client results: the caller answers its own question',
    steps: (transport) => [
      { start: transport, answer: { returns: 'forty-two' } },
      { call: 'AskClient', args: ['{{client.id}}'] },
      { events: 1 },
      { http: 'GET', path: '/ask/{{client.id}}', root: true },
      { events: 1 },
      { stop: 'client' },
    ],
  },
  {
    name: 'client results: no handler, a throwing handler, no connection',
    steps: (transport) => [
      { start: transport, client: 'silent' },
      { start: transport, client: 'throwing', answer: { throws: 'nope' } },
      { start: transport, client: 'null', answer: { returns: null } },
      { call: 'AskClient', client: 'silent', args: ['{{silent.id}}'] },
      { call: 'AskClient', client: 'silent', args: ['{{throwing.id}}'] },
      { call: 'AskClient', client: 'silent', args: ['{{null.id}}'] },
      { call: 'AskClient', client: 'silent', args: ['AAAAAAAAAAAAAAAAAAAAAA'] },
      { http: 'GET', path: '/ask/{{silent.id}}', root: true },
      { http: 'GET', path: '/ask/{{throwing.id}}', root: true },
      { stop: 'silent' },
      { stop: 'throwing' },
      { stop: 'null' },
    ],
  },
  {
    name: 'the server closes the connection: a message over the size limit',
    settings: LIMITS,
    steps: (transport) => [
      { start: transport },
      { call: 'Echo', args: ['x'.repeat(900)] },
      { call: 'Echo', args: ['x'.repeat(2000)] },
      { clientClosed: 'client' },
    ],
  },
  {
    name: 'the server closes the connection: the client timeout',
    // The client pings only after 15 s of silence, so its first message after the handshake is what starts the
    // server's client timeout; a short server timeout then closes it. Not shorter than 1.5 s: on a busy machine the
    // send may reach the server late.
    settings: { clientTimeoutIntervalMs: 1500 },
    steps: (transport) => [
      { start: transport },
      { call: 'Echo', kind: 'send', args: ['then silence'] },
      { clientClosed: 'client' },
    ],
  },
  {
    // Crash's detailed error names the exception's type, which differs by design (see invocations.ts).
    name: 'with a detailed errors server',
    settings: LIMITS,
    steps: (transport) => [
      { start: transport },
      { call: 'Fail', args: ['boom'] },
      { call: 'Echo' },
      { call: 'Counter', args: ['x', 1] },
      { call: 'AskClient', args: ['no-such-connection'] },
      { stop: 'client' },
    ],
  },
];

/** Flows of one transport only. */
const WEBSOCKETS_FLOWS: readonly Scenario[] = [
  {
    name: 'WebSockets: skipNegotiation connects without negotiate',
    settings: WEBSOCKETS_ONLY,
    steps: [{ start: 'WebSockets', skipNegotiation: true }, { call: 'Echo', args: ['direct'] }, { stop: 'client' }],
  },
  {
    name: 'WebSockets: a stateful reconnect client',
    settings: { transports: ['WebSockets'], allowStatefulReconnects: true },
    steps: [
      { start: 'WebSockets', statefulReconnect: true },
      { call: 'Echo', args: ['stateful'] },
      { call: 'Counter', kind: 'stream', args: [3, 0] },
      { requests: 'client' },
      { stop: 'client' },
    ],
  },
];

/** A transport the server does not offer: a WebSockets-only server refuses the other two, and one without it. */
const REFUSED: readonly Scenario[] = TRANSPORTS.map((transport) => ({
  name: `${transport}: a server that does not offer the transport`,
  settings: transport === 'WebSockets' ? { transports: ['ServerSentEvents', 'LongPolling'] } : WEBSOCKETS_ONLY,
  steps: [{ start: transport }],
}));

export const officialClientScenarios: Scenario[] = [
  ...TRANSPORTS.flatMap((transport) =>
    FLOWS.map((flow): Scenario => {
      const scenario: Scenario = {
        name: `${transport}: ${flow.name}`,
        settings: flow.settings,
        steps: flow.steps(transport),
      };
      return flow.broadcast === true ? alone(scenario) : scenario;
    }),
  ),
  ...WEBSOCKETS_FLOWS,
  ...REFUSED,
];
