/**
 * Real servers for tests: our chat sample (or any app) listening on a free loopback port.
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildChatApp, type ChatAppOptions } from '../../samples/chat/app';

/** A listening server and where to reach it. */
export interface RunningServer {
  readonly app: FastifyInstance;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** The chat hub's URL. */
  readonly hubUrl: string;
  close(): Promise<void>;
}

/** Starts an app on 127.0.0.1 with a free port. */
export async function listen(app: FastifyInstance, hubPath = '/chathub'): Promise<RunningServer> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  let closed: Promise<void> | undefined;
  const close = async () => {
    // Clients leave keep-alive sockets behind (an aborted poll can leave one that never sent a byte, which Node
    // does not count as idle); once the hubs have said goodbye, those must not hold the test up.
    const force = setTimeout(() => app.server.closeAllConnections(), 1000);
    try {
      await app.close();
    } finally {
      clearTimeout(force);
    }
  };
  return { app, url, hubUrl: `${url}${hubPath}`, close: () => (closed ??= close()) };
}

/** Starts the chat sample with SignalR option overrides. */
export async function startChatServer(options: ChatAppOptions['signalr'] = {}): Promise<RunningServer> {
  const app = await buildChatApp({ fastify: { logger: false }, signalr: options });
  return listen(app);
}
