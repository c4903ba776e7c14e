/**
 * A raw WebSocket peer (the `ws` package) for tests that must send exactly the bytes a broken or hostile client
 * would, and see exactly the frames the server sends back.
 */
import WebSocket from 'ws';

/** One frame received from the server. */
export interface ReceivedFrame {
  readonly data: Buffer;
  readonly binary: boolean;
  /** The payload as UTF-8. */
  readonly text: string;
}

/** What an upgrade attempt got when the server refused it. */
export interface RefusedUpgrade {
  readonly status: number;
  readonly body: string;
}

/** The error {@link RawWebSocket.connect} rejects with when the server answers the upgrade with a plain response. */
export interface RefusedUpgradeError extends Error, RefusedUpgrade {
  /** The response headers, names in lower case. */
  readonly headers: Record<string, string | string[] | undefined>;
}

/** A connected raw WebSocket. */
export class RawWebSocket {
  readonly frames: ReceivedFrame[] = [];
  /** Resolves with the close code and reason when the socket closes. */
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiter: (() => void) | null = null;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data: Buffer, binary: boolean) => {
      this.frames.push({ data, binary, text: data.toString('utf8') });
      this.waiter?.();
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        this.waiter?.();
        resolve({ code, reason: reason.toString() });
      });
    });
  }

  /**
   * Opens a socket to an `http://` URL (rewritten to `ws://`), with `headers` on the upgrade request (an `origin`);
   * rejects with a {@link RefusedUpgradeError} if refused.
   */
  static connect(url: string, headers?: Readonly<Record<string, string>>): Promise<RawWebSocket> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url.replace(/^http/, 'ws'), {
        headers: headers === undefined ? undefined : { ...headers },
      });
      socket.once('open', () => resolve(new RawWebSocket(socket)));
      socket.once('unexpected-response', (_request, response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () =>
          reject(
            Object.assign(new Error(`refused: ${response.statusCode}`), {
              status: response.statusCode,
              body,
              headers: response.headers,
            }),
          ),
        );
      });
      socket.once('error', reject);
    });
  }

  /** Attempts an upgrade that the server is expected to refuse; resolves with its status and body. */
  static async refused(url: string): Promise<RefusedUpgrade> {
    try {
      const socket = await RawWebSocket.connect(url);
      socket.socket.terminate();
    } catch (error) {
      const { status, body } = error as { status?: number; body?: string };
      if (status !== undefined) return { status, body: body ?? '' };
      throw error;
    }
    throw new Error('the upgrade was accepted');
  }

  /** Sends a Text frame (string) or a Binary frame (Buffer). */
  send(data: string | Buffer): void {
    this.socket.send(data, { binary: typeof data !== 'string' });
  }

  /** Resolves with frame number `index` (0-based) once it has arrived. */
  async frame(index: number, timeoutMs = 5000): Promise<ReceivedFrame> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length <= index) {
      if (this.socket.readyState === WebSocket.CLOSED)
        throw new Error(`socket closed after ${this.frames.length} frame(s): ${this.texts()}`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`no frame ${index} within ${timeoutMs} ms; got ${this.texts()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.frames[index];
  }

  /** Every frame received so far, as text, for failure messages. */
  texts(): string {
    return JSON.stringify(this.frames.map((frame) => frame.text));
  }

  close(): void {
    this.socket.terminate();
  }
}
