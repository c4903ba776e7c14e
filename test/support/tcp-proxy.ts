/**
 * A TCP proxy in front of a test server, so a test can cut a client's connections the way a network does — no
 * close frame, no FIN from the client's code — and watch the client recover through the same address.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';

/** A running proxy. */
export interface TcpProxy {
  /** `http://127.0.0.1:<proxy port>` */
  readonly url: string;
  /** Destroys every connection currently going through the proxy; later ones pass again. */
  cut(): number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Cuts every connection and refuses new ones (reset at once) until {@link TcpProxy.unblock}: a network outage. */
  block(): void;
  unblock(): void;
  close(): Promise<void>;
}

/** Starts a proxy on a free loopback port that forwards to `targetPort`. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  let accepted = 0;
  let blocked = false;
  const server = net.createServer((client) => {
    if (blocked) {
      client.resetAndDestroy();
      return;
    }
    accepted++;
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const cut = (): number => {
    const count = pairs.size;
    for (const [client, upstream] of [...pairs]) {
      // resetAndDestroy sends RST: the peers see an abrupt loss, as when a network path dies.
      client.resetAndDestroy();
      upstream.resetAndDestroy();
    }
    pairs.clear();
    return count;
  };
  return {
    url: `http://127.0.0.1:${port}`,
    get accepted() {
      return accepted;
    },
    cut,
    block: () => {
      blocked = true;
      cut();
    },
    unblock: () => {
      blocked = false;
    },
    close: async () => {
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
