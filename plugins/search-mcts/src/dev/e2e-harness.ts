/**
 * Test helper: runs a workflow through the real `bdc` CLI (in-process) with both paper agents
 * pointed at the scripted server (./scripted-server.ts), so a search workflow runs end to end
 * without any model, key or network.
 *
 * Agents: `gpt` keeps `policy/openai` (model gpt-4o-mini) with `baseURL` set to the scripted
 * server. `claude` is `policy/anthropic` in the paper's agents file, which speaks Anthropic's
 * Messages API, not Chat Completions; the scripted server only speaks the latter, so the overlay
 * written here switches claude to `use: policy/openai` with another model name
 * (claude-3-5-sonnet-scripted) on the same server: still two agents with different behaviour.
 * Responses are cached in a temporary folder (never in the project's .cache). The API keys in
 * the environment are dummies (nothing reaches a provider).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { stringify } from "yaml";
import { cli } from "@bdc/core";
import { checkSandbox } from "@bdc/reward-python";

export const REPO = path.resolve(import.meta.dirname, "..", "..", "..", "..");
export const PROBLEMS = path.join(REPO, "workflows", "data", "quickstart-problems.jsonl");

export interface CliRun {
  readonly code: number;
  readonly out: string;
  readonly err: string;
  /** The run directory (--out). */
  readonly dir: string;
}

/** Writes the overlay that points both agents at `baseURL` and shrinks the run. */
export function writeScriptedOverlay(file: string, options: { baseURL: string; cacheDir: string; limit?: number; extra?: Record<string, unknown> }): string {
  const agent = (model: string) => ({ use: "policy/openai", with: { model, baseURL: options.baseURL, cache_dir: options.cacheDir } });
  const overlay = {
    run: { concurrency: 3 },
    plugins: {
      gpt: agent("gpt-4o-mini"),
      // policy/anthropic speaks the Messages API; the scripted server speaks Chat Completions.
      claude: agent("claude-3-5-sonnet-scripted"),
      problems: { with: { limit: options.limit ?? 3 } },
      reward: { with: { sandbox: checkSandbox().ok ? "bwrap" : "none" } },
      ...options.extra,
    },
  };
  fs.writeFileSync(file, `# written by the search-mcts end-to-end test (scripted agents)\n${stringify(overlay)}`);
  return file;
}

/** `bdc run <workflow> ... --out <dir> --quiet`, in-process, with dummy API keys. */
export async function runCli(args: ReadonlyArray<string>, dir: string): Promise<CliRun> {
  let out = "";
  let err = "";
  const code = await cli(["run", ...args, "--out", dir, "--quiet"], {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    cwd: REPO,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, OPENAI_API_KEY: "dummy-openai-key", ANTHROPIC_API_KEY: "dummy-anthropic-key" },
    isTTY: false,
  });
  return { code, out, err, dir };
}

/** `steps/<step>/outputs.jsonl` of a run: one `{id, output}` per finished item. */
export function stepOutputs<T = unknown>(dir: string, step: string): Array<{ id: string; output?: T; error?: unknown }> {
  const file = path.join(dir, "steps", step, "outputs.jsonl");
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as { id: string; output?: T; error?: unknown });
}

/** Every file under `dir`, relative to it. */
export function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(dir, f)).isFile()).sort();
}

export function readJsonl(file: string): unknown[] {
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as unknown);
}
