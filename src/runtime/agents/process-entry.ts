/** The child process side of a `process` sub-agent. */
import { Worker } from "node:worker_threads";
import { runHost } from "./host.ts";
import type { HostMessage } from "./protocol.ts";
import { OWN_COMPILE_CACHE, POOLED, WARM, readStart } from "./wire.ts";

// The compile cache was turned on for the host's start (see launchProcess); the agent's environment is what it was given.
if (process.argv.includes(OWN_COMPILE_CACHE)) delete process.env.NODE_COMPILE_CACHE;

// No orphans: when the parent goes (even by kill -9), the IPC channel closes and so do we.
process.on("disconnect", () => process.exit(0));
// An agent that never yields its event loop never sees the channel close: a watchdog thread,
// whose loop the agent cannot block, kills the process once its parent is gone.
new Worker(
  `const { workerData } = require("node:worker_threads");
  setInterval(() => { if (process.ppid !== workerData) process.kill(process.pid, "SIGKILL"); }, 250);`,
  { eval: true, workerData: process.ppid },
).unref();

const send = (message: HostMessage) => {
  if (process.connected) process.send!(message);
};

process.once("message", (raw: unknown) => {
  let start;
  try {
    start = readStart(raw);
  } catch (error) {
    console.error(`colony: a process agent got a malformed start message: ${(error as Error).message}`);
    process.exit(2);
  }
  void runHost({ trusted: false, send, listen: (listener) => process.on("message", listener) }, start);
});
// A warm process of the pool says so once it has loaded the host code; a cold one just waits.
if (process.argv[2] === POOLED) process.send!(WARM);
