/**
 * The inbound message loop on its own (docs/protocol.md §2.6, §2.9): the real JSON reader in front, a recording sink
 * behind, no sockets. What a client sees through it — order, waiting for an invocation slot, pushing back on the
 * socket, ending at invalid input — is decided here.
 */
import { jsonHubProtocol } from '../../protocol/json-hub-protocol';
import { MessageType, type HubMessage } from '../../protocol/messages';
import { HELD_INPUT_PAUSE_BYTES, InboundLoop, type InboundSink } from '../../src/hub/inbound-loop';

/** A sink that records what the loop does; `onDispatch` decides whether a message waits. */
class RecordingSink implements InboundSink {
  accepting = true;
  readonly events: string[] = [];
  onDispatch: (message: HubMessage) => boolean = () => true;

  dispatch(message: HubMessage): boolean {
    const handled = this.onDispatch(message);
    this.events.push(`${handled ? 'dispatch' : 'wait'} ${describe(message)}`);
    return handled;
  }

  invalidInput(error: unknown): void {
    this.events.push(`invalid ${(error as Error).name}`);
    this.accepting = false;
  }

  loopFailed(error: unknown): void {
    this.events.push(`failed ${(error as Error).message}`);
    this.accepting = false;
  }

  pauseInput(): void {
    this.events.push('pause');
  }

  resumeInput(): void {
    this.events.push('resume');
  }

  resumedAfterWait(): void {
    this.events.push('resumed after wait');
  }
}

function describe(message: HubMessage): string {
  return message.type === MessageType.Invocation
    ? `${message.target}(${message.arguments.join(',')})`
    : `type ${message.type}`;
}

function invocation(target: string, ...args: unknown[]): Buffer {
  return jsonHubProtocol.writeMessage({ type: MessageType.Invocation, target, arguments: args });
}

const ping = (): Buffer => jsonHubProtocol.writeMessage({ type: MessageType.Ping });

function setUp(slots = 1) {
  const sink = new RecordingSink();
  const counters = { messagesReceived: 0 };
  const loop = new InboundLoop(sink, slots, counters);
  loop.reset(jsonHubProtocol.createReader({ maximumMessageSize: 1024 * 1024 }));
  return { sink, loop, counters };
}

test('dispatches every whole message in order, however the bytes are cut, and counts all but Pings', () => {
  const { sink, loop, counters } = setUp();
  const bytes = Buffer.concat([invocation('a', 1), ping(), invocation('b', 2), invocation('c', 3)]);
  // The pieces cut messages in the middle, as TCP may.
  loop.receive(bytes.subarray(0, 5));
  loop.receive(bytes.subarray(5, 17));
  loop.receive(bytes.subarray(17, 30));
  loop.receive(bytes.subarray(30));
  expect(sink.events).toEqual(['dispatch a(1)', 'dispatch type 6', 'dispatch b(2)', 'dispatch c(3)']);
  expect(counters.messagesReceived).toBe(3);
});

test('an Invocation without a free slot waits, everything behind it waits, and a freed slot lets the loop go on', () => {
  const { sink, loop } = setUp(1);
  sink.onDispatch = (message) => message.type !== MessageType.Invocation || loop.takeSlot();
  loop.receive(Buffer.concat([invocation('first'), invocation('second'), ping()]));
  expect(sink.events).toEqual(['dispatch first()', 'wait second()']);
  expect(loop.waiting).toBe(true);

  // Input that arrives meanwhile is held, not dispatched.
  loop.receive(invocation('third'));
  expect(sink.events).toHaveLength(2);

  sink.onDispatch = () => true;
  loop.releaseSlot();
  expect(sink.events.slice(2)).toEqual([
    'dispatch second()',
    'dispatch type 6',
    'dispatch third()',
    'resumed after wait',
  ]);
  expect(loop.waiting).toBe(false);
});

test('slots are counted: with two, a third Invocation waits until one is given back', () => {
  const { sink, loop } = setUp(2);
  sink.onDispatch = (message) => message.type !== MessageType.Invocation || loop.takeSlot();
  loop.receive(Buffer.concat([invocation('a'), invocation('b'), invocation('c')]));
  expect(sink.events).toEqual(['dispatch a()', 'dispatch b()', 'wait c()']);
  loop.releaseSlot();
  expect(sink.events.slice(3)).toEqual(['dispatch c()', 'resumed after wait']);
  expect(loop.takeSlot()).toBe(false);
});

test('held input past the pause threshold stops reading once, and reading resumes when the loop goes on', () => {
  const { sink, loop } = setUp(1);
  let blocked = true;
  sink.onDispatch = () => !blocked;
  loop.receive(invocation('blocked'));
  const filler = invocation('filler', 'x'.repeat(1000));
  const chunks = Math.ceil(HELD_INPUT_PAUSE_BYTES / filler.length) + 3;
  for (let i = 0; i < chunks; i++) loop.receive(filler);
  expect(sink.events.filter((event) => event === 'pause')).toHaveLength(1);
  // It paused only once the held bytes reached the threshold.
  const pausedAfter = sink.events.indexOf('pause');
  expect(pausedAfter).toBeGreaterThan(0);
  expect(sink.events).not.toContain('resume');

  blocked = false;
  loop.wake();
  const dispatched = sink.events.filter((event) => event.startsWith('dispatch'));
  expect(dispatched).toHaveLength(chunks + 1);
  expect(sink.events.slice(-2)).toEqual(['resumed after wait', 'resume']);
});

test('input that arrives before the connection accepts messages is held, then dispatched in order', () => {
  const { sink, loop } = setUp();
  sink.accepting = false;
  loop.receive(Buffer.concat([invocation('early', 1), invocation('early', 2)]));
  expect(sink.events).toEqual([]);
  sink.accepting = true;
  loop.pump();
  expect(sink.events).toEqual(['dispatch early(1)', 'dispatch early(2)']);
});

test('messages before invalid input are dispatched first; the invalid input ends the loop and nothing after it is read', () => {
  const { sink, loop } = setUp();
  loop.receive(Buffer.concat([invocation('before'), Buffer.from('{"type":1,"target":\u001e'), invocation('after')]));
  expect(sink.events).toEqual(['dispatch before()', expect.stringMatching(/^invalid /)]);
  loop.receive(invocation('later'));
  expect(sink.events).toHaveLength(2);
});

test('a wake from inside a dispatch does not re-enter the loop: the running loop looks again', () => {
  const { sink, loop } = setUp(1);
  let offered = 0;
  sink.onDispatch = (message) => {
    if (message.type !== MessageType.Invocation) return true;
    offered++;
    if (offered === 1) return false;
    return true;
  };
  loop.receive(Buffer.concat([invocation('once'), invocation('next')]));
  expect(sink.events).toEqual(['wait once()']);
  // Waking while another wake's dispatch runs: the nested wake only asks the running loop to look again.
  sink.onDispatch = (message) => {
    if (message.type === MessageType.Invocation && message.target === 'once') loop.wake();
    return true;
  };
  loop.wake();
  expect(sink.events.slice(1)).toEqual(['dispatch once()', 'dispatch next()', 'resumed after wait']);
});

test('a dispatch that throws ends the loop through the sink instead of escaping to the transport', () => {
  const { sink, loop } = setUp();
  sink.onDispatch = () => {
    throw new Error('server fault');
  };
  expect(() => loop.receive(Buffer.concat([invocation('a'), invocation('b')]))).not.toThrow();
  expect(sink.events).toEqual(['failed server fault']);
});

test('reset drops what was received but not handled, and reads anew', () => {
  const { sink, loop } = setUp(1);
  sink.onDispatch = () => false;
  loop.receive(Buffer.concat([invocation('lost'), invocation('lost too')]));
  loop.receive(Buffer.from('{"type":1,'));
  loop.reset(jsonHubProtocol.createReader({ maximumMessageSize: 1024 * 1024 }));
  sink.onDispatch = () => true;
  loop.receive(invocation('fresh'));
  expect(sink.events).toEqual(['wait lost()', 'dispatch fresh()']);
});
