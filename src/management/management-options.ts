/**
 * The management REST API's options: a leaf, so the plugin's options can name and validate them without importing
 * the API and the hub runtime behind it.
 */
import { z } from 'zod';
import { customDescriptor, integerDescriptor, type DescriptorsOf } from '../shared/option-descriptors';

/** Options of the management REST API (the plugin's `management` option). */
export interface ManagementOptions {
  /**
   * The access key HS256 tokens are signed with, or an Azure SignalR connection string
   * `Endpoint=https://…;AccessKey=…;Version=1.0;` (its `Endpoint` is then the public URL audiences are made of).
   * Required.
   */
  readonly accessKey: string;
  /**
   * Where the API is mounted; Azure's clients expect `/api`.
   * @default '/api'
   */
  readonly path?: string;
  /**
   * The public origin clients reach this server at (`https://signalr.example.com`), which token audiences name.
   * Behind a proxy, set it — or Fastify's `trustProxy`, so the forwarded protocol and host count.
   * @default the connection string's `Endpoint`, else the request's own protocol and host
   */
  readonly publicEndpoint?: string;
  /**
   * How long `:invoke` waits for the client's answer before it answers 504.
   * @default 30000
   */
  readonly invokeTimeoutMs?: number;
}

/** Each option of the management REST API. */
export const managementOptionDescriptors: DescriptorsOf<ManagementOptions> = Object.freeze({
  accessKey: customDescriptor(
    "the key tokens are signed with, or Azure's connection string `Endpoint=https://…;AccessKey=…;Version=1.0;`",
    z.string().min(1),
    { required: true },
  ),
  path: customDescriptor(
    'where the API is mounted',
    z.string().regex(/^\/[^?#]*$/, "must start with '/' and hold no query or fragment"),
    { default: '/api' },
  ),
  publicEndpoint: customDescriptor(
    "the public origin token audiences name (set it, or Fastify's `trustProxy`, behind a proxy)",
    z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://signalr.example.com' }),
    { defaultText: "the connection string's `Endpoint`, else the request's own protocol and host" },
  ),
  invokeTimeoutMs: integerDescriptor("how long `:invoke` waits for the client's answer (then 504)", 30_000),
});
