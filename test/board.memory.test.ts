import { createColony, memoryBackend } from "../src/index.ts";
import { boardContract } from "./contract/board.ts";

boardContract("memory", async (options = {}) => {
  const colony = createColony({ backend: memoryBackend(), ...options });
  return { colony, cleanup: () => colony.close() };
});
