#!/usr/bin/env node
// The `colony` command. It checks the Node version first, in plain JavaScript that any Node can
// read: Colony's TypeScript (a checkout's src/, a user's run files) needs Node to strip types
// without a flag. Then it runs the CLI from src/ in a checkout (so it is always current) and from
// dist/ where it is installed (Node strips no types inside node_modules, and src/ is not shipped).
import { existsSync } from "node:fs";
import { enableCompileCache } from "node:module";

const MINIMUM = [22, 18];
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < MINIMUM[0] || (major === MINIMUM[0] && minor < MINIMUM[1])) {
  process.stderr.write(
    `colony: Node ${process.versions.node} is too old: Colony needs Node ${MINIMUM.join(".")} or later (24 LTS recommended), which runs TypeScript files without a flag\n`,
  );
  process.exit(2);
}
// Node's compile cache: the CLI's modules are stripped of their types and compiled once per
// machine and version, not at every command (NODE_DISABLE_COMPILE_CACHE=1 turns it off).
enableCompileCache();
const src = new URL("../src/cli/main.ts", import.meta.url);
await import(existsSync(src) ? src.href : new URL("../dist/cli/main.js", import.meta.url).href);
