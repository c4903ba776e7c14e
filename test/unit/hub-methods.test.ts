/**
 * How a hub class declares streaming (docs/protocol.md §2.9): which methods stream their results, which parameters are
 * client-to-server streams, and what a client must send to call them.
 */
import { z } from 'zod';
import { clientStream, Hub } from '../../src';
import { discoverHubMethods, HubDefinitionError } from '../../src/hub/hub-methods';

class ShapesHub extends Hub {
  static override schemas = {
    upload: [z.string(), clientStream(z.number()), z.boolean(), clientStream()],
    transform: [clientStream()],
  };
  static override streamingMethods = ['fromIterable'];

  async *generated(_count: number): AsyncGenerator<number> {}
  *synchronous(): Generator<string> {}
  fromIterable(): Iterable<number> {
    return [1];
  }
  async upload(
    _name: string,
    _numbers: AsyncIterable<number>,
    _flag: boolean,
    _rest: AsyncIterable<unknown>,
  ): Promise<void> {}
  async *transform(_items: AsyncIterable<unknown>): AsyncGenerator<unknown> {}
  async plain(_a: number, _b: number): Promise<number> {
    return 0;
  }
}

const methods = discoverHubMethods(ShapesHub);

test('generator methods stream; so do methods listed in streamingMethods; others do not', () => {
  expect(methods.get('generated')?.streaming).toBe(true);
  expect(methods.get('synchronous')?.streaming).toBe(true);
  expect(methods.get('fromiterable')?.streaming).toBe(true);
  expect(methods.get('plain')?.streaming).toBe(false);
  expect(methods.get('upload')?.streaming).toBe(false);
});

test('clientStream parameters are left out of the arguments and remembered by position', () => {
  const upload = methods.get('upload')!;
  expect(upload.parameterCount).toBe(2);
  expect(upload.schemas).toHaveLength(2);
  expect(upload.streamParameters?.map((parameter) => parameter.position)).toEqual([1, 3]);
  expect(upload.streamParameters?.[0].itemSchema).toBeDefined();
  expect(upload.streamParameters?.[1].itemSchema).toBeUndefined();
  const transform = methods.get('transform')!;
  expect([transform.streaming, transform.parameterCount, transform.streamParameters?.length]).toEqual([true, 0, 1]);
  // Without schemas, every declared parameter is an argument.
  expect([methods.get('plain')!.parameterCount, methods.get('plain')!.streamParameters]).toEqual([2, undefined]);
});

test('streamingMethods naming no method of the hub fails at registration', () => {
  class Misspelt extends Hub {
    static override streamingMethods = ['tickr'];
    ticker(): number[] {
      return [];
    }
  }
  expect(() => discoverHubMethods(Misspelt)).toThrow(HubDefinitionError);
  expect(() => discoverHubMethods(Misspelt)).toThrow(
    "'tickr' is listed in streamingMethods but is not a method of Misspelt.",
  );
});
