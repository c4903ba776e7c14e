/**
 * Server shutdown: every client gets a Close message (allowing reconnect, so clients with automatic reconnect come
 * back to a restarted or sibling server) and a normal close frame; the official client stops without error.
 */
import * as signalR from '@microsoft/signalr';
import { RawWebSocket } from '../support/raw-websocket';
import { startChatServer } from '../support/servers';

const RS = '\u001e';

test('a raw client sees a Close with allowReconnect, then a 1000 close frame', async () => {
  const server = await startChatServer();
  const socket = await RawWebSocket.connect(server.hubUrl);
  socket.send(`{"protocol":"json","version":1}${RS}`);
  await socket.frame(0);
  await server.close();
  expect((await socket.closed).code).toBe(1000);
  expect(socket.frames.map((frame) => frame.text).join('')).toBe(`{}${RS}{"type":7,"allowReconnect":true}${RS}`);
});

test('the official client closes cleanly; with automatic reconnect it starts reconnecting', async () => {
  const server = await startChatServer();
  const plain = new signalR.HubConnectionBuilder()
    .withUrl(server.hubUrl)
    .configureLogging(signalR.LogLevel.None)
    .build();
  const reconnecting = new signalR.HubConnectionBuilder()
    .withUrl(server.hubUrl)
    .withAutomaticReconnect([60_000])
    .configureLogging(signalR.LogLevel.None)
    .build();
  const plainClosed = new Promise<Error | undefined>((resolve) => plain.onclose(resolve));
  const reconnectingStarted = new Promise<Error | undefined>((resolve) => reconnecting.onreconnecting(resolve));
  await plain.start();
  await reconnecting.start();
  await server.close();
  expect(await plainClosed).toBeUndefined();
  expect(await reconnectingStarted).toBeUndefined();
  expect(reconnecting.state).toBe(signalR.HubConnectionState.Reconnecting);
  await reconnecting.stop();
});

test('shutdown can tell clients not to reconnect', async () => {
  const server = await startChatServer({ allowReconnectOnShutdown: false });
  const socket = await RawWebSocket.connect(server.hubUrl);
  socket.send(`{"protocol":"json","version":1}${RS}`);
  await socket.frame(0);
  await server.close();
  await socket.closed;
  expect(socket.frames.map((frame) => frame.text).join('')).toBe(`{}${RS}{"type":7}${RS}`);
});
