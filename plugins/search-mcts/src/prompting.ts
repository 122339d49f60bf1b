/**
 * Shared helpers of the MC-Tree-Of-Agents operators: how a problem, a thought path and a
 * program are put into prompts, and how replies are parsed back. Pure functions, no I/O.
 */
import type { Policy } from "@bdc/policy";
import type { PublicProblem } from "@bdc/reward-python";
import type { SearchContext } from "./types.ts";

/** The end-of-thought marker of the expand-thought template ("Thought: <END>"). */
export const END_MARKER = "<END>";

/** The problem as the models see it: the statement, plus starter code when there is some. */
export function problemText(problem: PublicProblem): string {
  const starter = problem.starterCode?.trim();
  return starter ? `${problem.statement.trimEnd()}\n\nStarter code:\n\`\`\`python\n${starter}\n\`\`\`` : problem.statement.trimEnd();
}

/** What the program must look like (the `{{format_instructions}}` of the code templates). */
export function formatInstructions(problem: PublicProblem): string {
  if (problem.style === "call" && problem.fnName) {
    return `The program is called, not run: define \`${problem.fnName}\` (a top-level function or a method of \`class Solution\`); it is called with the test arguments and its return value is compared. Do not read standard input.`;
  }
  if (problem.style === "script") return "Define the requested function; the tests are assertions run after your program.";
  return "The program reads the input from standard input and writes the answer to standard output.";
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

/** The last ```python block of a reply (any ``` block when none is tagged); the whole reply when there is none. */
export function extractPython(text: string): string {
  const blocks = [...text.matchAll(/```([A-Za-z0-9_+-]*)[^\n]*\n([\s\S]*?)```/g)];
  const python = blocks.filter((b) => /^(python3?|py)$/i.test(b[1]!));
  const pick = python.at(-1) ?? blocks.at(-1);
  return (pick ? pick[2]! : text).trim() + "\n";
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
