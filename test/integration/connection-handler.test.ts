/**
 * Raw connection endpoints (`connectionHandlers`) end as .NET's connection handlers do: with the handler (a failing
 * one included, logged), and on server shutdown; a stopped client ends the handler's reading.
 */
import Fastify from 'fastify';
import { fastifySignalR, type ConnectionContext } from '../../src/index';
import { eventually } from '../support/clients';
import { RawWebSocket } from '../support/raw-websocket';
import { listen, type RunningServer } from '../support/servers';

let server: RunningServer;
const errors: string[] = [];
const ended: Array<{ id: string; error: string | undefined }> = [];
const waiting = new Set<ConnectionContext>();

beforeAll(async () => {
  const app = Fastify({ logger: { level: 'error', stream: { write: (line: string) => errors.push(line) } } });
  await app.register(fastifySignalR, {
    hubs: [],
    connectionHandlers: [
      {
        path: '/fail',
        onConnected: async (connection) => {
          connection.send('about to fail');
          throw new Error('the handler failed');
        },
      },
      {
        path: '/read',
        onConnected: async (connection) => {
          waiting.add(connection);
          const chunks: string[] = [];
          for await (const chunk of connection) chunks.push(chunk.toString());
          ended.push({ id: connection.connectionId, error: (await connection.closed)?.message });
          waiting.delete(connection);
        },
      },
      {
        path: '/forever',
        onConnected: async (connection) => {
          waiting.add(connection);
          await new Promise<void>((resolve) => connection.signal.addEventListener('abort', () => resolve()));
          waiting.delete(connection);
        },
      },
    ],
  });
  server = await listen(app, '/read');
});

afterAll(async () => {
  await server?.close();
});

test('a failing handler ends its connection after what it sent, with 1000, and is logged', async () => {
  const socket = await RawWebSocket.connect(`${server.url}/fail`);
  expect((await socket.frame(0)).text).toBe('about to fail');
  expect(await socket.closed).toEqual({ code: 1000, reason: '' });
  await eventually(
    () => errors.some((line) => line.includes('connection handler failed') && line.includes('the handler failed')),
    'the failure to be logged',
  );
});

test('a client that closes ends the handler’s reading', async () => {
  const socket = await RawWebSocket.connect(`${server.url}/read`);
  socket.socket.send('one');
  await eventually(() => waiting.size > 0, 'the handler to start');
  socket.socket.close(1000);
  await eventually(() => ended.length === 1, 'the handler to see the end');
  expect(ended[0].error).toBeUndefined();
  await eventually(() => waiting.size === 0, 'the handler to return');
});

test('closing the server closes raw connections with 1000', async () => {
  const socket = await RawWebSocket.connect(`${server.url}/forever`);
  await eventually(() => waiting.size === 1, 'the handler to start');
  await server.close();
  expect(await socket.closed).toEqual({ code: 1000, reason: '' });
  // The handler's signal told it the connection ended.
  await eventually(() => waiting.size === 0, 'the handler to return');
});
