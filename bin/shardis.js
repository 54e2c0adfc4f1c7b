#!/usr/bin/env node
"use strict";
// The `shardis` command: runs the CLI from the CommonJS build.
const { existsSync } = require("node:fs");
const { join } = require("node:path");

const cliFile = join(__dirname, "..", "dist", "cjs", "cli.js");
if (!existsSync(cliFile)) {
  console.error(`shardis: the build is missing (${cliFile}); run \`npm run build\` in the shardis directory first.`);
  process.exitCode = 1;
} else {
  require(cliFile)
    .main(process.argv.slice(2))
    .then(
      (code) => {
        process.exitCode = code;
      },
      (error) => {
        console.error(error);
        process.exitCode = 1;
      },
    );
}
