/**
 * The two servers a scenario runs against, started from one {@link ServerSettings} shape: the ASP.NET Core reference
 * server (`test/dotnet-reference`, configured by environment variables) and our chat sample (configured by plugin
 * options). Both serve the same `ChatHub` contract at `/chathub`.
 */
import { jsonHubProtocol, messagePackHubProtocol } from '../../../protocol';
import { startReferenceServer } from '../../support/dotnet-reference';
import { startChatServer } from '../../support/servers';
import type { ServerSettings } from './scenario';

/** A running server as the runner sees it. */
export interface Target {
  /** `ASP.NET Core` or `fastify-signalr`, for messages. */
  readonly name: string;
  /** The hub's URL, `http://127.0.0.1:<port>/chathub`. */
  readonly hubUrl: string;
  /** The hub protocol official clients of a scenario speak to it. */
  readonly clientProtocol: HubProtocolName;
  stop(): Promise<void>;
}

/**
 * The hub protocol a table runs over. `json`: both servers offer JSON alone (the tables' raw frames are JSON).
 * `messagepack`: both offer JSON and MessagePack, and official clients connect with MessagePack.
 */
export type HubProtocolName = 'json' | 'messagepack';

/**
 * The reference server's environment for `settings` (names from `test/dotnet-reference/README.md`).
 * @returns only the variables of settings that are set, so everything else keeps .NET's default
 */
export function referenceEnvironment(settings: ServerSettings): Record<string, string> {
  const env: Record<string, string> = {};
  const set = (name: string, value: number | boolean | readonly string[] | undefined) => {
    if (value !== undefined) env[name] = Array.isArray(value) ? value.join(',') : String(value);
  };
  set('KEEP_ALIVE_MS', settings.keepAliveIntervalMs);
  set('CLIENT_TIMEOUT_MS', settings.clientTimeoutIntervalMs);
  set('HANDSHAKE_TIMEOUT_MS', settings.handshakeTimeoutMs);
  set('MAX_MESSAGE_SIZE', settings.maximumReceiveMessageSize);
  set('DETAILED_ERRORS', settings.enableDetailedErrors);
  set('MAX_PARALLEL_INVOCATIONS', settings.maximumParallelInvocationsPerClient);
  set('STREAM_BUFFER_CAPACITY', settings.streamBufferCapacity);
  set('TRANSPORTS', settings.transports);
  set('LONG_POLL_TIMEOUT_MS', settings.longPollTimeoutMs);
  set('DISCONNECT_TIMEOUT_MS', settings.disconnectTimeoutMs);
  set('ALLOW_STATEFUL_RECONNECTS', settings.allowStatefulReconnects);
  set('CORS_ORIGINS', settings.corsOrigins);
  return env;
}

/** Our plugin options for `settings`: the same hub protocols as the reference server's for `protocol`. */
export function ourOptions(
  settings: ServerSettings,
  protocol: HubProtocolName = 'json',
): Parameters<typeof startChatServer>[0] {
  const cors = settings.corsOrigins;
  const options: Record<string, unknown> = {
    protocols: protocol === 'messagepack' ? [jsonHubProtocol, messagePackHubProtocol] : [jsonHubProtocol],
    allowStatefulReconnects: settings.allowStatefulReconnects,
    allowedOrigins: cors === undefined ? undefined : cors.length === 1 && cors[0] === '*' ? '*' : [...cors],
    keepAliveIntervalMs: settings.keepAliveIntervalMs,
    clientTimeoutIntervalMs: settings.clientTimeoutIntervalMs,
    handshakeTimeoutMs: settings.handshakeTimeoutMs,
    maximumReceiveMessageSize: settings.maximumReceiveMessageSize,
    enableDetailedErrors: settings.enableDetailedErrors,
    maximumParallelInvocationsPerClient: settings.maximumParallelInvocationsPerClient,
    streamBufferCapacity: settings.streamBufferCapacity,
    transports: settings.transports === undefined ? undefined : [...settings.transports],
    disconnectTimeoutMs: settings.disconnectTimeoutMs,
    longPollTimeoutMs: settings.longPollTimeoutMs,
  };
  // Unset settings are left out rather than passed as `undefined`, so the plugin applies its defaults.
  for (const key of Object.keys(options)) if (options[key] === undefined) delete options[key];
  return options;
}

/** Starts the reference server with `settings`, offering MessagePack too for `protocol` `messagepack`. */
export async function startReference(settings: ServerSettings, protocol: HubProtocolName = 'json'): Promise<Target> {
  const env = referenceEnvironment(settings);
  if (protocol === 'messagepack') env.MESSAGEPACK = 'true';
  const server = await startReferenceServer(env);
  return { name: 'ASP.NET Core', hubUrl: server.hubUrl, clientProtocol: protocol, stop: () => server.stop() };
}

/** Starts our chat sample with `settings`, offering MessagePack too for `protocol` `messagepack`. */
export async function startOurs(settings: ServerSettings, protocol: HubProtocolName = 'json'): Promise<Target> {
  const server = await startChatServer(ourOptions(settings, protocol));
  return {
    name: 'fastify-signalr',
    hubUrl: server.hubUrl,
    clientProtocol: protocol,
    stop: async () => {
      const closed = server.close();
      // Keep-alive sockets of requests a scenario abandoned (an aborted long poll) would hold the close up.
      server.app.server.closeAllConnections();
      await closed;
    },
  };
}

/** A stable key for a settings object: scenarios with equal settings share one pair of servers. */
export function settingsKey(settings: ServerSettings = {}): string {
  const entries = Object.entries(settings)
    .filter(([, value]) => value !== undefined)
    .sort(([a], [b]) => a.localeCompare(b));
  return JSON.stringify(entries);
}
