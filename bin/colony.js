#!/usr/bin/env node
// The installed entry point runs the compiled CLI: Node does not strip types inside node_modules.
import "../dist/cli/main.js";
