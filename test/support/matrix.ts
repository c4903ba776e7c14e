/**
 * The transport × hub protocol combinations that official-client tests run over. A suite written as
 * `describe.each(CLIENT_COMBINATIONS)('$name', ({ transport, protocol }) => ...)` and connecting with
 * `pool.connect({ transport, protocol })` covers a new combination as soon as it is listed here.
 */
import { HttpTransportType, type IHubProtocol } from '@microsoft/signalr';
import { MessagePackHubProtocol } from '@microsoft/signalr-protocol-msgpack';

/** One way the official client talks to the server. */
export interface ClientCombination {
  /** Used in test names, e.g. `JSON over WebSockets`. */
  readonly name: string;
  readonly transport: HttpTransportType;
  /** The client's hub protocol; JSON when absent. */
  readonly protocol?: IHubProtocol;
}

/** The combinations .NET's clients use: each hub protocol over WebSockets and long polling (SSE carries JSON only). */
export const CLIENT_COMBINATIONS: readonly ClientCombination[] = [
  { name: 'JSON over WebSockets', transport: HttpTransportType.WebSockets },
  {
    name: 'MessagePack over WebSockets',
    transport: HttpTransportType.WebSockets,
    protocol: new MessagePackHubProtocol(),
  },
  { name: 'JSON over long polling', transport: HttpTransportType.LongPolling },
  {
    name: 'MessagePack over long polling',
    transport: HttpTransportType.LongPolling,
    protocol: new MessagePackHubProtocol(),
  },
];

/**
 * Every combination the official client can use against a server that offers everything: {@link CLIENT_COMBINATIONS}
 * and JSON over Server-Sent Events (a text-only transport, so MessagePack cannot run on it). For suites that check
 * a contract end to end; the others stay on the four above to keep their run time down.
 */
export const ALL_CLIENT_COMBINATIONS: readonly ClientCombination[] = [
  ...CLIENT_COMBINATIONS,
  { name: 'JSON over Server-Sent Events', transport: HttpTransportType.ServerSentEvents },
];
