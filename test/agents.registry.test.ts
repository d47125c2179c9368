import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { createColony, sqliteBackend } from "../src/index.ts";

const OWNER = fileURLToPath(new URL("./fixtures/registry-owner.ts", import.meta.url));

test("an agent whose owner process was killed is listed as failed (crash), not running forever", { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "colony-registry-"));
  try {
    const path = join(dir, "colony.db");
    const owner = spawn(process.execPath, [OWNER, path], { stdio: ["ignore", "pipe", "inherit"] });
    const [chunk] = (await once(owner.stdout, "data")) as [Buffer];
    const id = chunk.toString().trim();

    const colony = createColony({ backend: sqliteBackend({ path }) });
    const [live] = await colony.agents.list();
    assert.equal(live?.id, id);
    assert.equal(live?.state, "running", "listed as running while its owner lives");

    owner.kill("SIGKILL");
    await once(owner, "exit");
    const [dead] = await colony.agents.list();
    assert.equal(dead?.state, "failed");
    assert.equal(dead?.reason, "crash");
    assert.match(dead?.error ?? "", /owner process \d+ is gone/);
    assert.equal(dead?.generation, live!.generation + 1, "the repair is a compare-and-set lifecycle move");
    assert.deepEqual(await colony.agents.list({ state: "running" }), []);
    await colony.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
