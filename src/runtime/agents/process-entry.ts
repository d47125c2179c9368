/** The child process side of a `process` sub-agent. */
import { spawn } from "node:child_process";
import { runHost } from "./host.ts";
import type { HostMessage } from "./protocol.ts";
import { LIFELINE_FD, OWN_COMPILE_CACHE, POOLED, WARM, readStart } from "./wire.ts";

// The compile cache was turned on for the host's start (see launchProcess); the agent's environment is what it was given.
if (process.argv.includes(OWN_COMPILE_CACHE)) delete process.env.NODE_COMPILE_CACHE;

// No orphans: when the parent goes (even by kill -9), the IPC channel closes and so do we.
process.on("disconnect", () => process.exit(0));
// An agent that never yields its event loop never sees the channel close: a watchdog, a shell
// blocked reading the lifeline (which ends when the parent goes), kills this process then. A
// shell, not a thread: a thread is a Node instance of its own (some 30 ms and 10 MB per agent).
const watchdog = spawn("/bin/sh", ["-c", 'read -r _; kill -9 "$1"', "colony-watchdog", String(process.pid)], { stdio: [LIFELINE_FD, "ignore", "ignore"] });
watchdog.on("error", (error) => console.error(`colony: a process agent's watchdog could not start: ${error.message}`));
watchdog.unref();
process.on("exit", () => watchdog.kill("SIGKILL"));

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
