// What the commands read and write: JSON files named by a flag (errors name the flag and the
// file), the registry URL, and text shown to a person (control characters escaped).
import { readFileSync, writeFileSync } from 'node:fs';
import { parseStrictJson } from '../core/strict-json.js';
import { UsageError } from '../errors.js';

/** Why a file named by `flag` cannot be read, in the user's terms. */
function unreadable(flag: string, path: string, e: NodeJS.ErrnoException): UsageError {
  const why =
    e.code === 'ENOENT'
      ? `no such file: ${path}`
      : e.code === 'EISDIR'
        ? `${path} is a folder, not a file`
        : e.code === 'EACCES'
          ? `cannot read ${path} (permission denied)`
          : `cannot read ${path}: ${e.message}`;
  return new UsageError(`${flag}: ${why}`);
}

/** The text of the file `path`, which the user gave as `flag` (`--ops`, `PAYLOAD_FILE`, ...). */
export function readText(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw unreadable(flag, path, e as NodeJS.ErrnoException);
  }
}

/** Line and column of a character offset, counted from 1. */
function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `line ${before.length}, column ${before[before.length - 1]!.length + 1}`;
}

/** The JSON document in `path` (I-JSON: no member named twice, no integer a double would
 * round, so that what is signed is what the file shows); errors name the flag and the file. */
export function readJsonFile(path: string, flag: string): unknown {
  const text = readText(path, flag);
  try {
    return parseStrictJson(text);
  } catch (e) {
    const message = (e as Error).message.replace(/^the body is not valid JSON: /, '').replace(/the body/g, 'the file');
    const at = /position (\d+)/.exec(message);
    throw new UsageError(`${flag}: ${path} is not valid JSON: ${message}${at ? ` (${lineColumn(text, Number(at[1]))})` : ''}`);
  }
}

export function output(value: unknown, out?: string): void {
  const text = JSON.stringify(value, null, 2) + '\n';
  if (out) writeFileSync(out, text);
  else process.stdout.write(text);
}

/** The --url, checked: an http(s) URL, without the trailing slash. */
export function registryUrl(url: string): string {
  if (!/^https?:\/\//i.test(url)) throw new UsageError(`--url must start with http:// or https:// (got ${url})`);
  try {
    new URL(url);
  } catch {
    throw new UsageError(`--url ${url} is not a valid URL`);
  }
  return url.replace(/\/+$/, '');
}

// C0 and C1 controls (ANSI escapes could erase or rewrite lines of a review) and the
// bidirectional overrides that reorder text on screen ("Trojan Source").
// eslint-disable-next-line no-control-regex
const HIDING = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const escapeChar = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** Text from a proposal shown to a person: characters that could hide or reorder what is shown are escaped. */
export const shown = (text: string): string => text.replace(HIDING, escapeChar);

/** A JSON value on one line, as shown to a person. */
export const shownJson = (value: unknown): string => shown(JSON.stringify(value) ?? 'undefined').replace(/\n/g, '\\n');

/** `text` in single quotes for a POSIX shell, when it needs quoting. */
export const shellQuote = (text: string): string => (/^[A-Za-z0-9_./:@%+=,-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`);
