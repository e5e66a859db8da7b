#!/usr/bin/env node
// The `zeropipe` command (package.json "bin"): the tool itself is lib/cli.ts.
'use strict'
require('../lib/cli.js').main(process.argv.slice(2))
