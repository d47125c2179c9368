/**
 * The owning process's side of its thread and process model agents' steps: it resolves each
 * agent's model once (a scripted model keeps its state across the agent's steps, a provider its
 * client), calls it with the SDK loaded here once for all of them, and forgets the agent's models
 * when it ends. A model whose provider this process does not know (registered only where the
 * agent runs) is answered `unavailable`, and the agent calls it itself.
 */
import { ConfigError } from "../core/errors.ts";
import type { ModelStepRequest, ModelSteps } from "../core/model-steps.ts";
import { retryLine, runStep } from "./call.ts";
import { modelNameProblem, resolveModel, type ResolvedModel } from "./registry.ts";

function checkRequest(request: ModelStepRequest): void {
  const bad = (what: string): never => {
    throw new ConfigError(`a model step request needs ${what}`);
  };
  if (typeof request !== "object" || request === null) bad("to be an object");
  if (typeof request.model !== "string") bad("a model name");
  if (!Array.isArray(request.messages)) bad("messages (an array)");
  if (request.tools !== undefined && (typeof request.tools !== "object" || request.tools === null)) bad("tools as an object by name");
}

export function modelServer(): ModelSteps {
  const owners = new Map<string, Map<string, Promise<ResolvedModel>>>();
  return {
    async step(owner, request, signal, log) {
      checkRequest(request);
      const problem = modelNameProblem(request.model);
      if (problem !== undefined) return { unavailable: problem };
      let models = owners.get(owner);
      if (!models) owners.set(owner, (models = new Map()));
      let model = models.get(request.model);
      if (!model) {
        model = resolveModel(request.model);
        models.set(request.model, model);
      }
      return runStep({
        ...request,
        model: await model,
        signal,
        onRetry: (info) => log(retryLine(info)),
      });
    },
    release(owner) {
      owners.delete(owner);
    },
  };
}
