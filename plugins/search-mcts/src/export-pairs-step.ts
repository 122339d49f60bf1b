/**
 * `step/export-pairs`: the training data of the Boost stage (paper section 4.1) as files. The
 * tree search outputs, per problem, problem->thought pairs (D_p2t) and thought->solution pairs
 * (D_t2s); this step gathers them from every problem into `D_p2t.jsonl` and `D_t2s.jsonl` in its
 * step directory: one Hugging Face chat row per line (`{"messages": [{role, content}, ...]}`)
 * with a unique id and its provenance (problem_id, node_id, agent, public_pass_rate). A pair whose messages
 * occur twice (the same thought reached by two agents, a cached rerun) is written once: the
 * copy with the best public pass rate is kept. `D_train.jsonl` is both files together: D_train,
 * what the experts and the hypernetwork train on (the trainer reads these chat rows as they are).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Schema } from "effect";
import { BdcError, definePlugin, required, type StepImpl, StepName } from "@bdc/core";

export interface PairRow {
  readonly messages: ReadonlyArray<{ readonly role: string; readonly content: string }>;
  readonly problem_id: string;
  readonly node_id: string;
  readonly agent: string;
  readonly public_pass_rate: number;
}

export interface ExportPairsOutput {
  readonly p2t: number;
  readonly t2s: number;
  /** Pairs dropped because their messages were already written. */
  readonly duplicates: number;
  /** Items of `from` that carried pairs. */
  readonly problems: number;
  /** D_p2t, D_t2s, and D_train = D_p2t + D_t2s (what the experts and the hypernetwork train on). */
  readonly files: { readonly p2t: string; readonly t2s: string; readonly train: string };
}

export const PAIR_FILES = { p2t: "D_p2t.jsonl", t2s: "D_t2s.jsonl", train: "D_train.jsonl" } as const;

function isPair(x: unknown): x is PairRow {
  const r = x as Partial<PairRow> | null;
  return (
    typeof r === "object" &&
    r !== null &&
    Array.isArray(r.messages) &&
    r.messages.every((m) => typeof m === "object" && m !== null && typeof m.role === "string" && typeof m.content === "string")
  );
}

/** De-duplicates on the messages; keeps the best public pass rate (then the first seen). */
export function dedupePairs(rows: Iterable<PairRow>): { rows: PairRow[]; duplicates: number } {
  const kept = new Map<string, PairRow>();
  let duplicates = 0;
  for (const row of rows) {
    const key = JSON.stringify(row.messages.map((m) => [m.role, m.content]));
    const seen = kept.get(key);
    if (seen === undefined) kept.set(key, row);
    else {
      duplicates++;
      if ((row.public_pass_rate ?? 0) > (seen.public_pass_rate ?? 0)) kept.set(key, row);
    }
  }
  return { rows: [...kept.values()], duplicates };
}

/** Stable, unique row ids: `<kind>-<problem>-<node>`, with `-<k>` for a node's further programs (datasets key items by them). */
function withIds(kind: "p2t" | "t2s", rows: ReadonlyArray<PairRow>): Array<PairRow & { id: string }> {
  const seen = new Map<string, number>();
  return rows.map((r) => {
    const base = `${kind}-${r.problem_id}-${r.node_id}`;
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    return { ...r, id: n === 0 ? base : `${base}-${n}` };
  });
}

function writeJsonl(file: string, rows: ReadonlyArray<PairRow & { id: string }>): void {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(
    tmp,
    rows
      .map((r) =>
        JSON.stringify({
          id: r.id,
          messages: r.messages.map((m) => ({ role: m.role, content: m.content })),
          problem_id: r.problem_id,
          node_id: r.node_id,
          agent: r.agent,
          public_pass_rate: r.public_pass_rate,
        }),
      )
      .map((l) => `${l}\n`)
      .join(""),
  );
  fs.renameSync(tmp, file);
}

export default definePlugin({
  id: "step/export-pairs",
  version: "0.1.0",
  description: "Write the search's training pairs as D_p2t.jsonl and D_t2s.jsonl (Hugging Face chat rows with provenance, de-duplicated)",
  config: Schema.Struct({
    from: required(StepName, "the search step whose outputs hold pairs: {p2t, t2s} (this step waits for it)"),
  }),
  make(config): StepImpl<unknown, ExportPairsOutput> {
    return {
      run(_item, ctx) {
        const p2t: PairRow[] = [];
        const t2s: PairRow[] = [];
        let problems = 0;
        for (const item of ctx.outputs(config.from)) {
          const pairs = (item.data as { pairs?: { p2t?: unknown; t2s?: unknown } } | null)?.pairs;
          if (pairs === undefined || pairs === null) continue;
          problems++;
          for (const [name, list, into] of [["p2t", pairs.p2t, p2t], ["t2s", pairs.t2s, t2s]] as const) {
            if (list === undefined) continue;
            if (!Array.isArray(list)) throw new BdcError({ code: "BDC_ITEM_FAILED", message: `step "${config.from}", item "${item.id}": pairs.${name} is not a list` });
            for (const [i, row] of list.entries()) {
              if (!isPair(row)) throw new BdcError({ code: "BDC_ITEM_FAILED", message: `step "${config.from}", item "${item.id}": pairs.${name}[${i}] has no messages [{role, content}]` });
              into.push({ ...row, problem_id: row.problem_id ?? item.id });
            }
          }
        }
        const a = dedupePairs(p2t);
        const b = dedupePairs(t2s);
        const files = { p2t: path.join(ctx.dir, PAIR_FILES.p2t), t2s: path.join(ctx.dir, PAIR_FILES.t2s), train: path.join(ctx.dir, PAIR_FILES.train) };
        const p2tRows = withIds("p2t", a.rows);
        const t2sRows = withIds("t2s", b.rows);
        writeJsonl(files.p2t, p2tRows);
        writeJsonl(files.t2s, t2sRows);
        writeJsonl(files.train, [...p2tRows, ...t2sRows]);
        ctx.log(`${config.from}: ${a.rows.length} problem->thought and ${b.rows.length} thought->solution pairs (${a.duplicates + b.duplicates} duplicates dropped)`);
        return { p2t: a.rows.length, t2s: b.rows.length, duplicates: a.duplicates + b.duplicates, problems, files: { ...PAIR_FILES } };
      },
      summarize: (results) => {
        const o = results[0]?.output;
        return o === undefined ? {} : { p2t: o.p2t, t2s: o.t2s, duplicates: o.duplicates, problems: o.problems };
      },
    };
  },
});
