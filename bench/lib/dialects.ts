/**
 * The wire dialects the load generators speak, each over {@link RawWebSocket}: SignalR with the JSON or the
 * MessagePack hub protocol (negotiate, WebSocket, handshake — what an official client does), a plain `ws` echo and
 * broadcast protocol, and Socket.IO v4 (Engine.IO v4 over a WebSocket, no polling).
 *
 * Every dialect does the same three things: broadcast a 32-byte payload to everyone, echo a payload with an id, and
 * count what it receives. Counting is as cheap as each format allows (a SignalR JSON frame is scanned for record
 * separators, not parsed), because the generators share the machine with the server they measure.
 */
import * as http from 'node:http';
import { MessageType, parseMessagePackMessage, writeMessagePackMessage, type HubMessage } from '../../protocol';
import { Opcode, RawWebSocket } from './raw-ws';

/** The client dialects, one per kind of server. */
export type Dialect = 'signalr-json' | 'signalr-msgpack' | 'ws' | 'socketio';

/**
 * The SignalR transport a connect-rate client starts (docs/protocol.md §1.5–§1.7). Only the connect scenario uses the
 * HTTP transports; every other scenario runs on WebSockets.
 */
export type SignalRTransport = 'WebSockets' | 'ServerSentEvents' | 'LongPolling';

/** Where a server listens. */
export interface Target {
  readonly host: string;
  readonly port: number;
}

/** What a client reports as it receives. */
export interface ClientHandlers {
  /** `count` broadcast messages arrived (pings and acks are not counted). */
  onDelivered(count: number): void;
  /** The payload of each broadcast message; set only where it is needed (the sender), since it costs a parse. */
  onPayload?(payload: string): void;
  /** The echo with this id came back. */
  onEcho?(id: number): void;
}

/** A connected client of any dialect. */
export interface BenchClient {
  /** Asks the server to send `payload` to every connection (the sender included). */
  broadcast(payload: string): void;
  /** Asks the server to send `payload` back, tagged `id`. */
  echo(id: number, payload: string): void;
  /** Joins the group `group`; the server's answer comes back as an echo of `id` (WebSocket clients). */
  join?(id: number, group: string): void;
  /** Asks the server to send `payload` to the members of `group` (WebSocket clients). */
  sendToGroup?(group: string, payload: string): void;
  /**
   * Tells the server the client is alive, where its protocol expects that of a client: SignalR servers close a
   * connection they heard nothing from for 30 s; a Socket.IO client answers the server's pings instead.
   */
  keepAlive?(): void;
  /**
   * SignalR only: invokes the hub method `target` with `args`; with an `id`, the server's completion comes back to
   * `onEcho(id)`, without one it is fire and forget.
   */
  invoke?(target: string, args: unknown[], id?: number): void;
  close(): void;
}

/** Length of every payload: the 32 bytes of the reference fan-out measurement. */
export const PAYLOAD_LENGTH = 32;

/** A 32-character payload that carries a sequence number in its first 12 characters. */
export function payloadFor(sequence: number): string {
  return String(sequence).padStart(12, '0') + 'x'.repeat(PAYLOAD_LENGTH - 12);
}

/** The sequence number of a payload made by {@link payloadFor}. */
export function sequenceOf(payload: string): number {
  return Number.parseInt(payload.slice(0, 12), 10);
}

const RS = 0x1e;
const agents = new Map<string, http.Agent>();

function agentFor(localAddress: string | undefined): http.Agent {
  const key = localAddress ?? '';
  let agent = agents.get(key);
  if (agent === undefined) {
    agent = new http.Agent({ keepAlive: true, maxSockets: 64, localAddress });
    agents.set(key, agent);
  }
  return agent;
}

/**
 * Closes the idle keep-alive sockets negotiate requests left open, so a server's memory is measured with its
 * WebSocket connections only (the peers without negotiate have no such sockets).
 */
export function closeIdleHttpSockets(): void {
  for (const agent of agents.values()) agent.destroy();
  agents.clear();
}

/** `POST {hub}/negotiate?negotiateVersion=1` and the connection token it returns. */
function negotiate(target: Target, hubPath: string, localAddress: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: target.host,
        port: target.port,
        method: 'POST',
        path: `${hubPath}/negotiate?negotiateVersion=1`,
        agent: agentFor(localAddress),
        headers: { 'content-length': '0' },
      },
      (response) => {
        const parts: Buffer[] = [];
        response.on('data', (chunk: Buffer) => parts.push(chunk));
        response.on('end', () => {
          if (response.statusCode !== 200) return reject(new Error(`negotiate answered ${response.statusCode}`));
          const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as { connectionToken?: string };
          if (typeof body.connectionToken !== 'string') return reject(new Error('negotiate gave no token'));
          resolve(body.connectionToken);
        });
      },
    );
    request.on('error', reject);
    request.end();
  });
}

/** Connects one client of `dialect`; resolves once it can send (after the handshake, for protocols that have one). */
export function connectClient(
  dialect: Dialect,
  target: Target,
  handlers: ClientHandlers,
  localAddress?: string,
  transport: SignalRTransport = 'WebSockets',
): Promise<BenchClient> {
  if (transport !== 'WebSockets') {
    if (dialect !== 'signalr-json') throw new Error(`${transport} is a SignalR transport; ${dialect} has none`);
    return connectSignalRHttp(target, transport, localAddress);
  }
  switch (dialect) {
    case 'signalr-json':
      return connectSignalR(target, handlers, localAddress, false);
    case 'signalr-msgpack':
      return connectSignalR(target, handlers, localAddress, true);
    case 'ws':
      return connectWs(target, handlers, localAddress);
    case 'socketio':
      return connectSocketIO(target, handlers, localAddress);
  }
}

// -- SignalR -----------------------------------------------------------------------------------------------------

const HUB_PATH = '/chathub';

async function connectSignalR(
  target: Target,
  handlers: ClientHandlers,
  localAddress: string | undefined,
  binary: boolean,
): Promise<BenchClient> {
  const token = await negotiate(target, HUB_PATH, localAddress);
  let handshakeDone: (() => void) | undefined;
  let handshakeFailed: ((error: Error) => void) | undefined;
  const handshake = new Promise<void>((resolve, reject) => {
    handshakeDone = resolve;
    handshakeFailed = reject;
  });
  let shaken = false;
  const onJson = (payload: Buffer, from: number) => {
    let delivered = 0;
    let start = from;
    for (;;) {
      const end = payload.indexOf(RS, start);
      if (end < 0) break;
      // `{"type":N` — both servers write "type" first; 1 is an Invocation (a broadcast), 3 a Completion.
      const type = payload[start + 8];
      if (type === 0x31) {
        delivered++;
        if (handlers.onPayload !== undefined) {
          const text = payload.toString('utf8', start, end);
          const at = text.lastIndexOf('","');
          handlers.onPayload(text.slice(at + 3, text.indexOf('"', at + 3)));
        }
      } else if (type === 0x33 && handlers.onEcho !== undefined) {
        const text = payload.toString('latin1', start, end);
        const at = text.indexOf('"invocationId":"') + 16;
        handlers.onEcho(Number.parseInt(text.slice(at, text.indexOf('"', at)), 10));
      }
      start = end + 1;
    }
    if (delivered > 0) handlers.onDelivered(delivered);
  };
  const onMessagePack = (payload: Buffer) => {
    let delivered = 0;
    let offset = 0;
    while (offset < payload.length) {
      // Varint length prefix (docs/protocol.md §2.1), then the message array: fixarray header, then the message type.
      let length = 0;
      let shift = 0;
      let byte: number;
      do {
        byte = payload[offset++];
        length |= (byte & 0x7f) << shift;
        shift += 7;
      } while (byte & 0x80);
      const type = payload[offset + 1];
      if (type === MessageType.Invocation) {
        delivered++;
        if (handlers.onPayload !== undefined) {
          const message = parseMessagePackMessage(payload, offset, offset + length) as { arguments: unknown[] };
          handlers.onPayload(String(message.arguments[1]));
        }
      } else if (type === MessageType.Completion && handlers.onEcho !== undefined) {
        handlers.onEcho(completionId(payload, offset, length));
      }
      offset += length;
    }
    if (delivered > 0) handlers.onDelivered(delivered);
  };
  const socket = await RawWebSocket.connect({
    host: target.host,
    port: target.port,
    path: `${HUB_PATH}?id=${encodeURIComponent(token)}`,
    localAddress,
    onMessage: (opcode, payload) => {
      if (!shaken) {
        const end = payload.indexOf(RS);
        if (end < 0) return;
        if (payload.indexOf('"error"') >= 0 && payload.indexOf('"error"') < end) {
          handshakeFailed?.(new Error(`handshake refused: ${payload.toString('utf8', 0, end)}`));
          return;
        }
        shaken = true;
        handshakeDone?.();
        if (opcode === Opcode.Text && end + 1 < payload.length && !binary) onJson(payload, end + 1);
        return;
      }
      if (binary) onMessagePack(payload);
      else onJson(payload, 0);
    },
  });
  socket.send(`{"protocol":"${binary ? 'messagepack' : 'json'}","version":1}\x1e`);
  await handshake;
  const encode = (message: HubMessage): string | Buffer =>
    binary ? writeMessagePackMessage(message) : `${JSON.stringify(message)}\x1e`;
  const ping = encode({ type: MessageType.Ping });
  return {
    broadcast(payload) {
      // Fire and forget (no invocation id), as the fan-out sender of every peer.
      socket.send(encode({ type: MessageType.Invocation, target: 'SendMessage', arguments: ['u', payload] }));
    },
    echo(id, payload) {
      socket.send(
        encode({ type: MessageType.Invocation, invocationId: String(id), target: 'Echo', arguments: [payload] }),
      );
    },
    join(id, group) {
      socket.send(
        encode({ type: MessageType.Invocation, invocationId: String(id), target: 'JoinRoom', arguments: [group] }),
      );
    },
    sendToGroup(group, payload) {
      socket.send(encode({ type: MessageType.Invocation, target: 'SendToRoom', arguments: [group, 'u', payload] }));
    },
    keepAlive: () => socket.send(ping),
    invoke(target, args, id) {
      socket.send(
        encode({
          type: MessageType.Invocation,
          ...(id !== undefined && { invocationId: String(id) }),
          target,
          arguments: args,
        }),
      );
    },
    close: () => socket.close(),
  };
}

/**
 * The invocation id of the MessagePack Completion at `offset` (`[3, headers, invocationId, …]`,
 * docs/protocol.md §2.3), read in place when the headers are empty and the id a short string — what both servers send — so timing
 * an echo costs the client no parse; anything else is parsed in full.
 */
function completionId(payload: Buffer, offset: number, length: number): number {
  const headers = payload[offset + 2];
  const id = payload[offset + 3];
  if (headers === 0x80 && id >= 0xa0 && id <= 0xbf) {
    let value = 0;
    for (let i = offset + 4, end = offset + 4 + (id & 0x1f); i < end; i++) value = value * 10 + payload[i] - 0x30;
    return value;
  }
  const message = parseMessagePackMessage(payload, offset, offset + length) as { invocationId: string };
  return Number.parseInt(message.invocationId, 10);
}

/** One HTTP request over the keep-alive agent of `localAddress`; resolves with the status and the whole body. */
function httpRequest(
  target: Target,
  method: string,
  path: string,
  localAddress: string | undefined,
  body?: string,
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: target.host,
        port: target.port,
        method,
        path,
        agent: agentFor(localAddress),
        headers:
          body === undefined
            ? {}
            : { 'content-type': 'text/plain;charset=UTF-8', 'content-length': String(Buffer.byteLength(body)) },
      },
      (response) => {
        const parts: Buffer[] = [];
        response.on('data', (chunk: Buffer) => parts.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(parts) }));
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

/** Whether `bytes` hold a whole handshake answer; throws when the answer is an error. */
function handshakeAnswered(bytes: Buffer): boolean {
  const end = bytes.indexOf(RS);
  if (end < 0) return false;
  const error = bytes.indexOf('"error"');
  if (error >= 0 && error < end) throw new Error(`handshake refused: ${bytes.toString('utf8', 0, end)}`);
  return true;
}

/**
 * A SignalR JSON client over an HTTP transport, as far as the connect scenario needs it: negotiate, start the
 * transport, send the handshake and wait for its answer, as `@microsoft/signalr` does.
 *
 * - Server-Sent Events: the event stream (`GET` with `Accept: text/event-stream`) on a socket of its own, kept open
 *   as a browser keeps its `EventSource`; the handshake `POST`ed over the keep-alive agent; its answer read from the
 *   stream (docs/protocol.md §1.6).
 * - Long polling: the first poll, which the server answers at once, then the handshake `POST`, then the poll that
 *   brings the answer (docs/protocol.md §1.7). No poll is left pending afterwards: the connection is counted once
 *   its handshake is answered, and the server lets it go after its disconnect timeout.
 *
 * Nothing is sent or received after the handshake: these clients only connect.
 */
async function connectSignalRHttp(
  target: Target,
  transport: Exclude<SignalRTransport, 'WebSockets'>,
  localAddress: string | undefined,
): Promise<BenchClient> {
  const token = await negotiate(target, HUB_PATH, localAddress);
  const path = `${HUB_PATH}?id=${encodeURIComponent(token)}`;
  const handshake = '{"protocol":"json","version":1}\x1e';
  const sendHandshake = async () => {
    const answer = await httpRequest(target, 'POST', path, localAddress, handshake);
    if (answer.status !== 200) throw new Error(`handshake POST answered ${answer.status}`);
  };
  const unsupported = () => {
    throw new Error(`the ${transport} client of the benchmark only connects`);
  };
  if (transport === 'LongPolling') {
    const first = await httpRequest(target, 'GET', path, localAddress);
    if (first.status !== 200) throw new Error(`first poll answered ${first.status}`);
    await sendHandshake();
    // The answer may take more than one poll only if a poll returned empty (a server's poll timeout).
    for (;;) {
      const poll = await httpRequest(target, 'GET', path, localAddress);
      if (poll.status !== 200) throw new Error(`poll answered ${poll.status}`);
      if (handshakeAnswered(poll.body)) break;
    }
    return { broadcast: unsupported, echo: unsupported, close: () => undefined };
  }
  const stream = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const request = http.request(
      {
        host: target.host,
        port: target.port,
        method: 'GET',
        path,
        agent: false,
        localAddress,
        headers: { accept: 'text/event-stream' },
      },
      (response) =>
        response.statusCode === 200
          ? resolve(response)
          : reject(new Error(`event stream answered ${response.statusCode}`)),
    );
    request.on('error', reject);
    request.end();
  });
  const answered = new Promise<void>((resolve, reject) => {
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      try {
        if (!handshakeAnswered(received)) return;
      } catch (error) {
        reject(error as Error);
        return;
      }
      stream.off('data', onData);
      // Later events (pings) are read and dropped, so the server's writes never back up.
      stream.resume();
      resolve();
    };
    stream.on('data', onData);
    // Kept for the stream's life: a server that goes away later must not fail the generator.
    stream.on('error', reject);
    stream.once('end', () => reject(new Error('event stream ended before the handshake answer')));
  });
  await sendHandshake();
  await answered;
  return { broadcast: unsupported, echo: unsupported, close: () => stream.destroy() };
}

// -- plain ws ----------------------------------------------------------------------------------------------------

/**
 * The plain `ws` peer's protocol: a Text frame `B<payload>` asks for a broadcast of `<payload>`; `E<id>:<payload>`
 * is echoed back as it is. Every received frame is one message.
 */
async function connectWs(
  target: Target,
  handlers: ClientHandlers,
  localAddress: string | undefined,
): Promise<BenchClient> {
  const socket = await RawWebSocket.connect({
    host: target.host,
    port: target.port,
    path: '/',
    localAddress,
    onMessage: (_opcode, payload) => {
      if (payload[0] === 0x45 /* E */) {
        handlers.onEcho?.(Number.parseInt(payload.toString('latin1', 1, payload.indexOf(0x3a)), 10));
        return;
      }
      handlers.onDelivered(1);
      handlers.onPayload?.(payload.toString('utf8'));
    },
  });
  return {
    broadcast: (payload) => socket.send(`B${payload}`),
    echo: (id, payload) => socket.send(`E${id}:${payload}`),
    join() {
      throw new Error('the plain ws server has no groups');
    },
    sendToGroup() {
      throw new Error('the plain ws server has no groups');
    },
    keepAlive: () => undefined,
    close: () => socket.close(),
  };
}

// -- Socket.IO ---------------------------------------------------------------------------------------------------

/**
 * Socket.IO v4 on the default namespace: Engine.IO open (`0{…}`), the client's CONNECT (`40`) and the server's
 * answer (`40{…}`); events are `42["name",…]`, acks `43<id>[…]`; Engine.IO pings (`2`) are answered (`3`).
 */
async function connectSocketIO(
  target: Target,
  handlers: ClientHandlers,
  localAddress: string | undefined,
): Promise<BenchClient> {
  let connected: (() => void) | undefined;
  const ready = new Promise<void>((resolve) => (connected = resolve));
  // The open packet may arrive with the upgrade response, before the socket is known here.
  const opened: { socket?: RawWebSocket } = {};
  let connectPending = false;
  const onMessage = (payload: Buffer) => {
    const kind = payload[0];
    if (kind === 0x34 /* 4: message */) {
      const packet = payload[1];
      if (packet === 0x32 /* 2: EVENT */) {
        handlers.onDelivered(1);
        if (handlers.onPayload !== undefined) {
          const text = payload.toString('utf8');
          handlers.onPayload(text.slice(text.indexOf('","') + 3, -2));
        }
      } else if (packet === 0x33 /* 3: ACK */) {
        handlers.onEcho?.(Number.parseInt(payload.toString('latin1', 2, payload.indexOf(0x5b)), 10));
      } else if (packet === 0x30 /* 0: CONNECT */) {
        connected?.();
      }
    } else if (kind === 0x30 /* 0: open */) {
      if (opened.socket === undefined) connectPending = true;
      else opened.socket.send('40');
    } else if (kind === 0x32 /* 2: ping */) {
      opened.socket?.send('3');
    }
  };
  const open = await RawWebSocket.connect({
    host: target.host,
    port: target.port,
    path: '/socket.io/?EIO=4&transport=websocket',
    localAddress,
    onMessage: (_opcode, payload) => onMessage(payload),
  });
  opened.socket = open;
  if (connectPending) open.send('40');
  await ready;
  return {
    broadcast: (payload) => open.send(`42["send","${payload}"]`),
    echo: (id, payload) => open.send(`42${id}["echo","${payload}"]`),
    join: (id, group) => open.send(`42${id}["join","${group}"]`),
    sendToGroup: (group, payload) => open.send(`42["sendto","${group}","${payload}"]`),
    // The server pings and the client answers (above).
    keepAlive: () => undefined,
    close: () => open.close(),
  };
}
