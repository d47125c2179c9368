import { createColony, memoryBackend } from "../src/index.ts";
import { taskBoardContract } from "./contract/tasks.ts";

taskBoardContract("memory", async (options = {}) => {
  const colony = createColony({ backend: memoryBackend(), ...options });
  return { colony, cleanup: () => colony.close() };
});
