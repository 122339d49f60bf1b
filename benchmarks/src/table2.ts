/**
 * The paper's Tables 2 and 3, reproduced: every row of workflows/student-eval.yaml - w/o tuning,
 * SFT on all, SFT on cluster 0..K-1, TIES, DARE, TWIN (merged here from the experts by the
 * lora-merge presets, the authors' settings) and DisenLoRA - on one dataset selection, then
 * `bdc table --layout table2` of all the runs in --out (so a second call on the other dataset,
 * with the same --out, fills the other column group: Table 2 = each dataset's own experts; Table
 * 3 = experts trained on one dataset, evaluated on the other).
 *
 *   pnpm exec tsx benchmarks/src/table2.ts --model Qwen/Qwen2.5-Coder-0.5B-Instruct \
 *        --sft runs/sft/steps/sft/all --experts runs/x/steps/expert/cluster-0,runs/x/steps/expert/cluster-1,... \
 *        --hypernet runs/c/steps/hypernet/hypernet --data data/apps/test.jsonl --ids 4000-4099 --out runs/table2
 *   ... --dataset codecontests --data data/codecontests/test.jsonl --out runs/table2        # the CodeContests columns
 *
 * --set applies to every row (e.g. the reward's sandbox); --encoder-overlay replaces the
 * DisenLoRA row's encoder (it must be the one the clusters were made with).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { cli, type Io } from "@bdc/core";
import { resolveModelDir } from "@bdc/lm-local";
import { runMerge } from "@bdc/lora-merge";
import { runIfMain } from "./common.ts";

const REPO = path.resolve(import.meta.dirname, "..", "..");
const WORKFLOW = path.join(REPO, "workflows/student-eval.yaml");
const DISENLORA = path.join(REPO, "configs/students/disenlora.yaml");

export interface Table2Options {
  readonly model: string;
  readonly experts: ReadonlyArray<string>;
  readonly sft?: string | undefined;
  readonly hypernet?: string | undefined;
  /** dataset/apps or dataset/codecontests. */
  readonly dataset: "apps" | "codecontests";
  readonly data?: string | undefined;
  readonly ids?: string | undefined;
  readonly limit?: number | undefined;
  readonly merges: ReadonlyArray<"ties" | "dare" | "twin">;
  readonly sets: ReadonlyArray<string>;
  readonly encoderOverlay?: string | undefined;
  readonly out: string;
  readonly io: Io;
  readonly log: (line: string) => void;
}

interface Row {
  readonly key: string;
  readonly label: string;
  readonly sets: ReadonlyArray<string>;
  readonly overlays: ReadonlyArray<string>;
}

/** Runs every row; returns the Markdown table of every run in `out` (both datasets' when both were run there). */
export async function table2(o: Table2Options): Promise<string> {
  const name = o.dataset === "apps" ? "APPS" : "CodeContests";
  const runs = path.join(o.out, o.dataset);
  fs.mkdirSync(runs, { recursive: true });
  const model = resolveModelDir(o.model, o.io.cwd);
  const rows: Row[] = [{ key: "base", label: "w/o tuning", sets: [], overlays: [] }];
  if (o.sft !== undefined) rows.push({ key: "sft-all", label: "SFT on all", sets: [`plugins.student.with.adapter=${path.resolve(o.io.cwd, o.sft)}`], overlays: [] });
  o.experts.forEach((dir, k) => rows.push({ key: `sft-cluster-${k}`, label: `SFT on cluster ${k}`, sets: [`plugins.student.with.adapter=${path.resolve(o.io.cwd, dir)}`], overlays: [] }));
  if (o.experts.length > 1) {
    for (const method of o.merges) {
      const merged = path.join(o.out, "merges", method);
      if (!fs.existsSync(path.join(merged, "adapter_config.json"))) {
        const summary = runMerge({ model, adapters: o.experts.map((e) => path.resolve(o.io.cwd, e)), method, options: {}, output: "adapter", out: merged, seed: 0 });
        o.log(`${method}: merged ${o.experts.length} experts (rank ${summary.rank}, energy kept ${(summary.energy_kept * 100).toFixed(1)}%)`);
      }
      rows.push({ key: method, label: method.toUpperCase(), sets: [`plugins.student.with.adapter=${merged}`], overlays: [] });
    }
  }
  if (o.hypernet !== undefined) rows.push({ key: "disenlora", label: "DisenLoRA", sets: [`plugins.disenlora.with.hypernet=${path.resolve(o.io.cwd, o.hypernet)}`], overlays: [DISENLORA, ...(o.encoderOverlay === undefined ? [] : [path.resolve(o.io.cwd, o.encoderOverlay)])] });

  const common = [
    `plugins.student.with.model=${model}`,
    `plugins.score.with.dataset=${name}`,
    ...(o.dataset === "codecontests" ? ["plugins.problems.use=dataset/codecontests"] : []),
    ...(o.data === undefined ? [] : [`plugins.problems.with.path=${path.resolve(o.io.cwd, o.data)}`]),
    ...(o.ids === undefined ? [] : [`plugins.problems.with.ids=${o.ids}`]),
    ...(o.limit === undefined ? [] : [`plugins.problems.with.limit=${o.limit}`]),
    ...o.sets,
  ];
  for (const row of rows) {
    const dir = path.join(runs, row.key);
    o.log(`== ${name}: ${row.label}`);
    const args = ["run", WORKFLOW, ...row.overlays.flatMap((f) => ["--overlay", f]), ...[...common, `plugins.score.with.label=${row.label}`, ...row.sets].flatMap((s) => ["--set", s]), "--out", dir, "--quiet"];
    const code = await cli(fs.existsSync(path.join(dir, "summary.json")) ? ["run", "--resume", dir, "--quiet"] : args, o.io);
    if (code !== 0) o.log(`${row.label}: exit ${code} (what finished still counts; see ${dir}/summary.json)`);
  }
  const dirs = ["apps", "codecontests"].flatMap((d) => rows.map((r) => path.join(o.out, d, r.key))).filter((d) => fs.existsSync(path.join(d, "summary.json")));
  let markdown = "";
  await cli(["table", "--layout", "table2", ...dirs], { ...o.io, out: (t) => void (markdown += t) });
  await cli(["table", ...dirs, "--csv", "--out", path.join(o.out, "table2.csv")], { ...o.io, out: () => {} });
  fs.writeFileSync(path.join(o.out, "table2.md"), markdown);
  return markdown;
}

runIfMain(import.meta.url, "table2", async (argv) => {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      model: { type: "string" },
      experts: { type: "string" },
      sft: { type: "string" },
      hypernet: { type: "string" },
      dataset: { type: "string", default: "apps" },
      data: { type: "string" },
      ids: { type: "string" },
      limit: { type: "string" },
      merges: { type: "string", default: "ties,dare,twin" },
      set: { type: "string", multiple: true, default: [] },
      "encoder-overlay": { type: "string" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help === true || values.model === undefined) {
    process.stdout.write("usage: pnpm exec tsx benchmarks/src/table2.ts --model M [--sft DIR] [--experts DIR,DIR,...] [--hypernet DIR] [--dataset apps|codecontests] [--data FILE] [--ids RANGE] [--limit N] [--merges ties,dare,twin] [--set PATH=VALUE]... [--encoder-overlay FILE] [--out DIR]\n");
    return values.help === true ? 0 : 2;
  }
  if (values.dataset !== "apps" && values.dataset !== "codecontests") throw new Error(`--dataset ${values.dataset}: choose apps or codecontests`);
  const merges = values.merges!.split(",").filter((m) => m !== "");
  for (const m of merges) if (!["ties", "dare", "twin"].includes(m)) throw new Error(`--merges: unknown method ${m} (ties, dare, twin)`);
  const markdown = await table2({
    model: values.model,
    experts: values.experts === undefined ? [] : values.experts.split(","),
    sft: values.sft,
    hypernet: values.hypernet,
    dataset: values.dataset,
    data: values.data,
    ids: values.ids,
    limit: values.limit === undefined ? undefined : Number(values.limit),
    merges: merges as Array<"ties" | "dare" | "twin">,
    sets: values.set!,
    encoderOverlay: values["encoder-overlay"],
    out: path.resolve(values.out ?? path.join(REPO, "runs", `table2-${Date.now()}`)),
    io: { out: () => {}, err: (t) => process.stderr.write(t), cwd: process.cwd(), env: process.env, isTTY: false },
    log: (l) => process.stderr.write(`${l}\n`),
  });
  process.stdout.write(markdown);
  return 0;
});
