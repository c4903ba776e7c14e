/**
 * The chat server under a stream of corrupted traffic: hundreds of raw WebSocket and long-polling connections send
 * mutated handshakes and mutated JSON and MessagePack messages, while an official client keeps chatting. The
 * server must answer each bad connection the way .NET would (an error Completion, a Close with an error, a closed
 * socket), never fail inside (no `signalr.connection.error` in its log), disturb nobody else, and leave no
 * connection behind.
 */
import { Writable } from 'node:stream';
import { HubConnectionState } from '@microsoft/signalr';
import WebSocket from 'ws';
import { JsonHubProtocol, MessagePackHubProtocol } from '../../protocol';
import { buildChatApp } from '../../samples/chat/app';
import { ClientPool, eventually } from '../support/clients';
import { CORPUS, chunks, generator, mutate } from '../support/mutations';
import { listen, type RunningServer } from '../support/servers';

const RS = '\u001e';
const SEED = Number(process.env.FUZZ_SEED ?? 2026);
const CONNECTIONS = Number(process.env.FUZZ_CONNECTIONS ?? 240);
const json = new JsonHubProtocol();
const messagepack = new MessagePackHubProtocol();

let server: RunningServer;
const logLines: string[] = [];
const pool = new ClientPool(() => server.hubUrl);

beforeAll(async () => {
  // The server's own log, to catch any failure inside it.
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const app = await buildChatApp({ fastify: { logger: { level: 'info', stream } } });
  server = await listen(app);
});
afterAll(async () => {
  await pool.stopAll();
  await server.close();
});

/** One raw WebSocket connection that sends `frames` after its handshake and waits briefly for the server. */
async function corruptedWebSocket(
  handshake: string | Buffer,
  frames: Array<{ data: Buffer; binary: boolean }>,
): Promise<void> {
  const socket = new WebSocket(server.hubUrl.replace('http', 'ws'));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => {
    socket.once('open', () => resolve());
    socket.once('close', () => resolve());
  });
  if (socket.readyState !== WebSocket.OPEN) return;
  socket.send(handshake);
  for (const frame of frames)
    if (socket.readyState === WebSocket.OPEN) socket.send(frame.data, { binary: frame.binary });
  await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 150))]);
  socket.terminate();
  await closed;
}

/** One long-polling connection whose POSTs carry corrupted messages. */
async function corruptedLongPolling(handshake: string, bodies: Buffer[]): Promise<void> {
  const negotiated = (await (
    await fetch(`${server.hubUrl}/negotiate?negotiateVersion=1`, { method: 'POST' })
  ).json()) as {
    connectionToken: string;
  };
  const url = `${server.hubUrl}?id=${encodeURIComponent(negotiated.connectionToken)}`;
  await fetch(url); // the first poll returns at once
  const statuses = [await fetch(url, { method: 'POST', body: handshake })];
  for (const body of bodies) statuses.push(await fetch(url, { method: 'POST', body: new Uint8Array(body) }));
  for (const response of statuses) {
    await response.arrayBuffer();
    // .NET's answers to a send: 200, or 404 once the connection it names has ended.
    expect([200, 404]).toContain(response.status);
  }
  await fetch(url, { method: 'DELETE' }).then((response) => response.arrayBuffer());
}

test(`${CONNECTIONS} connections sending corrupted messages disturb nobody and leave nothing behind`, async () => {
  const random = generator(SEED);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const bystander = await pool.connect({}, ['ReceiveMessage']);
  const endpoint = server.app.signalr.endpoints[0];
  expect(endpoint.connectionCount).toBe(1);

  let sent = 0;
  for (let batch = 0; batch < CONNECTIONS / 20; batch++) {
    const connections: Promise<void>[] = [];
    for (let i = 0; i < 20; i++) {
      const binary = random() < 0.5;
      const protocol = binary ? messagepack : json;
      const validHandshake = `{"protocol":"${protocol.name}","version":1}${RS}`;
      // One connection in eight gets a corrupted handshake; the rest a valid one followed by corrupted messages.
      const handshake = random() < 0.125 ? mutate(Buffer.from(validHandshake), random) : validHandshake;
      const messages = Buffer.concat(
        Array.from({ length: 1 + Math.floor(random() * 4) }, () => protocol.writeMessage(pick(CORPUS))),
      );
      const corrupted = mutate(messages, random);
      if (random() < 0.8) {
        // Mostly the right frame type for the protocol, sometimes the other one.
        const frameBinary = random() < 0.9 ? binary : !binary;
        connections.push(
          corruptedWebSocket(
            handshake,
            chunks(corrupted, random).map((data) => ({ data, binary: frameBinary })),
          ),
        );
      } else if (!binary) {
        connections.push(corruptedLongPolling(validHandshake, chunks(corrupted, random)));
      }
      sent++;
    }
    await Promise.all(connections);
    // The bystander is served throughout.
    await bystander.connection.invoke('SendMessage', 'bystander', `still here ${batch}`);
    expect(await bystander.connection.invoke('Echo', batch)).toBe(batch);
  }
  expect(sent).toBe(CONNECTIONS);

  expect(bystander.connection.state).toBe(HubConnectionState.Connected);
  // Every corrupted connection is gone: only the bystander is left, in the hub and in the connection table.
  await eventually(
    () => endpoint.connectionCount === 1,
    `only the bystander to remain (${endpoint.connectionCount} connections)`,
    10_000,
  );
  await eventually(
    () => endpoint.connections.size === 1,
    `no negotiated connection to remain (${endpoint.connections.size})`,
    20_000,
  );
  // Nothing failed inside the server (its log is read: the refused handshakes are in it).
  expect(logLines.some((line) => line.includes('"signalr.handshake.failed"'))).toBe(true);
  const internalFailures = logLines.filter((line) => line.includes('"signalr.connection.error"'));
  expect(internalFailures).toEqual([]);
  // And the server still takes new clients.
  const newcomer = await pool.connect({}, []);
  expect(await newcomer.connection.invoke('Echo', 'after')).toBe('after');
}, 120_000);
