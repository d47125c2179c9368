/**
 * A manifest's agent as a module's default export, for thread and process children, which load
 * their agent by module reference. Which manifest and which agent are in this module's own URL
 * (`manifest-agent.ts?manifest=<absolute path>&agent=<name>`, made by `manifestAgentRef`): each
 * such URL is a module of its own, so one child can host agents of several manifests.
 */
import { ConfigError } from "../core/errors.ts";
import { loadManifest } from "./manifest.ts";

const query = new URL(import.meta.url).searchParams;
const file = query.get("manifest");
const name = query.get("agent");
if (!file || !name) throw new ConfigError("manifest-agent is loaded as manifest-agent.ts?manifest=<path>&agent=<name>; make its reference with manifestAgentRef(file, name)");

// The child builds the manifest afresh (its `modules` too, so providers they register exist here).
const manifest = await loadManifest(file);
if (!Object.hasOwn(manifest.agents, name)) throw new ConfigError(`${file}: no agent named "${name}" (it has ${Object.keys(manifest.agents).join(", ")})`);

export default manifest.agents[name];
