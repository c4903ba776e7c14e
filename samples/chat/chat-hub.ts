/**
 * The chat sample's hub. Method names match the chat apps people run on ASP.NET Core (`SendMessage`,
 * `ReceiveMessage`, ...), so their pages work unchanged; clients call them in any letter case.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { clientStream, Hub, HubException, type HubMethodSchemas } from '../../src/index';

/** An integer as a client may send it: a JSON number, or (MessagePack int64 beyond 2^53) a bigint. */
const integer = z.union([z.number().int(), z.bigint()]);
/** A .NET `int`. */
const int32 = z.number().int().min(-0x8000_0000).max(0x7fff_ffff);
/** A message or sender name: like a C# `string`, it may be null. */
const text = z.string().nullable();
/** A room, connection id or user id: must be a string (null would name no room, connection or user). */
const key = z.string();
const keys = z.array(key);

/**
 * The methods the chat clients handle (`connection.on(name, …)`), so every send below is checked against them at
 * compile time.
 */
export interface ChatClient {
  /** A chat message, from any of the routing methods. */
  ReceiveMessage(user: string | null, message: string | null): void;
  /** One value of each kind a payload can hold (`SendValues`). */
  Values(...values: unknown[]): void;
  /** A client result: the client's answer to `question` (`AskClient`, `GET /ask/{connectionId}`). */
  GetAnswer(question: string): string | null;
}

export class ChatHub extends Hub<ChatClient> {
  /**
   * The parameter types of the ASP.NET Core ChatHub this sample mirrors, so a client that sends a number where a
   * string belongs gets .NET's binding error rather than a call with the wrong type. `Sum` takes a client-to-server
   * stream of integers.
   */
  static override schemas: HubMethodSchemas<ChatHub> = {
    sendMessage: [text, text],
    joinRoom: [key],
    leaveRoom: [key],
    sendToRoom: [key, text, text],
    sendOthers: [text, text],
    sendAllExcept: [keys, text, text],
    sendToConnection: [key, text, text],
    sendToConnections: [keys, text, text],
    sendToRooms: [keys, text, text],
    sendRoomExcept: [key, keys, text, text],
    sendOthersInRoom: [key, text, text],
    sendToUser: [key, text, text],
    sendToUsers: [keys, text, text],
    addToRoom: [key, key],
    removeFromRoom: [key, key],
    askClient: [key],
    fail: [z.string()],
    counter: [int32, int32],
    sum: [clientStream(integer)],
  };

  /** Everyone ← `ReceiveMessage(user, message)`. */
  async sendMessage(user: string | null, message: string | null): Promise<void> {
    await this.clients.all.send('ReceiveMessage', user, message);
  }

  /** The caller joins the group `room`. */
  async joinRoom(room: string): Promise<void> {
    await this.groups.addToGroup(this.context.connectionId, room);
  }

  /** The caller leaves the group `room`. */
  async leaveRoom(room: string): Promise<void> {
    await this.groups.removeFromGroup(this.context.connectionId, room);
  }

  /** Group `room` ← `ReceiveMessage(user, message)`. */
  async sendToRoom(room: string, user: string | null, message: string | null): Promise<void> {
    await this.clients.group(room).send('ReceiveMessage', user, message);
  }

  /** Returns `value` unchanged. */
  echo(value: unknown): unknown {
    return value;
  }

  /** Everyone but the caller. */
  async sendOthers(user: string | null, message: string | null): Promise<void> {
    await this.clients.others.send('ReceiveMessage', user, message);
  }

  /** Everyone but the listed connections. */
  async sendAllExcept(ids: string[], user: string | null, message: string | null): Promise<void> {
    await this.clients.allExcept(ids).send('ReceiveMessage', user, message);
  }

  /** One connection. */
  async sendToConnection(id: string, user: string | null, message: string | null): Promise<void> {
    await this.clients.client(id).send('ReceiveMessage', user, message);
  }

  /** Several connections. */
  async sendToConnections(ids: string[], user: string | null, message: string | null): Promise<void> {
    await this.clients.clients(ids).send('ReceiveMessage', user, message);
  }

  /** Several groups. */
  async sendToRooms(rooms: string[], user: string | null, message: string | null): Promise<void> {
    await this.clients.groups(rooms).send('ReceiveMessage', user, message);
  }

  /** A group except the listed connections. */
  async sendRoomExcept(room: string, ids: string[], user: string | null, message: string | null): Promise<void> {
    await this.clients.groupExcept(room, ids).send('ReceiveMessage', user, message);
  }

  /** A group except the caller. */
  async sendOthersInRoom(room: string, user: string | null, message: string | null): Promise<void> {
    await this.clients.othersInGroup(room).send('ReceiveMessage', user, message);
  }

  /** Every connection of a user. */
  async sendToUser(userId: string, user: string | null, message: string | null): Promise<void> {
    await this.clients.user(userId).send('ReceiveMessage', user, message);
  }

  /** Every connection of several users. */
  async sendToUsers(userIds: string[], user: string | null, message: string | null): Promise<void> {
    await this.clients.users(userIds).send('ReceiveMessage', user, message);
  }

  /** Puts any connection (on any server, with a backplane) in a group. */
  async addToRoom(connectionId: string, room: string): Promise<void> {
    await this.groups.addToGroup(connectionId, room);
  }

  /** Takes any connection out of a group. */
  async removeFromRoom(connectionId: string, room: string): Promise<void> {
    await this.groups.removeFromGroup(connectionId, room);
  }

  /** Asks a connection `GetAnswer("question")` and returns its answer. */
  async askClient(connectionId: string): Promise<string | null> {
    return await this.clients.client(connectionId).invoke('GetAnswer', 'question');
  }

  /**
   * Streams 0 … count-1, waiting `delayMs` after each item; stops as soon as the client cancels the stream. As
   * with .NET's `Task.Delay`, -1 waits until cancelled and a smaller delay fails after the first item.
   */
  async *counter(count: number, delayMs: number): AsyncGenerator<number> {
    for (let i = 0; i < count; i++) {
      this.abortSignal.throwIfAborted();
      yield i;
      if (delayMs < -1) throw new RangeError(`The delay must be -1 (infinite), 0 or positive; got ${delayMs}.`);
      // Task.Delay(0) completes at once; so does this, without a timer turn per item.
      if (delayMs !== 0) await sleep(delayMs === -1 ? 2 ** 31 - 1 : delayMs, undefined, { signal: this.abortSignal });
    }
  }

  /** Adds up a client-to-server stream of integers; exact beyond 2^53 when the items arrive as bigints. */
  async sum(numbers: AsyncIterable<number | bigint>): Promise<number | bigint> {
    let total = 0n;
    for await (const n of numbers) total += BigInt(n);
    return total >= BigInt(Number.MIN_SAFE_INTEGER) && total <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(total) : total;
  }

  /** Fails with a message the caller sees. */
  fail(message: string): never {
    throw new HubException(message);
  }

  /** Fails with an ordinary error; its message stays on the server unless detailed errors are enabled. */
  crash(): never {
    throw new Error('Crash() failed with a secret detail');
  }

  /** The caller's user id, or null. */
  whoAmI(): string | null {
    return this.context.userIdentifier ?? null;
  }

  /** Everyone ← `Values(...)`: one value of each kind a payload can hold. */
  async sendValues(): Promise<void> {
    await this.clients.all.send(
      'Values',
      42,
      -1,
      300,
      70000,
      5000000000,
      3.5,
      true,
      null,
      'héllo ✓',
      new Uint8Array([0, 1, 254, 255]),
      new Date(Date.UTC(2020, 0, 2, 3, 4, 5)),
      { a: 1, b: [1, 2] },
    );
  }
}
