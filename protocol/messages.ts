/**
 * The hub message model: the nine message kinds of the SignalR hub protocol.
 *
 * Spec: docs/protocol.md §2.3 (message types) and §2.4/§2.5 (their fields). The shapes follow the official
 * TypeScript client's `IHubProtocol.ts`, so values read by one protocol can be written by another.
 */

/** Numeric `type` of each hub message, as written on the wire (docs/protocol.md §2.3). */
export const MessageType = {
  Invocation: 1,
  StreamItem: 2,
  Completion: 3,
  StreamInvocation: 4,
  CancelInvocation: 5,
  Ping: 6,
  Close: 7,
  Ack: 8,
  Sequence: 9,
} as const;

/** One of the values of {@link MessageType}. */
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** Message headers: a string-to-string map carried by invocation-like messages. */
export type MessageHeaders = Record<string, string>;

/** Fields shared by the messages that belong to an invocation (types 1–5). */
interface HubInvocationBase {
  /** Optional headers; omitted on the wire when empty. */
  readonly headers?: MessageHeaders;
  /** The invocation this message belongs to. Absent on non-blocking invocations. */
  readonly invocationId?: string;
}

/** Type 1: call `target` with `arguments`; a reply (Completion) is expected only when `invocationId` is set. */
export interface InvocationMessage extends HubInvocationBase {
  readonly type: typeof MessageType.Invocation;
  readonly target: string;
  readonly arguments: unknown[];
  /** Ids of client-to-server streams bound to parameters of the target (docs/protocol.md §2.9). */
  readonly streamIds?: string[];
}

/** Type 4: call a streaming `target`; the results arrive as StreamItems and one Completion. */
export interface StreamInvocationMessage extends HubInvocationBase {
  readonly type: typeof MessageType.StreamInvocation;
  readonly invocationId: string;
  readonly target: string;
  readonly arguments: unknown[];
  readonly streamIds?: string[];
}

/** Type 2: one item of a stream (server-to-client results or a client-to-server upload). */
export interface StreamItemMessage extends HubInvocationBase {
  readonly type: typeof MessageType.StreamItem;
  readonly invocationId: string;
  readonly item: unknown;
}

/**
 * Type 3: the end of an invocation or stream.
 *
 * Exactly one of three shapes: `error` set (failure), `result` present (a value, `null` allowed), or neither
 * (void; stream completions).
 */
export interface CompletionMessage extends HubInvocationBase {
  readonly type: typeof MessageType.Completion;
  readonly invocationId: string;
  readonly error?: string;
  /** Present (possibly `null`) when the completion carries a result; see {@link hasResult}. */
  readonly result?: unknown;
}

/** Type 5: cancel the stream with this id. */
export interface CancelInvocationMessage extends HubInvocationBase {
  readonly type: typeof MessageType.CancelInvocation;
  readonly invocationId: string;
}

/** Type 6: keep-alive. */
export interface PingMessage {
  readonly type: typeof MessageType.Ping;
}

/** Type 7: the sender is closing the connection, optionally with an error and permission to reconnect. */
export interface CloseMessage {
  readonly type: typeof MessageType.Close;
  readonly error?: string;
  readonly allowReconnect?: boolean;
}

/** Type 8 (stateful reconnect): everything up to and including `sequenceId` was received. */
export interface AckMessage {
  readonly type: typeof MessageType.Ack;
  readonly sequenceId: number;
}

/** Type 9 (stateful reconnect): the next sequenced message has this id. */
export interface SequenceMessage {
  readonly type: typeof MessageType.Sequence;
  readonly sequenceId: number;
}

/** Any hub message. */
export type HubMessage =
  | InvocationMessage
  | StreamItemMessage
  | CompletionMessage
  | StreamInvocationMessage
  | CancelInvocationMessage
  | PingMessage
  | CloseMessage
  | AckMessage
  | SequenceMessage;

/** True when the completion carries a result value (even `null`), as opposed to an error or void. */
export function hasResult(message: CompletionMessage): boolean {
  return message.error === undefined && Object.prototype.hasOwnProperty.call(message, 'result');
}

/** The messages that count for stateful-reconnect sequencing (docs/protocol.md §2.3: types 1–5). */
export function isSequenced(message: HubMessage): boolean {
  return message.type <= MessageType.CancelInvocation;
}

/** The constant Ping message. */
export const PING: PingMessage = Object.freeze({ type: MessageType.Ping });
