/**
 * Older official clients still work: @microsoft/signalr 6.x (negotiate v1, handshake version 1) and
 * @aspnet/signalr 1.1.x (negotiate v0: the connection id doubles as the token).
 */
import * as aspnet from '@aspnet/signalr';
import * as signalr6 from 'signalr6';
import { startChatServer, type RunningServer } from '../support/servers';

let server: RunningServer;
const stops: Array<() => Promise<void>> = [];

beforeAll(async () => {
  server = await startChatServer();
});
afterAll(async () => {
  await Promise.all(stops.map((stop) => stop().catch(() => undefined)));
  await server.close();
});

test('@microsoft/signalr 6: connect, invoke, receive, join a group', async () => {
  const connection = new signalr6.HubConnectionBuilder()
    .withUrl(`${server.hubUrl}?user=six`)
    .configureLogging(signalr6.LogLevel.None)
    .build();
  stops.push(() => connection.stop());
  const received: unknown[][] = [];
  connection.on('ReceiveMessage', (...args: unknown[]) => received.push(args));
  await connection.start();
  expect(connection.connectionId).toMatch(/^[A-Za-z0-9_-]{22}$/);
  expect(await connection.invoke('Echo', { v: 6 })).toEqual({ v: 6 });
  expect(await connection.invoke('WhoAmI')).toBe('six');
  await connection.invoke('JoinRoom', 'old');
  await connection.invoke('SendToRoom', 'old', 'six', 'hello from 6');
  await connection.invoke('SendMessage', 'six', 'to all');
  expect(received).toEqual([
    ['six', 'hello from 6'],
    ['six', 'to all'],
  ]);
  await expect(connection.invoke('Fail', 'old error')).rejects.toThrow(
    "An unexpected error occurred invoking 'Fail' on the server. HubException: old error",
  );
  await connection.stop();
});

test('@aspnet/signalr 1.1: negotiate v0, connect, invoke, receive', async () => {
  const connection = new aspnet.HubConnectionBuilder()
    .withUrl(`${server.hubUrl}?user=one`)
    .configureLogging(aspnet.LogLevel.None)
    .build();
  stops.push(() => connection.stop());
  const received: unknown[][] = [];
  connection.on('ReceiveMessage', (...args: unknown[]) => received.push(args));
  await connection.start();
  expect(await connection.invoke('Echo', 'one point one')).toBe('one point one');
  expect(await connection.invoke('WhoAmI')).toBe('one');
  await connection.invoke('SendToUser', 'one', 'server', 'to user one');
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(received).toEqual([['server', 'to user one']]);
  await connection.stop();
});

test('old and new clients share broadcasts', async () => {
  const six = new signalr6.HubConnectionBuilder()
    .withUrl(server.hubUrl)
    .configureLogging(signalr6.LogLevel.None)
    .build();
  const one = new aspnet.HubConnectionBuilder().withUrl(server.hubUrl).configureLogging(aspnet.LogLevel.None).build();
  stops.push(
    () => six.stop(),
    () => one.stop(),
  );
  const got: string[] = [];
  six.on('ReceiveMessage', (_user: string, message: string) => got.push(`6:${message}`));
  one.on('ReceiveMessage', (_user: string, message: string) => got.push(`1:${message}`));
  await Promise.all([six.start(), one.start()]);
  await one.invoke('SendMessage', 'one', 'ping');
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(got.sort()).toEqual(['1:ping', '6:ping']);
});
