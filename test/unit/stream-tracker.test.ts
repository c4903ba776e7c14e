/**
 * A connection's open streams on their own (docs/protocol.md §2.9): the per-direction bound
 * `maximumStreamsPerConnection`, items and Completions routed to uploads by stream id, a reused id taken over as
 * .NET's `StreamTracker` does, and everything ended when the connection closes.
 */
import { MessageType } from '../../protocol/messages';
import { ResultStream, type ResultStreamHost } from '../../src/hub/result-stream';
import { StreamTracker } from '../../src/hub/stream-tracker';

const limits = { maximumStreamsPerConnection: 2, streamBufferCapacity: 1, enableDetailedErrors: false };
const parameters = [{ position: 0, itemSchema: undefined }];

function resultStream(invocationId: string): ResultStream {
  const host: ResultStreamHost = {
    writeStreamItem: () => undefined,
    outboundBacklog: 0,
    streamEnded: () => undefined,
    logFailure: () => undefined,
  };
  return new ResultStream(host, invocationId, 'Counter', 'counter', false, undefined);
}

test('each direction has its own bound; null means none', () => {
  const tracker = new StreamTracker(limits, () => undefined);
  expect(tracker.uploadLimitExceeded(2)).toBeNull();
  expect(tracker.uploadLimitExceeded(3)).toBe(2);
  tracker.openUploads(['a', 'b'], [parameters[0], parameters[0]]);
  expect(tracker.uploadLimitExceeded(1)).toBe(2);
  expect(tracker.uploadLimitExceeded(0)).toBeNull();

  expect(tracker.resultLimitReached()).toBeNull();
  tracker.addResult(resultStream('1'));
  tracker.addResult(resultStream('2'));
  expect(tracker.resultLimitReached()).toBe(2);
  expect(tracker.resultCount).toBe(2);

  const unbounded = new StreamTracker({ ...limits, maximumStreamsPerConnection: null }, () => undefined);
  unbounded.openUploads(['a', 'b', 'c'], [parameters[0], parameters[0], parameters[0]]);
  expect(unbounded.uploadLimitExceeded(100)).toBeNull();
});

test('items reach their upload, a full upload refuses and wakes the connection once it has room, unknown ids are ignored', async () => {
  let wakes = 0;
  const tracker = new StreamTracker(limits, () => wakes++);
  const [upload] = tracker.openUploads(['up'], parameters);
  const item = (value: unknown) => ({ type: MessageType.StreamItem, invocationId: 'up', item: value }) as const;
  expect(tracker.offerItem(item(1))).toBe(true);
  expect(tracker.offerItem(item(2))).toBe(false);
  expect(tracker.offerItem({ type: MessageType.StreamItem, invocationId: 'nobody', item: 0 })).toBe(true);
  expect(await upload.next()).toEqual({ done: false, value: 1 });
  expect(wakes).toBe(1);
  expect(tracker.offerItem(item(2))).toBe(true);
});

test('a Completion ends the upload with its id once; other ids are left to client results', async () => {
  const tracker = new StreamTracker(limits, () => undefined);
  const [upload] = tracker.openUploads(['up'], parameters);
  expect(tracker.completeUpload('other', undefined)).toBe(false);
  expect(tracker.completeUpload('up', undefined)).toBe(true);
  expect(tracker.completeUpload('up', undefined)).toBe(false);
  expect(await upload.next()).toEqual({ done: true, value: undefined });
  expect(tracker.uploadLimitExceeded(2)).toBeNull();
});

test('a reused stream id is taken over by the new upload; ending the old one leaves the new one open', () => {
  const tracker = new StreamTracker(limits, () => undefined);
  const [first] = tracker.openUploads(['same'], parameters);
  const [second] = tracker.openUploads(['same'], parameters);
  tracker.endUploads([first]);
  expect(tracker.offerItem({ type: MessageType.StreamItem, invocationId: 'same', item: 'x' })).toBe(true);
  expect(second.bufferedCount).toBe(1);
});

test('closing the connection aborts result streams and fails pending upload reads', async () => {
  const tracker = new StreamTracker(limits, () => undefined);
  const result = resultStream('1');
  tracker.addResult(result);
  const [upload] = tracker.openUploads(['up'], parameters);
  const read = upload.next();
  tracker.closeAll();
  expect(result.signal.aborted).toBe(true);
  await expect(read).rejects.toMatchObject({ name: 'OperationCanceledException' });
  expect(tracker.resultCount).toBe(0);
  expect(tracker.hasResult('1')).toBe(false);
});
