// Runs before every test file: what the CLI does once at its edge.
import { useNobleSha512 } from '../src/cli/noble-setup.js';

useNobleSha512();
