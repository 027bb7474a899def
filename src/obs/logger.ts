// pino, JSON lines on stderr so that stdout carries only what a user reads (e.g. "listening on").
import { pino, type Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { service: 'registry' }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination(2));
}
