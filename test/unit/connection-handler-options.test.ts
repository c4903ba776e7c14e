/** The `connectionHandlers` option: validated and given defaults with the hubs, paths unique across both. */
import { DEFAULT_PROTOCOLS } from '../../src/plugin';
import { resolveOptions, SignalROptionsError } from '../../src/options';
import { Hub } from '../../src/index';

class ChatHub extends Hub {}
const onConnected = async () => undefined;

test('a raw endpoint takes the plugin-wide values it does not set, and never grants stateful reconnect', () => {
  const options = resolveOptions(
    {
      hubs: [],
      disconnectTimeoutMs: 5000,
      allowStatefulReconnects: true,
      connectionHandlers: [{ path: '/raw/', onConnected, transports: ['WebSockets'] }],
    },
    DEFAULT_PROTOCOLS,
  );
  expect(options.connectionHandlers).toEqual([
    expect.objectContaining({
      path: '/raw',
      transports: ['WebSockets'],
      disconnectTimeoutMs: 5000,
      longPollTimeoutMs: 90_000,
      maximumBufferedOutboundBytes: 1024 * 1024,
      onRequest: [],
      allowStatefulReconnects: false,
    }),
  ]);
});

test('a raw endpoint may not share a hub’s path', () => {
  expect(() =>
    resolveOptions(
      { hubs: [{ path: '/chat', hub: ChatHub }], connectionHandlers: [{ path: '/chat', onConnected }] },
      DEFAULT_PROTOCOLS,
    ),
  ).toThrow(new SignalROptionsError("Invalid fastify-signalr options: two endpoints at path '/chat'."));
});

test('a raw endpoint needs a path and a handler, and knows no hub options', () => {
  expect(() =>
    resolveOptions({ hubs: [], connectionHandlers: [{ path: 'raw', onConnected }] }, DEFAULT_PROTOCOLS),
  ).toThrow(/must start with '\//);
  expect(() => resolveOptions({ hubs: [], connectionHandlers: [{ path: '/raw' }] }, DEFAULT_PROTOCOLS)).toThrow(
    /onConnected/,
  );
  expect(() =>
    resolveOptions(
      { hubs: [], connectionHandlers: [{ path: '/raw', onConnected, keepAliveIntervalMs: 1000 }] },
      DEFAULT_PROTOCOLS,
    ),
  ).toThrow(/keepAliveIntervalMs/);
});
