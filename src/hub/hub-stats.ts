/**
 * What a hub counts for operators: plain numbers that the message path increments (no allocation, no library),
 * and an optional observer told once per connection and once per invocation. A metrics exporter (see
 * `src/operations/metrics.ts`) reads the numbers when it is scraped and installs the observer for its
 * histograms; without one, counting costs an increment per message and nothing more.
 */
import type { HubProtocol } from '../../protocol/hub-protocol';
import type { HubMessage } from '../../protocol/messages';
import type { TransportName } from '../../protocol/negotiate';

/**
 * Why a connection ended, with the values of the OpenTelemetry attribute `signalr.connection.status` (the names
 * ASP.NET Core reports): closed while the server shut down, timed out (handshake, client or disconnect timeout),
 * or any other end (the client left, an error, the hub aborted it).
 */
export type ConnectionEndStatus = 'normal_closure' | 'timeout' | 'app_shutdown';

/**
 * How an invocation that ran ended: it returned, it threw a `HubException` (a message meant for the caller), or it
 * failed with any other error.
 */
export type InvocationOutcome = 'success' | 'hub_exception' | 'error';

/** Told about each connection and invocation as it ends; called synchronously on the message path, so keep it cheap. */
export interface HubObserver {
  /** A hub connection ended after `seconds` (from its transport's start). */
  connectionEnded(transport: TransportName, status: ConnectionEndStatus, seconds: number): void;
  /** A plain invocation or a method with client-to-server streams settled after `seconds`. */
  invocationEnded(method: string, outcome: InvocationOutcome, seconds: number): void;
}

/** A connection as a tracer sees it. */
export interface TracedConnection {
  readonly connectionId: string;
  readonly userIdentifier: string | undefined;
}

/**
 * Watches hub messages as they pass (the admin page's live trace). Installed only while a trace is open: the
 * message path checks for it and does nothing else, so it costs one comparison per message otherwise.
 */
export interface HubTracer {
  /** A message read from a client, once, before it is dispatched. */
  inbound(connection: TracedConnection, message: HubMessage): void;
  /** Framed bytes of one hub message written to a client, in `protocol`. */
  outbound(connection: TracedConnection, protocol: HubProtocol, bytes: Uint8Array): void;
}

/** Counters of one hub on this server, since it started. */
export class HubStats {
  /** Hub messages received from clients (invocations, stream items, completions, …); keep-alive pings excluded. */
  messagesReceived = 0;
  /**
   * Hub messages written to clients: invocations (one per recipient), completions and stream items. Pings, the
   * handshake answer and Close messages are not counted.
   */
  messagesSent = 0;
  /** Handshakes that failed (bad request, unsupported protocol or version, timeout). */
  handshakesFailed = 0;
  /**
   * Invocations answered with an error before the method ran: unknown method, wrong arguments, refused by the
   * method's authorization, wrong number of streams.
   */
  invocationsRejected = 0;
  /** Per-connection and per-invocation observer (a metrics exporter's histograms), if any. */
  observer: HubObserver | null = null;
  /** The live trace watching this hub's messages, while one is open. */
  tracer: HubTracer | null = null;
}
