/**
 * The negotiate exchange: choosing the negotiate version and writing the response body.
 *
 * Spec: docs/protocol.md §1.2 (request, version selection, response property order) and §1.3 (ids). Errors are
 * also answered with status 200 and a body holding only `error`
 * (src/SignalR/common/Http.Connections.Common/src/NegotiateProtocol.cs@v10.0.0 L57-L66).
 */

/** The transports a server can offer, named as on the wire. */
export type TransportName = 'WebSockets' | 'ServerSentEvents' | 'LongPolling';

/**
 * Every transport in the order .NET lists them
 * (src/SignalR/common/Http.Connections/src/Internal/HttpConnectionDispatcher.cs@v10.0.0 L21-L40).
 */
export const ALL_TRANSPORTS: readonly TransportName[] = Object.freeze([
  'WebSockets',
  'ServerSentEvents',
  'LongPolling',
]);

/** The transfer formats each transport carries; Server-Sent Events is Text only (docs/protocol.md §1.4, §1.6). */
export const TRANSPORT_TRANSFER_FORMATS: Readonly<Record<TransportName, readonly string[]>> = Object.freeze({
  WebSockets: ['Text', 'Binary'],
  ServerSentEvents: ['Text'],
  LongPolling: ['Text', 'Binary'],
});

/**
 * The highest negotiate version a server speaks
 * (src/SignalR/common/Http.Connections/src/Internal/HttpConnectionDispatcher.cs@v10.0.0 L46).
 */
export const MAX_NEGOTIATE_VERSION = 1;

/** The content of a successful negotiate response. */
export interface NegotiateResponse {
  /** Present (as `true`) only when stateful reconnect was asked for and is allowed. */
  readonly useStatefulReconnect?: boolean;
  readonly negotiateVersion: number;
  readonly connectionId: string;
  /** Only for negotiate version 1 and above. */
  readonly connectionToken?: string;
  /** In the server's order; only the transports enabled for the hub. */
  readonly availableTransports: readonly TransportName[];
}

/**
 * Chooses the negotiate version from the raw `negotiateVersion` query value (docs/protocol.md §1.2): absent ⇒ 0, not an
 * integer ⇒ error, below the minimum ⇒ error, above the maximum ⇒ the maximum.
 */
export function selectNegotiateVersion(
  requested: string | undefined,
  minimumVersion = 0,
): { readonly version: number } | { readonly error: string } {
  let version = 0;
  if (requested !== undefined) {
    // .NET parses with int.TryParse: optional sign and surrounding white space, decimal digits, Int32 range.
    const trimmed = requested.trim();
    if (!/^[+-]?\d+$/.test(trimmed) || Number(trimmed) < -2147483648 || Number(trimmed) > 2147483647) {
      return { error: 'The client requested a non-integer protocol version.' };
    }
    version = Number(trimmed);
  }
  if (version < minimumVersion) {
    return { error: `The client requested version '${version}', but the server does not support this version.` };
  }
  return { version: Math.min(version, MAX_NEGOTIATE_VERSION) };
}

/**
 * The `availableTransports` member and the closing brace, by transport list: a hub offers the same list to every
 * client, so it is written once per list rather than once per negotiate.
 */
const transportsJsonByList = new WeakMap<readonly TransportName[], string>();

function transportsJson(transports: readonly TransportName[]): string {
  let json = transportsJsonByList.get(transports);
  if (json === undefined) {
    const entries = transports.map(
      (name) => `{"transport":"${name}","transferFormats":${JSON.stringify(TRANSPORT_TRANSFER_FORMATS[name])}}`,
    );
    json = `,"availableTransports":[${entries.join(',')}]}`;
    transportsJsonByList.set(transports, json);
  }
  return json;
}

/**
 * Writes the response body with .NET's property order
 * (src/SignalR/common/Http.Connections.Common/src/NegotiateProtocol.cs@v10.0.0 L48-L140), compact.
 */
export function writeNegotiateResponse(response: NegotiateResponse): string {
  let json = '{';
  if (response.useStatefulReconnect === true) json += '"useStatefulReconnect":true,';
  json += `"negotiateVersion":${response.negotiateVersion},"connectionId":${JSON.stringify(response.connectionId)}`;
  if (response.connectionToken !== undefined) json += `,"connectionToken":${JSON.stringify(response.connectionToken)}`;
  return json + transportsJson(response.availableTransports);
}

/** Writes an error response body: `{"error":"…"}`. */
export function writeNegotiateError(error: string): string {
  return JSON.stringify({ error });
}
