/** The worker thread side of a `thread` sub-agent. */
import { parentPort, workerData } from "node:worker_threads";
import { runHost } from "./host.ts";
import { startMessage } from "./protocol.ts";

const port = parentPort!;
await runHost(
  {
    trusted: false,
    send: (message) => port.postMessage(message),
    listen: (listener) => port.on("message", listener),
  },
  startMessage.parse(workerData),
);
