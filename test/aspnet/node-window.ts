/**
 * What `signalr-no-jquery` needs of a browser, for running it in Node: a `window` global with `XMLHttpRequest`
 * (xhr2), `WebSocket` (ws), `EventSource` (eventsource), a loaded `document` whose anchors parse URLs, and a
 * `location`. Installed once per test file, before the client is loaded (it reads `window` when it loads).
 */
import { createRequire } from 'node:module';
import EventSource from 'eventsource';
import { WebSocket } from 'ws';
import XMLHttpRequest from 'xhr2';

/** An `<a>` element as far as the client uses it: setting `href` parses the URL. */
class Anchor {
  protocol = '';
  host = '';
  hostname = '';
  port = '';
  pathname = '';
  constructor(private readonly base: string) {}
  set href(value: string) {
    const url = new URL(value, this.base);
    this.protocol = url.protocol;
    this.host = url.host;
    this.hostname = url.hostname;
    this.port = url.port;
    this.pathname = url.pathname;
  }
}

/**
 * The `eventsource` package's EventSource with error events as a browser dispatches them: at their target
 * (`eventPhase` 2). The 2.x client reconnects on an error event in that phase, and only then.
 */
function browserLikeEventSource(): unknown {
  return class extends EventSource {
    addEventListener(type: string, listener: (event: { eventPhase?: number }) => void): void {
      super.addEventListener(type, (event: { eventPhase?: number }) => {
        if (event.eventPhase === undefined) event.eventPhase = 2;
        listener.call(this, event);
      });
    }
  };
}

/** Installs the window for a page at `origin`; returns the client's `hubConnection` factory. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the client is untyped
export function loadNodeClient(origin: string): (url: string, options?: object) => any {
  const location = new URL(origin);
  // Anything else the client reads of `window` (encodeURIComponent, timers, JSON) is Node's own global.
  const window: Record<string, unknown> = Object.assign(Object.create(globalThis) as Record<string, unknown>, {
    XMLHttpRequest,
    WebSocket,
    EventSource: browserLikeEventSource(),
    location,
    navigator: { appName: 'Node', userAgent: 'node' },
    document: { readyState: 'complete', location, createElement: () => new Anchor(origin) },
    addEventListener: () => undefined,
    removeEventListener: () => undefined,
    // The client's stop sends /abort with fetch and never looks at the outcome; a browser drops a failure silently,
    // Node would report it as unhandled.
    fetch: (input: string, init?: RequestInit) => fetch(input, init).catch(() => undefined),
  });
  window.window = window;
  (globalThis as { window?: unknown }).window = window;
  // Loaded only now: the client reads `window` as it loads.
  return createRequire(__filename)('signalr-no-jquery').hubConnection;
}
