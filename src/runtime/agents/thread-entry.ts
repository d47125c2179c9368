/** The worker thread side of a `thread` sub-agent. */
import { parentPort, workerData } from "node:worker_threads";
import { runHost, type Channel } from "./host.ts";
import { POOLED, WARM, readStart } from "./wire.ts";

const port = parentPort!;
const channel: Channel = {
  trusted: false,
  send: (message) => port.postMessage(message),
  listen: (listener) => port.on("message", listener),
};
if (workerData === POOLED) {
  // A warm thread of the pool: its start message is the first message on the port. The host's
  // own listener is on before the next message can arrive (runHost sets it synchronously).
  port.once("message", (raw: unknown) => void runHost(channel, readStart(raw)));
  port.postMessage(WARM);
} else {
  await runHost(channel, readStart(workerData));
}
