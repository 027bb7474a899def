#!/usr/bin/env node
// The `registry` command. Keys never leave the signer's machine: `sign`, `propose` and
// `approve` sign locally and send only signatures.
//
// The command line is built in src/cli/program.ts with commander (help for every command,
// --version, suggestions for typos); each command is a function in src/cli/commands/*.ts that
// adds itself to the program, listed in program.ts's COMMANDS. Its options arrive typed and
// camelCased (--stream-ring-size: opts.streamRingSize); throw UsageError (exit 2) for a command
// line that cannot be acted on, CliError for a failure with its own exit code (src/cli/exit.ts).
import { useNobleSha512 } from './noble-setup.js';
import { run } from './program.js';

useNobleSha512();

const code = await run(process.argv.slice(2));
// A failure ends the process at once; success lets it end by itself (serve keeps running).
if (code !== 0) process.exit(code);
