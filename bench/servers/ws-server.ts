/**
 * The practical ceiling for Node: a bare `ws` server with no protocol of its own. A broadcast request
 * (`B<payload>`) is framed once — `Sender.frame` builds the WebSocket frame header and payload a single time — and
 * the same pre-framed bytes are written straight to every client's TCP socket, one write per message. An echo
 * request (`E<id>:<payload>`) goes back as it came. Nothing is parsed beyond the first byte.
 */
import WebSocket, { WebSocketServer } from 'ws';
import { argument, serverReady } from './ipc';

type FramingSocket = WebSocket & { _socket: import('node:net').Socket };

/** ws's frame builder: public at runtime (`WebSocket.Sender`), absent from its type definitions. */
interface FrameOptions {
  fin: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
  rsv1: boolean;
}
const Sender = (WebSocket as unknown as { Sender: { frame(data: Buffer, options: FrameOptions): Buffer[] } }).Sender;

const port = Number(argument('port') ?? 0);
// No per-message deflate: none of the measured servers compress.
const server = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false, clientTracking: true });

server.on('connection', (socket: WebSocket) => {
  socket.on('message', (data: Buffer) => {
    if (data[0] === 0x42 /* B */) {
      const parts = Sender.frame(data.subarray(1), {
        fin: true,
        opcode: 1,
        mask: false,
        readOnly: true,
        rsv1: false,
      });
      const frame = Buffer.concat(parts);
      for (const client of server.clients) {
        if (client.readyState === client.OPEN) (client as FramingSocket)._socket.write(frame);
      }
    } else {
      socket.send(data, { binary: false });
    }
  });
});

server.on('listening', () => {
  const address = server.address();
  serverReady(typeof address === 'object' && address !== null ? address.port : port);
});
