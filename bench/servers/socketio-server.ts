/**
 * The Socket.IO 4 peer: `send(payload)` is emitted to everyone as `m` (Socket.IO encodes a broadcast once and
 * writes the same packet to every client), `echo(value, ack)` acknowledges with the value. WebSocket transport
 * only, no compression, as the clients use it. Rooms stand in for groups: `join(room)` is acknowledged, `sendto(room,
 * payload)` emits `m` to the room. `--redis <url>` adds `@socket.io/redis-adapter` (ioredis).
 */
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { argument, serverReady } from './ipc';

async function main(): Promise<void> {
  const port = Number(argument('port') ?? 0);
  const redisUrl = argument('redis');
  const httpServer = createServer();
  const io = new Server(httpServer, { transports: ['websocket'], perMessageDeflate: false, serveClient: false });
  if (redisUrl !== undefined) {
    const { createAdapter } = await import('@socket.io/redis-adapter');
    const { Redis } = await import('ioredis');
    const publisher = new Redis(redisUrl);
    const subscriber = publisher.duplicate();
    io.adapter(createAdapter(publisher, subscriber));
  }
  io.on('connection', (socket) => {
    socket.on('send', (payload: string) => {
      io.emit('m', payload);
    });
    socket.on('echo', (value: unknown, ack: (value: unknown) => void) => ack(value));
    // Rooms, for the scale scenario's group sends: `join(room, ack)`, `sendto(room, payload)`.
    socket.on('join', (room: string, ack: () => void) => {
      void socket.join(room);
      ack();
    });
    socket.on('sendto', (room: string, payload: string) => {
      io.to(room).emit('m', payload);
    });
  });
  httpServer.listen(port, '127.0.0.1', () => {
    const address = httpServer.address();
    serverReady(typeof address === 'object' && address !== null ? address.port : port);
  });
}

void main().catch((error: unknown) => {
  process.stderr.write(`${String((error as Error)?.stack ?? error)}\n`);
  process.exit(1);
});
