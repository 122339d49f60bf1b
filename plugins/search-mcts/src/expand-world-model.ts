/**
 * expand/world-model: RAP's expansion (Hao et al. 2023, "Reasoning with Language Model is
 * Planning with World Model"): the LLM is both the agent and the world model. For the selected
 * state, every agent
 *   1. proposes `width` actions: next sub-questions ("rap-subquestion" template, variables
 *      problem, thoughts, width; lines "Sub-question: ...", at most `width`; "<END>" = the
 *      answers so far suffice: a final child, no world-model call), then
 *   2. as the world model, predicts the next state of each action: it answers the sub-question
 *      ("rap-answer" template, variables problem, thoughts, question; one call per sub-question,
 *      a leading "Answer:" is stripped, lines are joined).
 * The child's thought is "Q: <sub-question>\nA: <answer>". Every agent answers its own
 * sub-questions. Priors: none (uniform; RAP's action likelihood needs log-probabilities, which
 * the policies do not expose). Order: agent order, then reply order: deterministic.
 */
import { Schema } from "effect";
import { definePlugin, option } from "@bdc/core";
import { END_MARKER, numberedThoughts, problemText, searchAgents } from "./prompting.ts";
import type { Expander, ProposedThought } from "./types.ts";

const SUBQUESTION_LINE = /^\s*(?:[-*>]\s*|\d+[.)]\s*)?(?:\*\*)?sub[- ]?question(?:\s*\d+)?\s*(?:\*\*)?\s*[:：]\s*(.*)$/i;

/** Lines "Sub-question: ..." of a reply, in order; `<END>` marks a final one (the marker is stripped). */
export function parseSubquestions(text: string): Array<{ question: string; final: boolean }> {
  const out: Array<{ question: string; final: boolean }> = [];
  for (const line of text.split(/\r?\n/)) {
    const m = SUBQUESTION_LINE.exec(line);
    if (!m) continue;
    const raw = m[1]!.replace(/^\*\*\s*/, "").replace(/\*\*$/, "").trim();
    const final = raw.includes(END_MARKER);
    const question = raw.replace(END_MARKER, "").trim();
    if (question === "" && !final) continue;
    out.push({ question, final });
  }
  return out;
}

/** The world model's answer: a leading "Answer:" stripped, lines joined into one. */
export function parseAnswer(text: string): string {
  const answer = text
    .trim()
    .replace(/^(?:\*\*)?answer(?:\*\*)?\s*[:：]\s*(?:\*\*)?/i, "")
    .replace(/\s*\r?\n\s*/g, " ")
    .trim();
  return answer === "" ? "(no answer)" : answer;
}

/** The thought of a child: the action (sub-question) and the predicted next state (its answer). */
export const rapThought = (question: string, answer: string): string => `Q: ${question}\nA: ${answer}`;

export default definePlugin({
  id: "expand/world-model",
  version: "0.1.0",
  description: "RAP expansion: every agent proposes `width` sub-questions, then answers each as the world model; thought = \"Q: ...\\nA: ...\"",
  config: Schema.Struct({
    width: option(Schema.Int.pipe(Schema.positive()), 4, "sub-questions asked of each agent (RAP's GSM8K setting: 4)"),
    template: option(Schema.String, "rap-subquestion", "sub-question prompt (variables problem, thoughts, width)"),
    answer_template: option(Schema.String, "rap-answer", "world-model prompt (variables problem, thoughts, question)"),
  }),
  requires: {
    agents: { slot: "policy", many: true, description: "the agents that ask and answer sub-questions (default: every enabled policy)" },
    prompts: { slot: "prompts" },
  },
  make(config, deps): Expander {
    return {
      async expand(node, ctx) {
        const problem = problemText(ctx.problem);
        const thoughts = numberedThoughts(ctx.thoughtsTo(node));
        const prompt = deps.prompts.render(config.template, { problem, thoughts, width: config.width });
        const replies = await Promise.all(
          searchAgents(deps.agents, ctx).map(async (agent) => {
            const r = await agent.complete([{ role: "user", content: prompt }], { signal: ctx.signal });
            const actions = parseSubquestions(r.text).slice(0, config.width);
            return Promise.all(
              actions.map(async (a): Promise<ProposedThought> => {
                if (a.final) return { thought: END_MARKER, agent: agent.name, final: true };
                const ask = deps.prompts.render(config.answer_template, { problem, thoughts, question: a.question });
                const answer = await agent.complete([{ role: "user", content: ask }], { signal: ctx.signal });
                return { thought: rapThought(a.question, parseAnswer(answer.text)), agent: agent.name };
              }),
            );
          }),
        );
        return replies.flat();
      },
    };
  },
});
