#!/usr/bin/env node
/** Entry point of the `flame` command. */
import { main } from './program.js';

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
