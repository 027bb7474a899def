// Options several commands share, and the parsers of option values.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { UsageError } from '../../errors.js';
import { RegistryApi } from '../api.js';
import { registryUrl } from '../io.js';

const REQUIRED = new WeakSet<Option>();

/** An option the command cannot do without. Commander's own mandatory options are checked
 * before unknown ones, so a typo (--urll) would be reported as --url missing: these are
 * checked after, by checkRequired in a preAction hook. */
export function needed(flags: string, description: string, parse?: (value: string, previous: never) => unknown): Option {
  const option = new Option(flags, `${description} (required)`);
  if (parse) option.argParser(parse as (value: string, previous: unknown) => never);
  REQUIRED.add(option);
  return option;
}

/** Refuses a command whose needed options are missing (program.hook('preAction')). */
export function checkRequired(command: Command): void {
  for (const o of command.options)
    if (REQUIRED.has(o) && command.getOptionValue(o.attributeName()) === undefined)
      command.error(`required option '${o.flags}' not specified`, { code: 'commander.missingMandatoryOptionValue' });
}

/** --url, or REGISTRY_URL from the environment. */
export const urlOption = (): Option => needed('--url <url>', 'the registry, e.g. http://127.0.0.1:8080').env('REGISTRY_URL');

export const registryIdOption = (): Option =>
  new Option(
    '--registry-id <id>',
    'the registry you expect (e.g. prod-eu): a proposal or a server for another registry is refused; default: the one the server names',
  );

/** A whole number from `min` to `max`, for commander's argParser. */
export const wholeNumber =
  (min: number, max = Number.MAX_SAFE_INTEGER) =>
  (text: string): number => {
    const n = /^\d{1,16}$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    return n;
  };

/** The API of the registry at --url, checked to be an http(s) URL. */
export const apiOf = (url: string): RegistryApi => new RegistryApi(registryUrl(url));

export const required = (value: string | undefined, flag: string): string => {
  if (value === undefined || value === '') throw new UsageError(`${flag} is required`);
  return value;
};
