/**
 * Runs every benchmark (`pnpm bench`), one after the other, and prints each one's table (or,
 * with --json, one JSON object keyed by benchmark name). Exits 1 if any benchmark misses its
 * target. Flags are passed to every benchmark: see common.ts (`pnpm bench --help`).
 *
 * A new benchmark exports a `Benchmark` (common.ts) and is added to BENCHMARKS below.
 */
import { FLAGS_HELP, parseFlags, type Benchmark } from "./common.ts";
import { compositionBench } from "./composition.ts";
import { disenloraSyntheticBench } from "./disenlora-synthetic.ts";
import { kernelOverhead } from "./kernel-overhead.ts";
import { kmeansBench } from "./kmeans.ts";
import { lmGeneration } from "./lm-generation.ts";
import { loraTrain } from "./lora-train.ts";
import { sandboxThroughput } from "./sandbox-throughput.ts";
import { searchOverhead } from "./search-overhead.ts";
import { sentenceEmbed } from "./sentence-embed.ts";

export const BENCHMARKS: ReadonlyArray<Benchmark> = [kernelOverhead, sandboxThroughput, searchOverhead, lmGeneration, loraTrain, kmeansBench, sentenceEmbed, compositionBench, disenloraSyntheticBench];

async function main(argv: ReadonlyArray<string>): Promise<number> {
  const flags = parseFlags(argv);
  if (flags.help) {
    const list = BENCHMARKS.map((b) => `  ${b.name.padEnd(20)}${b.description}`).join("\n");
    process.stdout.write(`usage: pnpm bench [flags]\n\nbenchmarks:\n${list}\n\n${FLAGS_HELP}\n`);
    return 0;
  }
  const json: Record<string, unknown> = {};
  const failed: string[] = [];
  for (const [i, b] of BENCHMARKS.entries()) {
    process.stderr.write(`== ${b.name} (${i + 1}/${BENCHMARKS.length})\n`);
    const outcome = await b.run(flags, (line) => process.stderr.write(`   ${line}\n`));
    if (!outcome.pass) failed.push(b.name);
    if (flags.json) json[b.name] = outcome.json;
    else process.stdout.write(`${i > 0 ? "\n" : ""}${outcome.text}\n`);
  }
  if (flags.json) process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
  else process.stdout.write(`\n${failed.length === 0 ? "PASS" : "FAIL"}: ${BENCHMARKS.length - failed.length}/${BENCHMARKS.length} benchmarks met their targets${failed.length === 0 ? "" : ` (failed: ${failed.join(", ")})`}\n`);
  return failed.length === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 2;
  },
);
