/**
 * The raw baselines' other end, as a worker thread or a forked process. Mode `once` posts one
 * message and exits (spawn latency); mode `echo` answers every message with itself until the
 * parent says "exit" (warm round trip). Plain JavaScript, so that a raw start pays for no
 * TypeScript stripping: the baseline is the cheapest start Node has.
 */
import process from "node:process";
import { parentPort, workerData } from "node:worker_threads";

/** @type {"once" | "echo"} */
const mode = parentPort ? workerData : process.argv[2];
const post = parentPort ? (message) => parentPort.postMessage(message) : (message) => process.send(message);

if (mode === "once") {
  post({ t: "ready" });
  if (!parentPort) process.disconnect();
} else {
  const onMessage = (message) => {
    if (message === "exit") {
      if (parentPort) parentPort.close();
      else process.disconnect();
      return;
    }
    post(message);
  };
  if (parentPort) parentPort.on("message", onMessage);
  else process.on("message", onMessage);
}
