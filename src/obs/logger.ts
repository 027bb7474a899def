// pino, JSON lines on stderr so that stdout carries only what a user reads (e.g. "listening on").
import { pino, type Logger } from 'pino';
import type { LogLevel } from '../config/config.js';

export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { service: 'registry' }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination(2));
}
