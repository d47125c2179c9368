/**
 * `colony init [dir]`: a new project that runs at once: an agents file, a run and a workflow
 * (the starter in examples/starter, with `colony` as their import), and a package.json that says
 * they are ES modules and what they need.
 */
import type { Command } from "commander";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { UsageError, VERSION, printJson, type OutputFlags } from "../common.ts";
import { say, warn } from "../format.ts";

/** Where the starter's files are: examples/starter, two levels up from src/cli/commands and from dist/cli/commands alike. */
const STARTER = new URL("../../../examples/starter/", import.meta.url);
const FILES = ["agents.ts", "run.ts", "workflow.ts"];

export interface InitResult {
  dir: string;
  created: string[];
  next: string[];
}

/** Writes the starter into `dir`; refuses, writing nothing, if any of its files is there already. */
export function init(dir: string): InitResult {
  const target = resolve(dir);
  const taken = FILES.filter((file) => existsSync(join(target, file)));
  if (taken.length > 0) throw new UsageError(`${target} already has ${taken.join(", ")}; init writes nothing over a file: pick an empty directory`);
  mkdirSync(target, { recursive: true });
  const created: string[] = [];
  for (const file of FILES) {
    const text = readFileSync(new URL(file, STARTER), "utf8").replaceAll('"../../src/index.ts"', '"colony"');
    writeFileSync(join(target, file), text);
    created.push(file);
  }
  const manifest = join(target, "package.json");
  if (!existsSync(manifest)) {
    const pkg = {
      name: basename(target).toLowerCase().replace(/[^a-z0-9-]+/g, "-") || "colony-project",
      private: true,
      type: "module",
      scripts: { start: "colony run run.ts --fresh", workflow: `colony workflow workflow.ts --input '{"topics":["trails","nests"]}'` },
      dependencies: { colony: `^${VERSION}`, zod: "^4" },
    };
    writeFileSync(manifest, `${JSON.stringify(pkg, null, 2)}\n`);
    created.push("package.json");
  } else if ((JSON.parse(readFileSync(manifest, "utf8")) as { type?: string }).type !== "module") {
    warn(`${manifest} does not say "type": "module": add it, or Node loads the .ts files as CommonJS and they fail`);
  }
  const next = [...(target === process.cwd() ? [] : [`cd ${dir}`]), "npm install", "npx colony run run.ts", `npx colony workflow workflow.ts --input '{"topics":["trails","nests"]}'`];
  return { dir: target, created, next };
}

export function registerInit(program: Command): void {
  program
    .command("init")
    .description("start a project: an agents file, a run and a workflow that work as they are, and a package.json")
    .argument("[dir]", "where (created if need be); default the current directory", ".")
    .option("--json", "print what was created as JSON")
    .action((dir: string, flags: OutputFlags) => {
      const result = init(dir);
      if (flags.json) return printJson(result);
      say(`created in ${result.dir}: ${result.created.join(", ")}`, "", "next:", ...result.next.map((line) => `  ${line}`));
    });
}
