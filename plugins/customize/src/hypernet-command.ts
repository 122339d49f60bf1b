/**
 * `bdc hypernet export <workflow.yaml> <composer> --text TEXT --out DIR`: the composed adapter
 * of one input as an ordinary PEFT LoRA folder of rank K*r (the experts' A rows scaled by the
 * input's gates, lora_alpha set so that PEFT's alpha/r is the composition's scale), for serving
 * the customised model elsewhere (PEFT, vLLM) for that kind of input. gates.json beside it
 * records the gates per module and the mass per expert.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BdcError, instanceFromWorkflow, workflowFlags, type CliCommand } from "@bdc/core";
import { composedAdapter, compositionRecord, writePeftAdapter } from "@bdc/lm-local";
import type { HypernetComposer } from "./composer.ts";

const command: CliCommand = {
  spec: {
    name: "hypernet",
    summary: "Export one input's composition of the experts (DisenLoRA) as a PEFT adapter folder.",
    usage: "bdc hypernet export <workflow.yaml> <composer> (--text TEXT | --text-file FILE) --out DIR [--overlay FILE]... [--set PATH=VALUE]...",
    minPositionals: 3,
    maxPositionals: 3,
    flags: {
      text: { type: "string", value: "TEXT", description: "the input (as the student would be prompted with it)" },
      "text-file": { type: "string", value: "FILE", description: "read the input from FILE" },
      out: { type: "string", value: "DIR", description: "the PEFT folder to write" },
      ...workflowFlags,
    },
    details: "The composer instance (composer/hypernet) and its encoder come from the workflow, so the gates are the ones the workflow's student would use.",
  },
  async run(io, args) {
    const [sub, file, name] = args.positionals as [string, string, string];
    if (sub !== "export") throw new BdcError({ code: "BDC_USAGE", message: `unknown subcommand "${sub}"`, hint: "bdc hypernet export <workflow.yaml> <composer> --text TEXT --out DIR" });
    const textFlag = args.flags.text as string | undefined;
    const textFile = args.flags["text-file"] as string | undefined;
    const out = args.flags.out as string | undefined;
    if ((textFlag === undefined) === (textFile === undefined)) throw new BdcError({ code: "BDC_USAGE", message: "give the input with --text or --text-file (one of them)" });
    if (out === undefined) throw new BdcError({ code: "BDC_USAGE", message: "--out DIR is required" });
    const input = textFlag ?? fs.readFileSync(path.resolve(io.cwd, textFile!), "utf8");
    const { impl: composer, close } = await instanceFromWorkflow<HypernetComposer>(io, file, args, name, { accept: (id) => id === "composer/hypernet", what: "composer/hypernet instances" });
    try {
      const composition = await composer.compose(input);
      const adapter = composedAdapter(composition);
      const dir = path.resolve(io.cwd, out);
      writePeftAdapter(dir, adapter, composer.modelConfig);
      const record = compositionRecord(composition);
      fs.writeFileSync(path.join(dir, "gates.json"), `${JSON.stringify({ ...record, scale: composition.scale, gates: Object.fromEntries([...composition.gates].map(([k, g]) => [k, [...g]])) }, null, 2)}\n`);
      io.err(`wrote ${out}: rank ${adapter.config.rank} (${record.experts.length} experts x ${composition.stack.rank}), mass per expert ${record.experts.map((e, k) => `${e} ${record.mass[k]!.toFixed(3)}`).join(", ")}\n`);
      return 0;
    } finally {
      await close();
    }
  },
};

export default command;
