/** The swarm contract on memoryBackend: colonies in one process sharing one memory backend. */
import { createColony, memoryBackend, type BackendFactory } from "../src/index.ts";
import { swarmContract } from "./contract/swarm.ts";

swarmContract("memory", async (count) => {
  const shared = await memoryBackend().open();
  const factory: BackendFactory = { kind: "memory", embedded: true, location: "shared", open: async () => ({ ...shared, close: async () => {} }) };
  const colonies = Array.from({ length: count }, () => createColony({ backend: factory }));
  return {
    colonies,
    backends: Array.from({ length: count }, () => shared),
    async cleanup() {
      for (const colony of colonies) await colony.close();
    },
  };
});
