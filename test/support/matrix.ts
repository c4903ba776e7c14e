/**
 * The transport × hub protocol combinations that official-client tests run over. A suite written as
 * `describe.each(CLIENT_COMBINATIONS)('$name', ({ transport, protocol }) => ...)` and connecting with
 * `pool.connect({ transport, protocol })` covers a new combination as soon as it is listed here.
 */
import { HttpTransportType, type IHubProtocol } from '@microsoft/signalr';

/** One way the official client talks to the server. */
export interface ClientCombination {
  /** Used in test names, e.g. `JSON over WebSockets`. */
  readonly name: string;
  readonly transport: HttpTransportType;
  /** The client's hub protocol; JSON when absent. */
  readonly protocol?: IHubProtocol;
}

/**
 * Every combination the server implements today. MessagePack (`new MessagePackHubProtocol()` from
 * `@microsoft/signalr-protocol-msgpack`) and `HttpTransportType.LongPolling` are added here, one line each, once
 * the server offers them.
 */
export const CLIENT_COMBINATIONS: readonly ClientCombination[] = [
  { name: 'JSON over WebSockets', transport: HttpTransportType.WebSockets },
];
