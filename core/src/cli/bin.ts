#!/usr/bin/env -S node --import tsx
import { main } from "./main.ts";
import { processIo } from "./output.ts";

const code = await main(process.argv.slice(2), processIo());
process.exitCode = code;
// Let stdout drain and exit naturally; a plugin's forgotten handle (a keep-alive socket, a
// timer) must not keep a finished command alive.
setTimeout(() => process.exit(code), 2000).unref();
