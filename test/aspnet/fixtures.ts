/**
 * The hub and server the 2.x client tests share: one `ChatHub` served to Core clients at `/chathub` and to 2.x
 * clients at `/signalr`, with a page written as the ASP.NET SignalR 2.x articles write it.
 */
import { readFile } from 'node:fs/promises';
import Fastify, { type FastifyInstance } from 'fastify';
import { callerState, fastifySignalR, Hub, HubException, reportProgress, type SignalROptions } from '../../src/index';
import { listen, type RunningServer } from '../support/servers';

/** The chat hub of the 2.x articles, plus what the tests exercise: results, errors, groups, state. */
export class ChatHub extends Hub {
  /** Connects and disconnects seen, as `connected <id> <transport>` and `disconnected <id>`, for lifecycle tests. */
  static readonly lifecycle: string[] = [];

  override onConnected(): void {
    ChatHub.lifecycle.push(`connected ${this.context.connectionId} ${this.context.transport}`);
  }
  override onDisconnected(): void {
    ChatHub.lifecycle.push(`disconnected ${this.context.connectionId}`);
  }
  async send(name: string, message: string): Promise<void> {
    await this.clients.all.send('addMessage', name, message);
  }
  add(a: number, b: number): number {
    return a + b;
  }
  refuse(reason: string): never {
    throw new HubException(reason);
  }
  crash(): never {
    throw new Error('secret detail');
  }
  async joinGroup(group: string): Promise<string> {
    await this.groups.addToGroup(this.context.connectionId, group);
    return this.context.connectionId;
  }
  /** Adds any connection, of this server or another, to a group. */
  async addToGroup(connectionId: string, group: string): Promise<void> {
    await this.groups.addToGroup(connectionId, group);
  }
  async leaveGroup(group: string): Promise<void> {
    await this.groups.removeFromGroup(this.context.connectionId, group);
  }
  async sendToGroup(group: string, message: string): Promise<void> {
    await this.clients.group(group).send('groupMessage', group, message);
  }
  /** Counts calls in the caller's hub state and greets it by the name its state holds. */
  greet(): string {
    const state = callerState(this.context);
    if (state === undefined) return 'no state';
    state.calls = (typeof state.calls === 'number' ? state.calls : 0) + 1;
    return `hello ${String(state.userName)}`;
  }
  /** Reports 1…n as progress to a 2.x caller, then answers. */
  countTo(n: number): string {
    for (let i = 1; i <= n; i++) reportProgress(this.context, i);
    return `counted to ${n}`;
  }
  /** Sends `count` numbered messages to the caller. */
  async burst(count: number): Promise<void> {
    for (let i = 1; i <= count; i++) await this.clients.caller.send('numbered', i);
  }
}

/** Where the test pages find the 2.x client: the npm packages' own files. */
async function clientScripts(): Promise<Record<string, string>> {
  return {
    '/lib/jquery.js': await readFile(require.resolve('jquery/dist/jquery.js'), 'utf8'),
    '/lib/jquery.signalR.js': await readFile(require.resolve('signalr/jquery.signalR.js'), 'utf8'),
  };
}

/** The page: script tags for jQuery, jquery.signalR and /signalr/hubs, then the chat as the articles write it. */
export const CHAT_PAGE = `<!DOCTYPE html>
<html>
<head><title>Chat</title></head>
<body>
  <input type="text" id="message" />
  <input type="button" id="sendmessage" value="Send" />
  <input type="hidden" id="displayname" />
  <ul id="discussion"></ul>
  <script src="/lib/jquery.js"></script>
  <script src="/lib/jquery.signalR.js"></script>
  <script src="/signalr/hubs"></script>
  <script>
    $(function () {
      var transport = new URLSearchParams(location.search).get('transport');
      var chat = $.connection.chatHub;
      chat.client.addMessage = function (name, message) {
        $('#discussion').append('<li><strong>' + $('<div />').text(name).html() + '</strong>: ' + $('<div />').text(message).html() + '</li>');
      };
      chat.client.groupMessage = function (group, message) {
        $('#discussion').append('<li class="group">' + $('<div />').text(group + ': ' + message).html() + '</li>');
      };
      window.numbers = [];
      chat.client.numbered = function (n) { window.numbers.push(n); };
      window.reconnects = 0;
      $.connection.hub.reconnected(function () { window.reconnects++; });
      $('#displayname').val(new URLSearchParams(location.search).get('name'));
      $.connection.hub.start({ transport: transport }).done(function () {
        window.connectedTransport = $.connection.hub.transport.name;
        $('#sendmessage').click(function () {
          chat.server.send($('#displayname').val(), $('#message').val());
          $('#message').val('').focus();
        });
      }).fail(function (error) { window.startError = String(error); });
    });
  </script>
</body>
</html>`;

/**
 * A server with the chat hub at `/chathub` and the 2.x endpoint, serving the page at `/chat.html`; `routes` adds
 * a test's own routes before it listens.
 */
export async function startLegacyServer(
  options: Partial<SignalROptions> = {},
  routes: (app: FastifyInstance) => void = () => undefined,
): Promise<RunningServer> {
  const app = Fastify({ logger: false });
  routes(app);
  const scripts = await clientScripts();
  for (const [url, source] of Object.entries(scripts)) {
    app.get(url, async (_request, reply) => reply.type('application/javascript').send(source));
  }
  app.get('/chat.html', async (_request, reply) => reply.type('text/html').send(CHAT_PAGE));
  await app.register(fastifySignalR, { hubs: [{ path: '/chathub', hub: ChatHub }], aspNetSignalR: true, ...options });
  return listen(app);
}
