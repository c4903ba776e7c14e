/**
 * The backplane over TLS as an ACL user with only the documented permissions, as on AWS MemoryDB or ElastiCache
 * with RBAC: one TLS-only redis-server (certificates made by `openssl` for this run, the default user off), two
 * server processes of ours — one configured with the StackExchange.Redis connection string a .NET server would use,
 * the other with a `rediss://` URL, a client certificate and a TLS server name — exchanging every message kind.
 * A server that trusts the wrong CA, and one with a wrong password, do not start, and say why without the password.
 */
import { readFileSync } from 'node:fs';
import { ACL_COMMANDS, aclRules } from '../support/backplane-acl';
import { exchangeEveryKind } from '../support/backplane-exchange';
import type { RedisServer } from '../support/redis-server';
import { Processes, Scratch, command, makeCertificates, tlsArgs, type Certificates } from '../support/redis-topology';
import { ServerProcess, stopAll } from '../support/server-process';

const HUB = 'Backplane.Tls.ChatHub';
const PREFIX = 'ChatRoom';
const USER = 'signalr';
const PASSWORD = 'Tls-acl-backplane-5ecret';
const ADMIN_PASSWORD = 'admin-5ecret';

const scratch = new Scratch();
const processes = new Processes();
let certs: Certificates;
let redis: RedisServer | undefined;
let a: ServerProcess | undefined;
let b: ServerProcess | undefined;

/**
 * The connection string a .NET server beside ours would be given (docs/protocol.md §3.2: channelPrefix= is SE.Redis's).
 */
const connectionString = (password: string, extra = '') =>
  `127.0.0.1:${redis!.port},user=${USER},password=${password},ssl=True,channelPrefix=${PREFIX}${extra}`;

const admin = () => ({
  username: 'admin',
  password: ADMIN_PASSWORD,
  tls: { ca: readFileSync(certs.ca), servername: 'localhost' },
});

beforeAll(async () => {
  certs = await makeCertificates(scratch);
  redis = await processes.start({
    tls: true,
    args: () => [
      ...tlsArgs(certs),
      // No anonymous access, as on MemoryDB; an admin user for the test's own checks; the backplane's user.
      '--user',
      'default',
      'off',
      '--user',
      'admin',
      'on',
      `>${ADMIN_PASSWORD}`,
      '~*',
      '&*',
      '+@all',
      '--user',
      USER,
      'on',
      `>${PASSWORD}`,
      ...aclRules(`${PREFIX}${HUB}`, PREFIX),
    ],
  });
  const results = await Promise.allSettled([
    ServerProcess.start('A', {
      REDIS_URL: connectionString(PASSWORD),
      REDIS_TLS_CA_FILE: certs.ca,
      CHAT_HUB_NAME: HUB,
    }),
    ServerProcess.start('B', {
      REDIS_URL: `rediss://${USER}:${PASSWORD}@127.0.0.1:${redis.port}`,
      REDIS_CHANNEL_PREFIX: PREFIX,
      REDIS_TLS_CA_FILE: certs.ca,
      REDIS_TLS_CERT_FILE: certs.clientCert,
      REDIS_TLS_KEY_FILE: certs.clientKey,
      REDIS_TLS_SERVERNAME: 'localhost',
      CHAT_HUB_NAME: HUB,
    }),
  ]);
  [a, b] = results.map((result) => (result.status === 'fulfilled' ? result.value : undefined));
  const failed = results.find((result) => result.status === 'rejected');
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  await Promise.all([a!.waitForBackplane('connected'), b!.waitForBackplane('connected')]);
}, 60_000);

afterAll(async () => {
  await stopAll(a, b);
  await processes.stop();
  scratch.remove();
}, 30_000);

test('two servers exchange every message kind over TLS, as an ACL user with only the documented permissions', async () => {
  await command(redis!.port, ['ACL', 'LOG', 'RESET'], admin());
  await exchangeEveryKind(a!, b!, 'tls');

  // Redis denied nothing: the documented ACL is enough.
  expect(await command(redis!.port, ['ACL', 'LOG'], admin())).toEqual([]);
  // The user has exactly the documented commands, and its channels are the prefixed hub's.
  const user = (await command(redis!.port, ['ACL', 'GETUSER', USER], admin())) as unknown[];
  const field = (name: string) => user[user.indexOf(name) + 1];
  expect(String(field('commands')).split(' ').sort()).toEqual(['-@all', ...ACL_COMMANDS].sort());
  expect(field('channels')).toBe(`&${PREFIX}${HUB}:*`);
  // Every channel both servers subscribed carries the connection string's prefix.
  const channels = (await command(redis!.port, ['PUBSUB', 'CHANNELS'], admin())) as string[];
  const names = [await a!.serverName(), await b!.serverName()];
  expect(channels.sort()).toEqual(
    [
      `${PREFIX}${HUB}:all`,
      `${PREFIX}${HUB}:internal:groups`,
      ...names.flatMap((name) => [`${PREFIX}${HUB}:internal:ack:${name}`, `${PREFIX}${HUB}:internal:return:${name}`]),
    ].sort(),
  );
  // Both connections of each server are TLS connections of the backplane's user.
  const clients = String(await command(redis!.port, ['CLIENT', 'LIST'], admin()))
    .split('\n')
    .filter((line) => line.includes(` user=${USER} `));
  expect(clients).toHaveLength(4);
  expect((await a!.backplane()).redis).toBe(`127.0.0.1:${redis!.port} (TLS) as user '${USER}'`);

  for (const server of [a!, b!]) expect(server.log).not.toContain(PASSWORD);
});

test('a server that trusts another CA does not start, and says why', async () => {
  // abortConnect=False lets a server start while Redis is unreachable; a certificate it cannot trust still stops it.
  const { code, output } = await ServerProcess.startupFailure('wrong CA', {
    REDIS_URL: connectionString(PASSWORD, ',abortConnect=False'),
    REDIS_TLS_CA_FILE: certs.otherCa,
    CHAT_HUB_NAME: HUB,
  });
  expect(code).not.toBe(0);
  expect(output).toContain(`the TLS connection to 127.0.0.1:${redis!.port} failed`);
  expect(output).toContain('SELF_SIGNED_CERT_IN_CHAIN: self-signed certificate in certificate chain');
  expect(output).not.toContain('retrying');
  expect(output).toContain('redis.tls.ca');
  expect(output).not.toContain(PASSWORD);
});

test('a wrong password fails startup with a clear message that does not contain the password', async () => {
  const wrong = 'Not-the-backplane-pw-42';
  const { code, output } = await ServerProcess.startupFailure('wrong password', {
    REDIS_URL: connectionString(wrong),
    REDIS_TLS_CA_FILE: certs.ca,
    CHAT_HUB_NAME: HUB,
  });
  expect(code).not.toBe(0);
  expect(output).toContain(`Redis at 127.0.0.1:${redis!.port} refused the credentials of user '${USER}'`);
  expect(output).toContain('WRONGPASS');
  expect(output).not.toContain(wrong);
  expect(output).not.toContain(PASSWORD);
});
