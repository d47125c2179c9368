/** The task board contract against natsBackend (an event-sourced stream per task board), on a private nats-server. */
import { createColony } from "../src/index.ts";
import { taskBoardContract } from "./contract/tasks.ts";
import { natsServerPerFile } from "./fixtures/nats.ts";

const nats = natsServerPerFile();

taskBoardContract("nats", async (options = {}) => {
  const colony = createColony({ backend: nats.backend(), ...options });
  return { colony, cleanup: () => colony.close() };
});
