#!/usr/bin/env node
/** Entry point of the `flame` command. */
import { main } from './program.js';

// The AWS SDK warns on every S3 command about its own future Node support; the CLI's users cannot act
// on it (the supported range is in package.json's engines), so it stays off the terminal.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// `flame --help | head`: a reader that stops early ends the output, quietly.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
