/**
 * The SignalR wire as pure code: hub messages, hub protocols, handshake and negotiate bodies.
 * Nothing here does I/O or keeps time; everything is tested against golden bytes in `test/protocol`.
 */
export * from './messages';
export * from './hub-protocol';
export * from './text-framing';
export * from './json-hub-protocol';
export * from './binary-framing';
export * from './messagepack';
export * from './messagepack-hub-protocol';
export * from './handshake';
export * from './negotiate';
export * from './server-sent-events';
export * from './redis';
