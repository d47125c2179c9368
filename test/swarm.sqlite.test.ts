/** The swarm contract on sqliteBackend: every colony and store its own connection to one file. */
import { join } from "node:path";
import { createColony, sqliteBackend, type Backend } from "../src/index.ts";
import { swarmContract } from "./contract/swarm.ts";
import { tempDir } from "./fixtures/helpers.ts";

swarmContract("sqlite", async (count) => {
  const dir = tempDir("colony-swarm-sqlite-");
  const factory = sqliteBackend({ path: join(dir.path, "colony.db"), pollMs: 10 });
  const colonies = Array.from({ length: count }, () => createColony({ backend: factory }));
  const backends: Backend[] = [];
  for (let i = 0; i < count; i++) backends.push(await factory.open());
  return {
    colonies,
    backends,
    async cleanup() {
      for (const colony of colonies) await colony.close();
      for (const backend of backends) await backend.close();
      dir.dispose();
    },
  };
});
