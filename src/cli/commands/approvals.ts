import { Option, type Command } from "commander";
import type { ApprovalRecord, ApprovalStatus } from "../../core/approvals.ts";
import { printJson, withExistingColony, type OutputFlags, type StoreFlags, storeOptions } from "../common.ts";
import { age, say, status, table } from "../format.ts";

interface ListFlags extends StoreFlags, OutputFlags {
  status: ApprovalStatus | "all";
}

interface DecideFlags extends StoreFlags, OutputFlags {
  reason?: string;
  by?: string;
}

const SHOWN_ARGS = 60;

function shortArgs(args: unknown): string {
  const text = JSON.stringify(args) ?? "";
  return text.length <= SHOWN_ARGS ? text : `${text.slice(0, SHOWN_ARGS - 1)}…`;
}

function decided(record: ApprovalRecord): string {
  const reason = record.reason === undefined ? "" : `: ${record.reason}`;
  return `approval ${record.id} ${status(record.status)} by ${record.decidedBy}${reason} (${record.tool} for ${record.path.join(" › ")})`;
}

export function registerApprovals(program: Command): void {
  storeOptions(program.command("approvals").description("list tool calls waiting for a person's decision (from every process on the backend)"))
    .addOption(new Option("--status <status>", "which requests to list").choices(["pending", "approved", "denied", "abandoned", "all"]).default("pending"))
    .option("--json", "print data as JSON")
    .action(async (_options: unknown, command: Command) => {
      const flags = command.optsWithGlobals<ListFlags>();
      await withExistingColony(flags, async (colony) => {
        const records = await colony.approvals.list(flags.status === "all" ? {} : { status: flags.status });
        if (flags.json) return printJson(records);
        if (records.length === 0) return say(`no ${flags.status === "all" ? "" : `${flags.status} `}approvals in ${colony.backend.location}`);
        const rows = records.map((r) => [r.id, status(r.status), r.path.join(" › "), r.tool, shortArgs(r.args), `${age(Date.now() - r.requestedAt)} ago`]);
        say(...table([["ID", "STATUS", "AGENT (FROM THE TOP OF ITS TREE)", "TOOL", "ARGUMENTS", "ASKED"], ...rows], { column: 4 }));
        if (flags.status === "pending") say("decide with: npx colony approve <id>   or   npx colony deny <id> --reason \"…\"");
      });
    });

  for (const [name, verb] of [
    ["approve", "lets the tool call run"],
    ["deny", "refuses the tool call; the model is told, with the reason"],
  ] as const) {
    storeOptions(program.command(name).description(`decide a pending approval: ${verb}; the agent resumes wherever it runs`))
      .argument("<id>", "the approval's id (colony approvals lists them)")
      .option("--reason <text>", "why; the agent's model sees it")
      .option("--by <who>", "who decides (default user@host)")
      .option("--json", "print the decided request as JSON")
      .action(async (id: string, _options: unknown, command: Command) => {
        const flags = command.optsWithGlobals<DecideFlags>();
        await withExistingColony(flags, async (colony) => {
          const decision = { ...(flags.reason !== undefined && { reason: flags.reason }), ...(flags.by !== undefined && { by: flags.by }) };
          const record = name === "approve" ? await colony.approvals.approve(id, decision) : await colony.approvals.deny(id, decision);
          if (flags.json) return printJson(record);
          say(decided(record));
        });
      });
  }
}
