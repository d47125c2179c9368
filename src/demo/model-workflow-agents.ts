/**
 * The agents of the model-backed workflow demo, for the demo's `colony worker --agents` processes.
 * A worker loads agents from a module, so the model comes from COLONY_DEMO_MODEL, which `colony
 * demo --model` sets for the workers it starts.
 */
import { ConfigError } from "../core/errors.ts";
import { compare as compareFindings, modelResearch } from "./model-workflow.ts";

const model = process.env.COLONY_DEMO_MODEL;
if (!model) throw new ConfigError("set COLONY_DEMO_MODEL to the model's name, e.g. openai:gpt-4.1-mini (colony demo --model sets it for its workers)");

export const research = modelResearch(model);
export const compare = compareFindings;
