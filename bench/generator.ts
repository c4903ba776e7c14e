/**
 * A load-generator process. The orchestrator forks several (receivers, a sender, echo clients), pinned away from
 * the server's core, and drives each over IPC with {@link Command}s; every command gets one {@link Reply}.
 *
 * Roles:
 * - `connect` opens connections (any dialect, spread over several servers and source addresses) that count the
 *   broadcast messages they receive and time the echoes they get back; SignalR JSON connections may also start
 *   Server-Sent Events or long polling instead of a WebSocket (the connect scenario only);
 * - `sender` opens the fan-out sender: it broadcasts over one connection and counts its broadcasts in flight by
 *   the ones it receives back on another (the same one on a single server; one on the other server across a
 *   backplane, so the window covers the trip through Redis);
 * - `send` sets the sender's pace: a fixed rate (capped by a window of broadcasts in flight) or, with rate 0, as
 *   fast as the window allows (saturation);
 * - `echo` invokes `Echo` at a fixed total rate over the open connections and returns latency percentiles;
 * - for the scale scenario: `joinEvenly` puts every open connection in one of several groups, `keepAlive` keeps connections
 *   alive as a client does (a SignalR server closes a connection silent for 30 s), `expect` resolves when a number
 *   of messages more has arrived, with the time, and `sendOnce` has the sender send one broadcast, or one message to
 *   each group, and returns when it was sent. Times are `process.hrtime` (the machine's monotonic clock, the same in
 *   every process), in milliseconds.
 * - `join` puts each SignalR connection in its groups (`JoinRoom`) and resolves once every join has completed;
 * - `pace` sends broadcasts (`SendMessage`) or messages to random groups (`SendToRoom`) from the first connections
 *   at a fixed total rate for a while, and `prime` sends one broadcast or one message to each of some groups — the
 *   scale curve's workloads, where the senders are ordinary connections spread over the servers.
 */
import {
  closeIdleHttpSockets,
  connectClient,
  payloadFor,
  sequenceOf,
  type BenchClient,
  type Dialect,
  type SignalRTransport,
  type Target,
} from './lib/dialects';
import { PauseMonitor, type Pauses } from './lib/pauses';
import { percentile } from './lib/stats';

/** What the orchestrator asks. */
export type Command =
  | {
      op: 'connect';
      dialect: Dialect;
      targets: Target[];
      count: number;
      concurrency: number;
      localAddresses: string[];
      /** SignalR dialects only: the transport to start (WebSockets when absent). */
      transport?: SignalRTransport;
    }
  | { op: 'delivered' }
  | { op: 'sender'; dialect: Dialect; sendTarget: Target; ackTarget: Target; localAddress: string }
  | { op: 'send'; rate: number; window: number }
  | { op: 'echo'; rate: number; durationMs: number }
  | { op: 'joinEvenly'; groups: number; concurrency: number }
  | { op: 'keepAlive'; intervalMs: number }
  | { op: 'expect'; count: number }
  | { op: 'sendOnce'; groups: number }
  | { op: 'join'; groups: string[][] }
  | { op: 'pace'; kind: 'all' | 'group'; rate: number; durationMs: number; senders: number; groups: string[] }
  | { op: 'prime'; kind: 'all' | 'group'; senders: number; groups: string[] }
  | { op: 'close' };

/** Results of the commands that return something. */
export interface ConnectResult {
  elapsedMs: number;
  connected: number;
  failed: number;
  firstError?: string;
}
export interface EchoResult {
  sent: number;
  received: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** This generator's own stalls during the calls. */
  generatorPauses: Pauses;
}

/** What `pace` sent: the total, and (to random groups) how many went to each of the command's groups. */
export interface PaceResult {
  sent: number;
  perGroup: number[];
}

export type Reply = { id: number; result?: unknown; error?: string };

const clients: BenchClient[] = [];
const pauses = new PauseMonitor();
let delivered = 0;
/** While joins are in flight, completions go here instead of the echo bookkeeping. */
let onCompletion: ((id: number) => void) | null = null;

// Echo bookkeeping: send times by id, latencies in ms.
let sendTimes = new Float64Array(0);
let latencies: number[] = [];

/** Invocation ids of group joins start here, above any echo's. */
const JOIN_ID_BASE = 1_000_000_000;
let joinAnswered = 0;
let onJoinAnswered: (() => void) | null = null;
/** Waiting `expect` commands: the delivered count each waits for. */
let expectations: Array<{ until: number; resolve: (atMs: number) => void }> = [];

/** The machine's monotonic clock in milliseconds, comparable between processes. */
const clockMs = () => Number(process.hrtime.bigint()) / 1e6;

const handlers = {
  onDelivered(count: number) {
    delivered += count;
    if (expectations.length > 0) {
      const now = clockMs();
      expectations = expectations.filter((expectation) => {
        if (delivered < expectation.until) return true;
        expectation.resolve(now);
        return false;
      });
    }
  },
  onEcho(id: number) {
    if (id >= JOIN_ID_BASE) {
      joinAnswered++;
      onJoinAnswered?.();
      return;
    }
    if (onCompletion !== null) return onCompletion(id);
    const sentAt = sendTimes[id];
    if (sentAt > 0) {
      latencies.push(performance.now() - sentAt);
      sendTimes[id] = 0;
    }
  },
};

async function connectMany(command: Extract<Command, { op: 'connect' }>): Promise<ConnectResult> {
  const started = performance.now();
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  const worker = async () => {
    while (next < command.count) {
      const index = next++;
      const target = command.targets[index % command.targets.length];
      const localAddress = command.localAddresses[index % command.localAddresses.length];
      try {
        clients.push(await connectClient(command.dialect, target, handlers, localAddress, command.transport));
      } catch (error) {
        failed++;
        firstError ??= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(command.concurrency, command.count) }, worker));
  closeIdleHttpSockets();
  return { elapsedMs: performance.now() - started, connected: command.count - failed, failed, firstError };
}

// -- the fan-out sender ------------------------------------------------------------------------------------------

let sendClient: BenchClient | null = null;
let sent = 0;
let acked = 0;
let rate = 0;
let window = 8;
let pacer: NodeJS.Timeout | null = null;
let paceStart = 0;
let pacedSent = 0;

function fill(limit: number): void {
  let budget = Math.min(limit, window - (sent - acked));
  while (budget-- > 0) {
    sendClient!.broadcast(payloadFor(++sent));
  }
}

function onAck(payload: string): void {
  const sequence = sequenceOf(payload);
  if (sequence > acked) acked = sequence;
  if (rate === 0 && pacer === null && sendClient !== null && saturating) fill(Number.MAX_SAFE_INTEGER);
}

let saturating = false;

async function openSender(command: Extract<Command, { op: 'sender' }>): Promise<void> {
  const same = command.sendTarget.port === command.ackTarget.port && command.sendTarget.host === command.ackTarget.host;
  const ackHandlers = { ...handlers, onPayload: onAck };
  const sender = await connectClient(
    command.dialect,
    command.sendTarget,
    same ? ackHandlers : handlers,
    command.localAddress,
  );
  clients.push(sender);
  if (!same) clients.push(await connectClient(command.dialect, command.ackTarget, ackHandlers, command.localAddress));
  sendClient = sender;
}

function setPace(command: Extract<Command, { op: 'send' }>): void {
  if (pacer !== null) clearInterval(pacer);
  pacer = null;
  rate = command.rate;
  window = command.window;
  saturating = false;
  if (rate === 0 && window === 0) return;
  if (rate === 0) {
    saturating = true;
    fill(Number.MAX_SAFE_INTEGER);
    return;
  }
  paceStart = performance.now();
  pacedSent = 0;
  pacer = setInterval(() => {
    const due = Math.floor(((performance.now() - paceStart) * rate) / 1000) - pacedSent;
    // A broadcast the window has no room for is skipped, not queued: the offered rate is a ceiling.
    if (due > 0) {
      fill(due);
      pacedSent += due;
    }
  }, 2);
}

// -- echo --------------------------------------------------------------------------------------------------------

function runEcho(command: Extract<Command, { op: 'echo' }>): Promise<EchoResult> {
  const total = Math.ceil((command.rate * command.durationMs) / 1000);
  sendTimes = new Float64Array(total + 1);
  latencies = [];
  let issued = 0;
  const started = performance.now();
  const payload = payloadFor(0);
  pauses.take();
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - started) * command.rate) / 1000));
      while (issued < due) {
        const id = ++issued;
        sendTimes[id] = performance.now();
        clients[id % clients.length].echo(id, payload);
      }
      if (issued >= total) {
        clearInterval(timer);
        // Give the last answers up to a second to come back; what has not by then counts as lost.
        const deadline = performance.now() + 1000;
        const wait = setInterval(() => {
          if (latencies.length >= total || performance.now() > deadline) {
            clearInterval(wait);
            const sorted = Float64Array.from(latencies).sort();
            resolve({
              sent: total,
              received: sorted.length,
              p50: percentile(sorted, 0.5),
              p90: percentile(sorted, 0.9),
              p99: percentile(sorted, 0.99),
              max: sorted.length > 0 ? sorted[sorted.length - 1] : NaN,
              generatorPauses: pauses.take(),
            });
          }
        }, 10);
      }
    }, 1);
  });
}

// -- scale: groups, keep-alive, single sends -----------------------------------------------------------------

/** Puts connection `i` of this generator in group `g<i mod groups>`, `concurrency` joins in flight. */
function joinEvenly(command: Extract<Command, { op: 'joinEvenly' }>): Promise<void> {
  const members = clients.length;
  joinAnswered = 0;
  let next = 0;
  return new Promise((resolve) => {
    const issue = () => {
      while (next < members && next - joinAnswered < command.concurrency) {
        clients[next].join!(JOIN_ID_BASE + next, `g${next % command.groups}`);
        next++;
      }
    };
    onJoinAnswered = () => {
      if (joinAnswered >= members) {
        onJoinAnswered = null;
        resolve();
      } else issue();
    };
    if (members === 0) resolve();
    else issue();
  });
}

let keepAliveTimer: NodeJS.Timeout | null = null;

/** Sends each connection's keep-alive once per `intervalMs`, a slice of the connections every 100 ms. */
function keepAlive(intervalMs: number): void {
  if (keepAliveTimer !== null) clearInterval(keepAliveTimer);
  keepAliveTimer = null;
  if (intervalMs <= 0) return;
  const slices = Math.max(1, Math.round(intervalMs / 100));
  let slice = 0;
  keepAliveTimer = setInterval(() => {
    for (let i = slice; i < clients.length; i += slices) clients[i].keepAlive?.();
    slice = (slice + 1) % slices;
  }, 100);
}

/** Resolves with the time at which `count` more messages than now have arrived. */
function expectDeliveries(count: number): Promise<number> {
  return new Promise((resolve) => {
    if (count <= 0) return resolve(clockMs());
    expectations.push({ until: delivered + count, resolve });
  });
}

/** One broadcast (`groups` 0), or one message to each of `groups` groups; returns the time just before it left. */
function sendOnce(groups: number): number {
  const at = clockMs();
  if (groups === 0) sendClient!.broadcast(payloadFor(++sent));
  else for (let group = 0; group < groups; group++) sendClient!.sendToGroup!(`g${group}`, payloadFor(++sent));
  return at;
}

// -- groups and paced hub-method sends ---------------------------------------------------------------------------

function invoker(client: BenchClient): NonNullable<BenchClient['invoke']> {
  if (client.invoke === undefined) throw new Error('this dialect cannot invoke hub methods');
  return client.invoke;
}

/** `JoinRoom` for every group of every connection (`groups[i]` are the groups of connection `i`), all at once. */
function joinGroups(command: Extract<Command, { op: 'join' }>): Promise<number> {
  const total = command.groups.reduce((sum, groups) => sum + groups.length, 0);
  if (command.groups.length > clients.length)
    throw new Error(`${command.groups.length} connections' groups for ${clients.length} connections`);
  return new Promise((resolve) => {
    let done = 0;
    onCompletion = () => {
      if (++done < total) return;
      onCompletion = null;
      resolve(done);
    };
    let id = 0;
    command.groups.forEach((groups, index) => {
      const invoke = invoker(clients[index]);
      for (const group of groups) invoke('JoinRoom', [group], ++id);
    });
    if (total === 0) resolve(0);
  });
}

let paceSequence = 0;

/** One message from sender `from` (of the first `senders` connections): a broadcast, or one to `group`. */
function sendOne(from: number, group: string | undefined): void {
  const payload = payloadFor(++paceSequence);
  const client = clients[from];
  if (group === undefined) client.broadcast(payload);
  else invoker(client)('SendToRoom', [group, 'u', payload]);
}

/** `rate` messages per second for `durationMs`, from the first `senders` connections in turn. */
function pace(command: Extract<Command, { op: 'pace' }>): Promise<PaceResult> {
  const total = Math.round((command.rate * command.durationMs) / 1000);
  const perGroup = new Array<number>(command.groups.length).fill(0);
  let sent = 0;
  const started = performance.now();
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - started) * command.rate) / 1000));
      while (sent < due) {
        let group: string | undefined;
        if (command.kind === 'group') {
          const index = Math.floor(Math.random() * command.groups.length);
          perGroup[index]++;
          group = command.groups[index];
        }
        sendOne(sent % command.senders, group);
        sent++;
      }
      if (sent >= total) {
        clearInterval(timer);
        resolve({ sent, perGroup });
      }
    }, 2);
  });
}

function prime(command: Extract<Command, { op: 'prime' }>): number {
  if (command.kind === 'all') {
    sendOne(0, undefined);
    return 1;
  }
  command.groups.forEach((group, index) => sendOne(index % command.senders, group));
  return command.groups.length;
}

// -- command loop ------------------------------------------------------------------------------------------------

async function handle(command: Command): Promise<unknown> {
  switch (command.op) {
    case 'connect':
      return connectMany(command);
    case 'delivered':
      return delivered;
    case 'sender':
      return openSender(command);
    case 'send':
      return setPace(command);
    case 'echo':
      return runEcho(command);
    case 'join':
      return joinGroups(command);
    case 'joinEvenly':
      return joinEvenly(command);
    case 'keepAlive':
      return keepAlive(command.intervalMs);
    case 'expect':
      return expectDeliveries(command.count);
    case 'sendOnce':
      return sendOnce(command.groups);
    case 'pace':
      return pace(command);
    case 'prime':
      return prime(command);
    case 'close':
      if (pacer !== null) clearInterval(pacer);
      if (keepAliveTimer !== null) clearInterval(keepAliveTimer);
      saturating = false;
      for (const client of clients) client.close();
      clients.length = 0;
      setTimeout(() => process.exit(0), 200);
      return undefined;
  }
}

process.on('message', (message: { id: number } & Command) => {
  handle(message).then(
    (result) => process.send?.({ id: message.id, result } satisfies Reply),
    (error: unknown) =>
      process.send?.({ id: message.id, error: String((error as Error)?.message ?? error) } satisfies Reply),
  );
});
process.on('disconnect', () => process.exit(0));
