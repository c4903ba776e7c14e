/**
 * Client results over raw frames (docs/protocol.md §2.6, §2.7): the server's Invocation with an invocation id (each
 * server numbers its own, so the id is a placeholder), and what the caller of `AskClient` gets for an answer, an error,
 * `null`, no result at all, a value of the wrong type, an answer that names another invocation or comes from another
 * connection, a connection that does not exist or that closes before answering. `GET /ask/{id}` asks from outside
 * any hub method (the hub context); the asked connection may be on any transport.
 */
import type { Scenario, ServerSettings, Step } from '../engine/scenario';
import { HANDSHAKE, invoke, negotiatedAndConnected, record } from './frames';

/** Every transport, so the asked connection may be on Server-Sent Events or long polling. */
const ALL_TRANSPORTS: ServerSettings = {};

/** `GET /ask/{{id}}` started in the background; the connection answers the question before `awaitHttp: 'ask'`. */
function askFromOutside(id = '{{id}}'): Step {
  return { http: 'GET', path: `/ask/${id}`, root: true, background: 'ask' };
}

/** The answer of a client result as the client sends it. */
function answer(fields: string): Step {
  return { send: record(`{"type":3,"invocationId":"{{call}}"${fields}}`) };
}

/** The steps that get the server's question to the client: negotiate, connect, then `trigger`, then the question. */
function asked(trigger: Step): Step[] {
  return [...negotiatedAndConnected(), trigger, { receive: 1, save: { call: 'invocationId' } }];
}

const NEGOTIATED = {
  request: 'POST /negotiate?negotiateVersion=1',
  status: 200,
  'content-type': 'application/json',
  body: '{"negotiateVersion":1,"connectionId":"<id>","connectionToken":"<token>","availableTransports":[{"transport":"WebSockets","transferFormats":["Text","Binary"]},{"transport":"ServerSentEvents","transferFormats":["Text"]},{"transport":"LongPolling","transferFormats":["Text","Binary"]}]}',
};
const QUESTION = {
  receive: 1,
  messages: ['{"type":1,"invocationId":"<server-invocation-1>","target":"GetAnswer","arguments":["question"]}'],
  frames: 'text',
};

/** `AskClient` answered with 42 where the hub asked for a string. */
const WRONG_TYPE = {
  entry: 'Client results are not converted to a declared type',
  reference: [
    NEGOTIATED,
    { open: '?id={{token}}', accepted: true },
    { receive: 1, messages: ['{}'], frames: 'text' },
    QUESTION,
    {
      receive: 1,
      messages: [
        '{"type":3,"invocationId":"1","error":"An unexpected error occurred invoking \'AskClient\' on the server. HubException: Error trying to deserialize result to String. The JSON value could not be converted to System.String. Path: $ | LineNumber: 0 | BytePositionInLine: 2."}',
      ],
      frames: 'text',
    },
  ],
  ours: [
    NEGOTIATED,
    { open: '?id={{token}}', accepted: true },
    { receive: 1, messages: ['{}'], frames: 'text' },
    QUESTION,
    { receive: 1, messages: ['{"type":3,"invocationId":"1","result":42}'], frames: 'text' },
  ],
};

export const clientResultScenarios: Scenario[] = [
  {
    name: 'AskClient of the own connection: the server asks, the answer is the result',
    settings: ALL_TRANSPORTS,
    steps: [
      ...negotiatedAndConnected(),
      { send: invoke('1', 'AskClient', '{{id}}') },
      { receive: 1, save: { call: 'invocationId' } },
      { send: record('{"type":3,"invocationId":"{{call}}","result":"forty-two"}') },
      { receive: 1 },
    ],
  },
  {
    name: 'a client that answers with an error',
    settings: ALL_TRANSPORTS,
    steps: [
      ...negotiatedAndConnected(),
      { send: invoke('1', 'AskClient', '{{id}}') },
      { receive: 1, save: { call: 'invocationId' } },
      { send: record('{"type":3,"invocationId":"{{call}}","error":"no idea"}') },
      { receive: 1 },
    ],
  },
  {
    name: 'an answer for another invocation id is ignored',
    settings: ALL_TRANSPORTS,
    steps: [
      ...negotiatedAndConnected(),
      { send: invoke('1', 'AskClient', '{{id}}') },
      { receive: 1, save: { call: 'invocationId' } },
      { send: record('{"type":3,"invocationId":"not-{{call}}","result":"stray"}') },
      { listen: 200 },
      { send: record('{"type":3,"invocationId":"{{call}}","result":"right"}') },
      { receive: 1 },
    ],
  },
  {
    name: 'asking a connection that does not exist',
    settings: ALL_TRANSPORTS,
    steps: [...negotiatedAndConnected(), { send: invoke('1', 'AskClient', 'AAAAAAAAAAAAAAAAAAAAAA') }, { receive: 1 }],
  },
  {
    name: 'the asked connection closes before it answers',
    settings: ALL_TRANSPORTS,
    steps: [
      { negotiate: '?negotiateVersion=1', as: 'asked' },
      { open: '?id={{asked.token}}', socket: 'asked' },
      { send: '{"protocol":"json","version":1}\u001e', socket: 'asked' },
      { receive: 1, socket: 'asked' },
      { negotiate: '?negotiateVersion=1' },
      { open: '?id={{token}}' },
      { send: '{"protocol":"json","version":1}\u001e' },
      { receive: 1 },
      { send: invoke('1', 'AskClient', '{{asked.id}}') },
      { receive: 1, socket: 'asked' },
      { close: 1000, socket: 'asked' },
      { receive: 1 },
    ],
  },
  {
    name: 'a client that answers without a result',
    settings: ALL_TRANSPORTS,
    steps: [
      ...negotiatedAndConnected(),
      { send: invoke('1', 'AskClient', '{{id}}') },
      { receive: 1, save: { call: 'invocationId' } },
      { send: record('{"type":3,"invocationId":"{{call}}"}') },
      { receive: 1 },
    ],
  },
  {
    name: 'an answer of the wrong type',
    settings: ALL_TRANSPORTS,
    knownDifference: WRONG_TYPE,
    steps: [
      ...negotiatedAndConnected(),
      { send: invoke('1', 'AskClient', '{{id}}') },
      { receive: 1, save: { call: 'invocationId' } },
      { send: record('{"type":3,"invocationId":"{{call}}","result":42}') },
      { receive: 1 },
    ],
  },
  {
    name: 'an answer of null is a null result',
    settings: ALL_TRANSPORTS,
    steps: [...asked({ send: invoke('1', 'AskClient', '{{id}}') }), answer(',"result":null'), { receive: 1 }],
  },
  {
    name: 'an answer with both a result and an error closes the asked connection',
    settings: ALL_TRANSPORTS,
    steps: [
      ...asked({ send: invoke('1', 'AskClient', '{{id}}') }),
      answer(',"result":"yes","error":"no"'),
      { closed: true },
    ],
  },
  {
    name: 'the error of an answer with detailed errors',
    settings: { enableDetailedErrors: true },
    steps: [...asked({ send: invoke('1', 'AskClient', '{{id}}') }), answer(',"error":"no idea"'), { receive: 1 }],
  },
  {
    name: 'asking a connection that does not exist, with detailed errors',
    settings: { enableDetailedErrors: true },
    steps: [...negotiatedAndConnected(), { send: invoke('1', 'AskClient', 'AAAAAAAAAAAAAAAAAAAAAA') }, { receive: 1 }],
  },
  {
    name: 'an answer from another connection than the one asked',
    settings: ALL_TRANSPORTS,
    steps: [
      { negotiate: '?negotiateVersion=1', as: 'other' },
      { open: '?id={{other.token}}', socket: 'other' },
      { send: HANDSHAKE, socket: 'other' },
      { receive: 1, socket: 'other' },
      ...asked({ send: invoke('1', 'AskClient', '{{id}}') }),
      { send: record('{"type":3,"invocationId":"{{call}}","result":"from the other"}'), socket: 'other' },
      { closed: true, socket: 'other' },
      { listen: 0 },
      answer(',"result":"from the asked"'),
      { receive: 1 },
    ],
  },
  {
    name: 'an answer from another connection, with detailed errors',
    settings: { enableDetailedErrors: true },
    steps: [
      { negotiate: '?negotiateVersion=1', as: 'other' },
      { open: '?id={{other.token}}', socket: 'other' },
      { send: HANDSHAKE, socket: 'other' },
      { receive: 1, socket: 'other' },
      ...asked({ send: invoke('1', 'AskClient', '{{id}}') }),
      { send: record('{"type":3,"invocationId":"{{call}}","result":"from the other"}'), socket: 'other' },
      { closed: true, socket: 'other' },
    ],
  },
  {
    name: 'a second answer to the same question is ignored',
    settings: ALL_TRANSPORTS,
    steps: [
      ...asked({ send: invoke('1', 'AskClient', '{{id}}') }),
      answer(',"result":"first"'),
      answer(',"result":"second"'),
      { receive: 1 },
      { listen: 200 },
      { send: invoke('2', 'Echo', 'still connected') },
      { receive: 1 },
    ],
  },
  {
    name: 'the caller may invoke other methods while its question is open',
    settings: ALL_TRANSPORTS,
    steps: [
      ...asked({ send: invoke('1', 'AskClient', '{{id}}') }),
      { send: invoke('2', 'Echo', 'meanwhile') },
      { receive: 1 },
      answer(',"result":"later"'),
      { receive: 1 },
    ],
  },
  {
    name: 'a non-blocking AskClient asks but answers nobody',
    settings: ALL_TRANSPORTS,
    steps: [
      ...asked({ send: invoke(undefined, 'AskClient', '{{id}}') }),
      answer(',"result":"unheard"'),
      { listen: 300 },
    ],
  },
  {
    name: 'the question reaches a Server-Sent Events connection, which answers by POST',
    settings: ALL_TRANSPORTS,
    steps: [
      { negotiate: '?negotiateVersion=1', as: 'asked' },
      { sse: '?id={{asked.token}}', socket: 'asked' },
      { http: 'POST', path: '?id={{asked.token}}', body: HANDSHAKE },
      { receive: 1, socket: 'asked' },
      ...negotiatedAndConnected(),
      { send: invoke('1', 'AskClient', '{{asked.id}}') },
      { receive: 1, socket: 'asked', save: { call: 'invocationId' } },
      {
        http: 'POST',
        path: '?id={{asked.token}}',
        body: record('{"type":3,"invocationId":"{{call}}","result":"over SSE"}'),
      },
      { receive: 1 },
    ],
  },
  {
    name: 'the question reaches a long-polling connection in its poll',
    settings: ALL_TRANSPORTS,
    steps: [
      { negotiate: '?negotiateVersion=1', as: 'asked' },
      { http: 'GET', path: '?id={{asked.token}}' },
      { http: 'POST', path: '?id={{asked.token}}', body: HANDSHAKE },
      { http: 'GET', path: '?id={{asked.token}}' },
      { http: 'GET', path: '?id={{asked.token}}', background: 'poll' },
      ...negotiatedAndConnected(),
      { send: invoke('1', 'AskClient', '{{asked.id}}') },
      { awaitHttp: 'poll', withinMs: [0, 3000] },
    ],
  },

  // -- GET /ask/{id}: from outside any hub method -------------------------------------------------------------
  {
    name: 'GET /ask asks the connection and answers with its result',
    settings: ALL_TRANSPORTS,
    steps: [...asked(askFromOutside()), answer(',"result":"forty-two"'), { awaitHttp: 'ask' }],
  },
  {
    name: 'GET /ask answers with the error of the client',
    settings: ALL_TRANSPORTS,
    steps: [...asked(askFromOutside()), answer(',"error":"no idea"'), { awaitHttp: 'ask' }],
  },
  {
    name: 'GET /ask for an answer without result or error',
    settings: ALL_TRANSPORTS,
    steps: [...asked(askFromOutside()), answer(''), { awaitHttp: 'ask' }],
  },
  {
    name: 'GET /ask of a null answer is empty',
    settings: ALL_TRANSPORTS,
    steps: [...asked(askFromOutside()), answer(',"result":null'), { awaitHttp: 'ask' }],
  },
  {
    name: 'GET /ask of a connection that does not exist',
    settings: ALL_TRANSPORTS,
    steps: [askFromOutside('AAAAAAAAAAAAAAAAAAAAAA'), { awaitHttp: 'ask' }],
  },
  {
    name: 'GET /ask of a connection that closes before it answers',
    settings: ALL_TRANSPORTS,
    steps: [...asked(askFromOutside()), { close: 1000 }, { awaitHttp: 'ask' }],
  },
];
