/**
 * The BullMQ baseline's worker process (bench/bullmq.ts): one BullMQ `Worker` on the queue it is
 * given, running a processor that does nothing or waits `ms` (as Colony's `noop` and `io` agents),
 * with the concurrency `colony worker` gets in the end-to-end benchmark. Prints "ready" once its
 * connection is up; on SIGTERM closes the worker (it finishes the jobs it holds), prints
 * `{ "processed": N, "failed": N }` and exits 0.
 *
 *   node bench/bullmq-worker.ts <queue> <concurrency> <host> <port> <ms>
 */
import { writeSync } from "node:fs";
import { setTimeout } from "node:timers/promises";
import { Worker } from "bullmq";

const [queue, concurrencyArg, host, portArg, msArg] = process.argv.slice(2);
if (!queue || !concurrencyArg || !host || !portArg || !msArg) throw new Error("usage: bullmq-worker.ts <queue> <concurrency> <host> <port> <ms>");
const ms = Number(msArg);

let processed = 0;
let failed = 0;
const worker = new Worker(
  queue,
  // Awaited and empty, as Colony's no-op agent (what is measured is the queue around the work), or
  // a wait that holds the slot and not the CPU, as its io agent.
  async () => {
    if (ms > 0) await setTimeout(ms);
    processed++;
    return null;
  },
  { connection: { host, port: Number(portArg) }, concurrency: Number(concurrencyArg) },
);
// Without a listener an error event would end the process; the parent reads stderr if it exits.
worker.on("error", (error) => process.stderr.write(`bullmq worker error: ${error.message}\n`));
worker.on("failed", (job, error) => {
  failed++;
  process.stderr.write(`job ${job?.id ?? "?"} failed: ${error.message}\n`);
});

process.once("SIGTERM", () => {
  void worker.close().then(
    () => {
      writeSync(1, `${JSON.stringify({ processed, failed })}\n`);
      process.exit(0);
    },
    (error: unknown) => {
      process.stderr.write(`closing the worker failed: ${String(error)}\n`);
      process.exit(1);
    },
  );
});

await worker.waitUntilReady();
writeSync(1, "ready\n");
