/**
 * `colony serve`: the HTTP API (and the dashboard at /) over the store the flags name, until
 * SIGINT or SIGTERM. Loopback by default; any other address needs a token.
 */
import { basename, extname } from "node:path";
import type { Command } from "commander";
import type { RunDefinition } from "../../core/run-types.ts";
import { DEFAULT_HOST, DEFAULT_PORT } from "../../server/types.ts";
import { UsageError, storeOptions, wholeNumber, withColony, type OutputFlags, type StoreFlags } from "../common.ts";
import { say, warn } from "../format.ts";
import { loadRunDefinition } from "../load.ts";
import { onStop } from "../signals.ts";

interface ServeFlags extends StoreFlags, OutputFlags {
  port: number;
  host: string;
  token?: string;
  cors?: string;
  run?: string[];
}

const list = (value: string, previous: string[] = []) => [...previous, value];

/** The definitions `POST /api/runs` may start, by their name (or their file's). */
async function loadDefinitions(files: string[]): Promise<Record<string, RunDefinition>> {
  const definitions: Record<string, RunDefinition> = {};
  for (const file of files) {
    const definition = await loadRunDefinition(file);
    const name = definition.name ?? basename(file, extname(file));
    if (Object.hasOwn(definitions, name)) throw new UsageError(`--run ${file}: a definition named ${JSON.stringify(name)} was given already; give each run its own name`);
    definitions[name] = definition;
  }
  return definitions;
}

export function registerServe(program: Command): void {
  storeOptions(
    program
      .command("serve")
      .description("serve the HTTP API (under /api, described at /api/openapi.json) and the dashboard (at /) until SIGINT or SIGTERM"),
  )
    .option("--port <n>", "the port; 0 picks a free one", wholeNumber(0), DEFAULT_PORT)
    .option("--host <address>", "the address to listen on; one that is not loopback needs --token", DEFAULT_HOST)
    .option("--token <token>", 'every /api request must carry "Authorization: Bearer <token>" (env COLONY_TOKEN)')
    .option("--cors <origin>", "let pages of this one origin call the API from a browser (default: none)")
    .option("--run <file>", "a run definition (or a manifest with run:) that POST /api/runs may start; repeatable", list)
    .option("--json", "print { url } as one JSON line once listening")
    .action(async (_options: unknown, command: Command) => {
      const flags = command.optsWithGlobals<ServeFlags>();
      const token = flags.token ?? (process.env.COLONY_TOKEN || undefined);
      const definitions = await loadDefinitions(flags.run ?? []);
      await withColony(flags, async (colony) => {
        // A refusal (no token beyond loopback, the port taken) is a ConfigError: one line, exit 2.
        const server = await colony.serve({ port: flags.port, host: flags.host, token, cors: flags.cors, definitions });
        const { stopped } = onStop();
        if (flags.json) console.log(JSON.stringify({ url: server.url }));
        else {
          say(`serving ${colony.backend.kind} ${colony.backend.location} at ${server.url}`);
          say(`  dashboard ${server.url}/   API ${server.url}/api   described at ${server.url}/api/openapi.json${token === undefined ? "" : '   (requests need "Authorization: Bearer <token>")'}`);
        }
        warn(`stopping on ${await stopped}`);
        await server.close();
      });
    });
}
