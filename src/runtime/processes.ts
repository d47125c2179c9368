/** This machine's processes, as the registries record them: by host name and pid. */
import { hostname } from "node:os";

/** This machine's host name, read once. */
export const HOST = hostname();

/** Whether a process with this pid runs on this machine (one of another user counts). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
