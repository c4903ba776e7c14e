/**
 * Client results over raw frames (spec §2.6, §2.7): the server's Invocation with an invocation id (each server
 * numbers its own, so the id is a placeholder), and what the caller of `AskClient` gets for an answer, an error, an
 * answer that names another invocation, a connection that does not exist or that closes before answering.
 */
import type { Scenario, ServerSettings } from '../engine/scenario';
import { invoke, negotiatedAndConnected, record } from './frames';

/** Negotiate shows only WebSockets on both servers, so its body compares equal. */
const WEBSOCKETS_ONLY: ServerSettings = { transports: ['WebSockets'] };

export const clientResultScenarios: Scenario[] = [
  {
    name: 'AskClient of the own connection: the server asks, the answer is the result',
    settings: WEBSOCKETS_ONLY,
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
    settings: WEBSOCKETS_ONLY,
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
    settings: WEBSOCKETS_ONLY,
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
    settings: WEBSOCKETS_ONLY,
    steps: [...negotiatedAndConnected(), { send: invoke('1', 'AskClient', 'AAAAAAAAAAAAAAAAAAAAAA') }, { receive: 1 }],
  },
  {
    name: 'the asked connection closes before it answers',
    settings: WEBSOCKETS_ONLY,
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
];
