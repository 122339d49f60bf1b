/**
 * The one prompt module: how a problem, a thought path and a program are put into prompts, and
 * how replies are parsed back - for the MC-Tree-Of-Agents operators, the baselines, step/zero-shot
 * (the student's evaluation prompt) and the training pairs. Pure functions, no I/O.
 */
import type { Policy } from "@bdc/policy";
import type { PublicProblem } from "@bdc/reward-python";
import type { SearchContext } from "./types.ts";

/** The end-of-thought marker of the expand-thought template ("Thought: <END>"). */
export const END_MARKER = "<END>";

/**
 * The problem as every model sees it - the agents in the search, the zero-shot baseline, the
 * training pairs and the student at evaluation: the statement, plus the starter code when there
 * is some. The one place this text is made (a test pins that they all render it).
 */
export function problemText(problem: Pick<PublicProblem, "statement" | "starterCode">): string {
  const starter = problem.starterCode?.trim();
  return starter ? `${problem.statement.trimEnd()}\n\nStarter code:\n\`\`\`python\n${starter}\n\`\`\`` : problem.statement.trimEnd();
}

/** What the program must look like (the `{{format_instructions}}` of the code templates): how the tests run it. */
export function formatInstructions(problem: Pick<PublicProblem, "style" | "fnName" | "starterCode">): string {
  switch (problem.style) {
    case "call":
      return (
        `Implement the function/method ${problem.fnName ?? "of the starter code"} of the starter code` +
        " (a top-level function, or a method of class Solution): the tests call it with their arguments and compare the value it returns." +
        " Do not read standard input and do not print the answer."
      );
    case "script":
      return "Complete the code given above; the tests are assertions run after your program in the same namespace.";
    default:
      return "The program reads the input from standard input and writes the answer to standard output.";
  }
}

/** "1. first\n2. second"; "(none yet)" for an empty path. */
export function numberedThoughts(thoughts: ReadonlyArray<string>): string {
  return thoughts.length === 0 ? "(none yet)" : thoughts.map((t, i) => `${i + 1}. ${t}`).join("\n");
}

const THOUGHT_LINE = /^\s*(?:[-*>]\s*|\d+[.)]\s*)?(?:\*\*)?thought(?:\s*\d+)?\s*(?:\*\*)?\s*[:：]\s*(.*)$/i;

/** Lines "Thought: ..." of a reply, in order; `<END>` marks a final one (the marker is stripped). */
export function parseThoughts(text: string): Array<{ thought: string; final: boolean }> {
  const out: Array<{ thought: string; final: boolean }> = [];
  for (const line of text.split(/\r?\n/)) {
    const m = THOUGHT_LINE.exec(line);
    if (!m) continue;
    const raw = m[1]!.replace(/^\*\*\s*/, "").replace(/\*\*$/, "").trim();
    const final = raw.includes(END_MARKER);
    const thought = raw.replace(END_MARKER, "").trim();
    if (thought === "" && !final) continue;
    out.push({ thought: thought === "" ? END_MARKER : thought, final });
  }
  return out;
}

/**
 * The program in a model's answer: the last (default) or the first ```python (```py, ```python3)
 * block, else the last/first fenced block of any language, else the whole answer (some models,
 * and a student trained on bare programs, omit the fence). A block cut by max_tokens (no closing
 * fence) counts. The search takes the last block (a program after its sketches); step/zero-shot
 * takes the first by default (its published behaviour), and says so in its config.
 */
export function extractPython(text: string, which: "first" | "last" = "last"): string {
  const fenced = [...text.matchAll(/```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n([\s\S]*?)(?:```|$)/g)];
  const python = fenced.filter((m) => /^(python3?|py)$/i.test(m[1] ?? ""));
  const pool = python.length > 0 ? python : fenced;
  const block = which === "first" ? pool[0] : pool.at(-1);
  return `${(block === undefined ? text : block[2]!).replace(/\s+$/, "").replace(/^\s*\n/, "")}\n`;
}

/**
 * The instances an operator uses, as the search sees them: an operator names its agents through
 * its own `agents` reference; the search hands it per-search counting wrappers of the same
 * instances (matched by instance name) in `ctx.agents`. An agent the search does not know is
 * used directly (its calls are then not in the search's budget).
 */
export function searchAgents(own: ReadonlyArray<Policy>, ctx: SearchContext): Policy[] {
  return own.map((a) => ctx.agents.find((b) => b.name === a.name) ?? a);
}
