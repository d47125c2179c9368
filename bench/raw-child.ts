/**
 * The raw baselines' other end, as a worker thread or a forked process. Mode `once` posts one
 * message and exits (spawn latency); mode `echo` answers every message with itself until the
 * parent says "exit" (warm round trip).
 */
import { parentPort, workerData } from "node:worker_threads";

const mode = (parentPort ? workerData : process.argv[2]) as "once" | "echo";
const post = parentPort ? (message: unknown) => parentPort!.postMessage(message) : (message: unknown) => process.send!(message);

if (mode === "once") {
  post({ t: "ready" });
  if (!parentPort) process.disconnect();
} else {
  const onMessage = (message: unknown) => {
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
