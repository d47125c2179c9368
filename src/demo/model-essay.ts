/**
 * The essay demo on a model (`colony demo --model`): the researcher → critic → writer loop of
 * essay.ts with the same triggers, each agent a model agent. The researcher writes its notes with
 * the board.write skill; the writer's answer is the draft; the critic's answer is a critique that
 * a zod schema checks before it reaches the board.
 */
import { z } from "zod";
import type { BoardView } from "../core/board.ts";
import { defineRun } from "../core/define.ts";
import type { Agent, AgentContext, RunDefinition } from "../core/run-types.ts";
import { defineModelAgent, type ModelAgent } from "../models/agent.ts";

const critiqueSchema = z.object({
  draftVersion: z.number().int().min(1),
  approved: z.boolean(),
  missing: z.array(z.string()),
});

type Critique = z.infer<typeof critiqueSchema>;

const TEAM = "You are one of three agents (researcher, writer, critic) who write a short essay together on a shared board.";
/** Drafts the writer may make: a critic that never approves ends the run in quiescence, not a bill. */
const DRAFTS = 3;

const critiqueOf = (view: BoardView) => view.read<Critique>("critique")?.value;

/** The agent as a loop agent whose every log line (one per model call) is also told as it happens. */
function live(agent: ModelAgent<unknown>, onLog: (agent: string, line: string) => void): Agent {
  return {
    name: agent.name,
    ...(agent.trigger && { trigger: agent.trigger }),
    ...(agent.maxFires !== undefined && { maxFires: agent.maxFires }),
    run: (ctx: AgentContext) =>
      agent.run({
        ...ctx,
        log: (line) => {
          ctx.log(line);
          onLog(agent.name, line);
        },
      }),
  };
}

/**
 * @example
 * await colony.run(modelEssay("openai:gpt-4.1-mini", (agent, line) => console.log(agent, line)));
 */
export function modelEssay(model: string, onLog: (agent: string, line: string) => void = () => {}): RunDefinition {
  const researcher = defineModelAgent({
    name: "researcher",
    model,
    instructions: `${TEAM} You are the researcher: you collect facts, you do not write the essay.`,
    skills: ["board.read", "board.write"],
    trigger: (view) => view.has("topic") && !view.has("notes"),
    maxFires: 2,
    prompt: 'Research the topic on the board. Write 3 to 5 short, checkable facts that answer it to the key "notes", as a JSON array of strings, with the board_write tool. Then answer with one line saying what you wrote.',
    maxTurns: 4,
  });

  const writer = defineModelAgent({
    name: "writer",
    model,
    instructions: `${TEAM} You are the writer: you write one paragraph of at most 120 words from the notes, and answer with that paragraph alone.`,
    skills: ["board.read"],
    trigger: (view) => {
      if (!view.has("notes")) return false;
      const draft = view.read("draft");
      const critique = critiqueOf(view);
      return draft === undefined || (critique?.draftVersion === draft.version && !critique.approved);
    },
    maxFires: DRAFTS,
    prompt: (view) => {
      const critique = critiqueOf(view);
      if (!critique) return "Write the essay that answers the topic from the notes on the board.";
      return `Revise the draft on the board. The critic says it misses: ${critique.missing.join("; ") || "nothing in particular"}.`;
    },
    writes: "draft",
    maxTurns: 4,
  });

  const critic = defineModelAgent<Critique>({
    name: "critic",
    model,
    instructions: `${TEAM} You are the critic: you check the draft against the notes and approve it once it is accurate and covers their main points; you never ask for more than the notes hold.`,
    skills: ["board.read"],
    output: critiqueSchema,
    trigger: (view) => {
      const draft = view.read("draft");
      return draft !== undefined && critiqueOf(view)?.draftVersion !== draft.version;
    },
    prompt: (view) => {
      const { version } = view.read("draft")!;
      return `Review the draft (version ${version}) against the notes. Answer as JSON: {"draftVersion": ${version}, "approved": true or false, "missing": [the notes it leaves out or gets wrong]}.`;
    },
    writes: "critique",
    maxTurns: 4,
  });

  return defineRun({
    name: "essay",
    board: "essay",
    seed: { topic: "How do ant colonies find the shortest path to food?" },
    agents: [researcher, writer, critic].map((agent) => live(agent as ModelAgent<unknown>, onLog)),
    goal: (view) => critiqueOf(view)?.approved === true,
    maxSteps: 12,
    budget: { tokens: 200_000 },
  });
}
