/**
 * Redis deployments for backplane tests, made of real `redis-server` / `redis-sentinel` processes on free loopback
 * ports (Debian's packages; `.ci/run` installs them): TLS certificates made with `openssl`, a TLS server with ACL
 * users, a Redis Cluster of three masters, a master with a replica watched by a sentinel. Every process started is
 * recorded as soon as it runs, so `stop()` in `afterAll` ends them all, even after a setup that failed half-way.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import Redis, { type RedisOptions } from 'ioredis';
import { RedisServer, freePort } from './redis-server';

const run = promisify(execFile);

/** A scratch directory removed by `stop()`. */
export class Scratch {
  readonly dir = mkdtempSync(path.join(tmpdir(), 'signalr-redis-'));

  file(name: string): string {
    return path.join(this.dir, name);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** PEM files of a test PKI. */
export interface Certificates {
  /** The CA that signed the server and client certificates. */
  readonly ca: string;
  /** A CA that signed nothing here: a client trusting only it must refuse the server. */
  readonly otherCa: string;
  /** The server's certificate (names `localhost` and `127.0.0.1`) and key. */
  readonly serverCert: string;
  readonly serverKey: string;
  /** A client certificate and key, signed by `ca`. */
  readonly clientCert: string;
  readonly clientKey: string;
}

async function openssl(args: string[]): Promise<void> {
  await run('openssl', args);
}

/** Makes a CA, a server and a client certificate signed by it, and an unrelated CA (P-256 keys: quick). */
export async function makeCertificates(scratch: Scratch): Promise<Certificates> {
  const f = (name: string) => scratch.file(name);
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const caExtensions = [
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ];
  await Promise.all([
    openssl([
      'req',
      '-x509',
      ...key,
      '-keyout',
      f('ca.key'),
      '-out',
      f('ca.crt'),
      '-days',
      '2',
      '-subj',
      '/CN=Backplane Test CA',
      ...caExtensions,
    ]),
    openssl([
      'req',
      '-x509',
      ...key,
      '-keyout',
      f('other-ca.key'),
      '-out',
      f('other-ca.crt'),
      '-days',
      '2',
      '-subj',
      '/CN=Unrelated CA',
      ...caExtensions,
    ]),
    openssl(['req', ...key, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost']),
    openssl(['req', ...key, '-keyout', f('client.key'), '-out', f('client.csr'), '-subj', '/CN=backplane-client']),
  ]);
  writeFileSync(f('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  writeFileSync(f('client.ext'), 'extendedKeyUsage=clientAuth\n');
  const sign = (name: string) =>
    openssl([
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.crt'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-out',
      f(`${name}.crt`),
      '-days',
      '2',
      '-extfile',
      f(`${name}.ext`),
    ]);
  await Promise.all([sign('server'), sign('client')]);
  return {
    ca: f('ca.crt'),
    otherCa: f('other-ca.crt'),
    serverCert: f('server.crt'),
    serverKey: f('server.key'),
    clientCert: f('client.crt'),
    clientKey: f('client.key'),
  };
}

/** `redis-server` arguments for a TLS-only server with these certificates (clients need no certificate). */
export function tlsArgs(certs: Certificates): string[] {
  return [
    '--tls-cert-file',
    certs.serverCert,
    '--tls-key-file',
    certs.serverKey,
    '--tls-ca-cert-file',
    certs.ca,
    '--tls-auth-clients',
    'optional',
  ];
}

/** Processes of one topology, stopped together. */
export class Processes {
  readonly all: RedisServer[] = [];

  async start(options: Parameters<typeof RedisServer.start>[0]): Promise<RedisServer> {
    const server = await RedisServer.start(options);
    this.all.push(server);
    return server;
  }

  async stop(): Promise<void> {
    await Promise.all(this.all.map((server) => server.stop()));
  }
}

/** Polls `check` until it returns true; rejects with `what` after `timeoutMs`. */
export async function until(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Runs one command on a short-lived admin connection. */
export async function command(port: number, args: string[], options: RedisOptions = {}): Promise<unknown> {
  const redis = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    ...options,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await redis.call(args[0], ...args.slice(1));
  } finally {
    redis.disconnect();
  }
}

/** A Redis Cluster of masters on free ports (cluster bus ports free as well), made with `redis-cli --cluster create`. */
export class RedisClusterTopology {
  readonly processes = new Processes();
  readonly nodes: RedisServer[] = [];

  constructor(private readonly scratch: Scratch) {}

  /**
   * Starts `masters` nodes (and `replicasPerMaster` replicas of each) and makes them a cluster. Call on a topology already kept for `afterAll`: the nodes
   * started before a failure are then stopped too.
   */
  async start(masters = 3, replicasPerMaster = 0): Promise<void> {
    const { scratch } = this;
    for (let i = 0; i < masters * (1 + replicasPerMaster); i++) {
      const busPort = await freePort();
      const node = await this.processes.start({
        args: (port) => [
          '--cluster-enabled',
          'yes',
          '--cluster-port',
          String(busPort),
          '--cluster-config-file',
          scratch.file(`nodes-${port}.conf`),
          '--cluster-node-timeout',
          '1000',
          '--dir',
          scratch.dir,
        ],
      });
      this.nodes.push(node);
    }
    await run('redis-cli', [
      '--cluster',
      'create',
      ...this.nodes.map((node) => `127.0.0.1:${node.port}`),
      '--cluster-replicas',
      String(replicasPerMaster),
      '--cluster-yes',
    ]);
    await this.waitHealthy();
  }

  /** Every running node sees the cluster as `ok` with every node known. */
  async waitHealthy(timeoutMs = 20_000): Promise<void> {
    await until(
      async () => {
        const infos = await Promise.all(
          this.nodes.map((node) => command(node.port, ['CLUSTER', 'INFO']) as Promise<string>),
        );
        return infos.every(
          (info) =>
            /cluster_state:ok/.test(info) && new RegExp(`cluster_known_nodes:${this.nodes.length}\\b`).test(info),
        );
      },
      'the cluster to be ok on every node',
      timeoutMs,
    );
  }

  async stop(): Promise<void> {
    await this.processes.stop();
  }
}

/** A master, one replica, and one sentinel watching them under `name`. */
export class SentinelTopology {
  readonly processes = new Processes();
  master!: RedisServer;
  replica!: RedisServer;
  sentinel!: RedisServer;

  constructor(readonly name = 'backplane') {}

  /** Starts the master, the replica and the sentinel (see {@link RedisClusterTopology.start} about failures). */
  async start(scratch: Scratch): Promise<void> {
    const { name, processes } = this;
    // Their own directory: a replica writes the RDB it receives from the master to disk.
    this.master = await processes.start({ args: () => ['--dir', scratch.dir] });
    const master = this.master;
    this.replica = await processes.start({
      args: () => ['--replicaof', '127.0.0.1', String(master.port), '--dir', scratch.dir],
    });
    const replica = this.replica;
    await until(
      async () => /master_link_status:up/.test((await command(replica.port, ['INFO', 'replication'])) as string),
      'the replica to sync',
    );
    this.sentinel = await processes.start({
      command: 'redis-sentinel',
      configFile: (port) => {
        const file = scratch.file(`sentinel-${port}.conf`);
        writeFileSync(
          file,
          [
            `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
            `sentinel down-after-milliseconds ${name} 1000`,
            `sentinel failover-timeout ${name} 5000`,
            '',
          ].join('\n'),
        );
        return file;
      },
      args: () => ['--dir', scratch.dir],
    });
    await until(async () => {
      const replicas = (await command(this.sentinel.port, ['SENTINEL', 'REPLICAS', name])) as string[][];
      return (
        replicas.length === 1 &&
        /(^|,)slave(,|$)/.test(replicas[0][replicas[0].indexOf('flags') + 1]) &&
        !/s_down|disconnected/.test(replicas[0][replicas[0].indexOf('flags') + 1])
      );
    }, 'the sentinel to know the replica');
  }

  /** The master's port as the sentinel reports it. */
  async masterPort(): Promise<number> {
    const [, port] = (await command(this.sentinel.port, [
      'SENTINEL',
      'GET-MASTER-ADDR-BY-NAME',
      this.name,
    ])) as string[];
    return Number(port);
  }

  async stop(): Promise<void> {
    await this.processes.stop();
  }
}
