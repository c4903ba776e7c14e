/**
 * The official-client scenarios of every table again, over MessagePack: both servers offer JSON and MessagePack and
 * the clients speak MessagePack (scenarios of raw frames and event streams are JSON text and stay JSON-only).
 */
import { conformanceSuite } from './engine/suite';
import { messagePackScenarios } from './engine/tables';

conformanceSuite('official-client scenarios over MessagePack', messagePackScenarios(), { protocol: 'messagepack' });
