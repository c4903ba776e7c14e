// The 2.x JavaScript clients and the Node shims they run on here ship no types.
declare module 'signalr-no-jquery';
declare module 'xhr2';
declare module 'eventsource';
