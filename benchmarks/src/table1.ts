/**
 * The paper's Table 1, reproduced: runs every row's workflow (ZeroShot, the baselines,
 * MC-Tree-Of-Agents, +Pruning, +Refine) over one dataset selection and prints PR and AC per
 * difficulty side by side (Markdown, and CSV in --out). Each workflow runs its problems
 * concurrently (run.concurrency); rows run one after the other so they share the response cache.
 *
 *   pnpm exec tsx benchmarks/src/table1.ts --data data/apps/test.jsonl --ids 4000-4099   # real agents (API keys)
 *   pnpm exec tsx benchmarks/src/table1.ts --scripted --limit 6                          # dry run: scripted agents
 *
 * --scripted points both agents at the scripted OpenAI-compatible server
 * (plugins/search-mcts/src/dev/scripted-server.ts): no key, no network, deterministic.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { cli, type Io } from "@bdc/core";
import { writeScriptedOverlay } from "../../plugins/search-mcts/src/dev/e2e-harness.ts";
import { startScriptedServer } from "../../plugins/search-mcts/src/dev/scripted-server.ts";
import { runIfMain } from "./common.ts";

const REPO = path.resolve(import.meta.dirname, "..", "..");

/** Table 1's rows, in the paper's order: label -> workflow and overlays. */
export const ROWS: ReadonlyArray<{ readonly key: string; readonly workflow: string; readonly overlays?: ReadonlyArray<string> }> = [
  { key: "zero-shot", workflow: "workflows/zero-shot.yaml" },
  { key: "ldb", workflow: "workflows/ldb.yaml" },
  { key: "rap", workflow: "workflows/rap.yaml" },
  { key: "reflexion", workflow: "workflows/reflexion.yaml" },
  { key: "lats", workflow: "workflows/lats.yaml" },
  { key: "tot", workflow: "workflows/tot.yaml" },
  { key: "rethink-mcts", workflow: "workflows/rethink-mcts.yaml" },
  { key: "tree-of-agents", workflow: "workflows/tree-of-agents.yaml" },
  { key: "pruning", workflow: "workflows/tree-of-agents.yaml", overlays: ["configs/ablations/pruning.yaml"] },
  { key: "refine", workflow: "workflows/tree-of-agents.yaml", overlays: ["configs/ablations/refine.yaml"] },
];

async function main(argv: ReadonlyArray<string>): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      data: { type: "string", default: path.join(REPO, "workflows/data/quickstart-problems.jsonl") },
      ids: { type: "string" },
      limit: { type: "string" },
      rows: { type: "string" },
      scripted: { type: "boolean", default: false },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help === true) {
    process.stdout.write(`usage: pnpm exec tsx benchmarks/src/table1.ts [--data APPS.jsonl] [--ids RANGE] [--limit N] [--rows ${ROWS.map((r) => r.key).join(",")}] [--scripted] [--out DIR]\n`);
    return 0;
  }
  const wanted = values.rows === undefined ? ROWS : ROWS.filter((r) => values.rows!.split(",").includes(r.key));
  const out = path.resolve(values.out ?? path.join(REPO, "runs", `table1-${Date.now()}`));
  fs.mkdirSync(out, { recursive: true });
  const data = path.resolve(values.data!);
  const log = (l: string) => process.stderr.write(`${l}\n`);

  const server = values.scripted === true ? await startScriptedServer({ problems: data, log: () => {} }) : undefined;
  try {
    const overlays: string[] = [];
    if (server !== undefined) {
      overlays.push(writeScriptedOverlay(path.join(out, "scripted-agents.yaml"), { baseURL: `${server.url}/v1`, cacheDir: path.join(out, "cache"), limit: values.limit === undefined ? 1_000_000 : Number(values.limit) }));
    }
    const sets = [`plugins.problems.with.path=${data}`, ...(values.limit === undefined ? [] : [`plugins.problems.with.limit=${values.limit}`]), ...(values.ids === undefined ? [] : [`plugins.problems.with.ids=${values.ids}`])];
    const io: Io = {
      out: () => {},
      err: (t) => process.stderr.write(t),
      cwd: REPO,
      env: server === undefined ? process.env : { ...process.env, OPENAI_API_KEY: "scripted", ANTHROPIC_API_KEY: "scripted" },
      isTTY: false,
    };
    const dirs: string[] = [];
    for (const row of wanted) {
      if (!fs.existsSync(path.join(REPO, row.workflow))) {
        log(`skipping ${row.key}: ${row.workflow} does not exist`);
        continue;
      }
      const dir = path.join(out, row.key);
      log(`== ${row.key}: ${row.workflow}${(row.overlays ?? []).map((o) => ` + ${o}`).join("")}`);
      const args = ["run", row.workflow, ...[...(row.overlays ?? []), ...overlays].flatMap((o) => ["--overlay", o]), ...sets.flatMap((s) => ["--set", s]), "--out", dir, "--quiet"];
      const code = await cli(args, io);
      if (code !== 0) log(`${row.key}: exit ${code} (its rows still count what finished; see ${dir}/summary.json)`);
      if (fs.existsSync(path.join(dir, "summary.json"))) dirs.push(dir);
    }
    let markdown = "";
    const tableIo = (write: (t: string) => void): Io => ({ ...io, out: write });
    await cli(["table", ...dirs], tableIo((t) => void (markdown += t)));
    await cli(["table", ...dirs, "--csv", "--out", path.join(out, "table1.csv")], tableIo(() => {}));
    fs.writeFileSync(path.join(out, "table1.md"), markdown);
    process.stdout.write(markdown);
    log(`runs, table1.md and table1.csv in ${out}`);
    return 0;
  } finally {
    await server?.close();
  }
}

runIfMain(import.meta.url, "table1", main);
