/**
 * The client-to-server stream a hub method reads (docs/protocol.md §2.9), on its own: bounded buffering, the refusal
 * that makes the connection wait and the wake-up that lets it go on, and how the stream ends.
 */
import { z } from 'zod';
import { UploadStream } from '../../src/hub/upload-stream';

function stream(capacity: number, options: { schema?: z.ZodType; detailed?: boolean } = {}) {
  const wakes: number[] = [];
  const upload = new UploadStream('up', capacity, options.schema, options.detailed ?? false, () =>
    wakes.push(upload.bufferedCount),
  );
  return { upload, wakes };
}

async function readAll(iterable: AsyncIterable<unknown>): Promise<unknown[]> {
  const items: unknown[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

test('buffers up to its capacity, refuses more, and wakes the connection once an item is taken', async () => {
  const { upload, wakes } = stream(3);
  expect([upload.offer(1), upload.offer(2), upload.offer(3)]).toEqual([true, true, true]);
  expect(upload.offer(4)).toBe(false);
  expect(upload.offer(4)).toBe(false);
  expect(upload.bufferedCount).toBe(3);
  expect(wakes).toEqual([]);
  expect(await upload.next()).toEqual({ done: false, value: 1 });
  // One wake for the refusals, with room for one item.
  expect(wakes).toEqual([2]);
  expect(upload.offer(4)).toBe(true);
  expect(await upload.next()).toEqual({ done: false, value: 2 });
  expect(wakes).toEqual([2]);
});

test('a reader that keeps a little behind never makes it grow: items come out in order', async () => {
  const { upload } = stream(4);
  const out: unknown[] = [];
  let next = 0;
  for (let round = 0; round < 1000; round++) {
    while (upload.offer(next)) {
      next++;
      if (upload.bufferedCount === 4) break;
    }
    out.push((await upload.next()).value);
    out.push((await upload.next()).value);
    expect(upload.bufferedCount).toBeLessThanOrEqual(4);
  }
  expect(out).toEqual(Array.from({ length: out.length }, (_, i) => i));
});

test('a waiting reader gets an item directly, even when the capacity is reached', async () => {
  const { upload } = stream(1);
  const first = upload.next();
  const second = upload.next();
  expect(upload.offer('a')).toBe(true);
  expect(upload.offer('b')).toBe(true);
  expect(upload.bufferedCount).toBe(0);
  expect(await Promise.all([first, second])).toEqual([
    { done: false, value: 'a' },
    { done: false, value: 'b' },
  ]);
});

test('ends after the buffered items; an error from the client is thrown after them, as a HubException', async () => {
  const { upload } = stream(10);
  upload.offer(1);
  upload.offer(2);
  upload.completeFromClient('upload broke');
  const items: unknown[] = [];
  const error = await (async () => {
    try {
      for await (const item of upload) items.push(item);
    } catch (caught) {
      return caught as Error;
    }
    return undefined;
  })();
  expect(items).toEqual([1, 2]);
  expect([error?.name, error?.message]).toEqual(['HubException', 'upload broke']);
  expect(await upload.next()).toEqual({ done: true, value: undefined });
});

test('ending wakes a connection waiting for room: its item will be dropped instead', () => {
  const { upload, wakes } = stream(1);
  upload.offer(1);
  expect(upload.offer(2)).toBe(false);
  upload.complete();
  expect(wakes).toHaveLength(1);
  expect(upload.offer(2)).toBe(true);
  expect(upload.bufferedCount).toBe(1);
});

test('leaving the loop early drops the rest and wakes a waiting connection', async () => {
  const { upload, wakes } = stream(2);
  upload.offer(1);
  upload.offer(2);
  expect(upload.offer(3)).toBe(false);
  for await (const item of upload) {
    expect(item).toBe(1);
    break;
  }
  expect(wakes).toHaveLength(1);
  expect(upload.bufferedCount).toBe(0);
  expect(upload.offer(3)).toBe(true);
  expect(upload.bufferedCount).toBe(0);
});

test('the connection closing ends the stream with OperationCanceledException', async () => {
  const { upload } = stream(2);
  const pending = upload.next();
  upload.connectionClosed();
  await expect(pending).rejects.toMatchObject({
    name: 'OperationCanceledException',
    message: 'The underlying connection was closed.',
  });
});

test("an item its schema rejects ends the stream with .NET's binding error; accepted items are parsed", async () => {
  const { upload } = stream(10, { schema: z.coerce.number() });
  upload.offer('1');
  upload.offer({ not: 'a number' });
  upload.offer(3);
  await expect(readAll(upload)).rejects.toMatchObject({
    name: 'HubException',
    message: 'Failed to bind Stream message.',
  });

  const detailed = stream(10, { schema: z.number(), detailed: true }).upload;
  detailed.offer('x');
  await expect(readAll(detailed)).rejects.toMatchObject({
    message:
      'Failed to bind Stream message. InvalidDataException: Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked.',
  });
});
