/** The swarm contract on natsBackend: every colony and store its own connection to a private nats-server. */
import { randomUUID } from "node:crypto";
import { createColony, type Backend } from "../src/index.ts";
import { swarmContract } from "./contract/swarm.ts";
import { natsServerPerFile } from "./fixtures/nats.ts";

const nats = natsServerPerFile();

swarmContract("nats", async (count) => {
  const prefix = `s${randomUUID().slice(0, 8)}`;
  const colonies = Array.from({ length: count }, () => createColony({ backend: nats.backend(prefix) }));
  const backends: Backend[] = [];
  for (let i = 0; i < count; i++) backends.push(await nats.backend(prefix).open());
  return {
    colonies,
    backends,
    async cleanup() {
      for (const colony of colonies) await colony.close();
      for (const backend of backends) await backend.close();
    },
  };
});
