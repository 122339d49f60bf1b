/**
 * A SCRIPTED OpenAI-compatible server, for tests and development only: it runs the search
 * workflows end to end without any model, key or network. It is NOT a model and its numbers mean
 * nothing; it only behaves plausibly and deterministically.
 *
 *   pnpm exec tsx plugins/search-mcts/src/dev/scripted-server.ts --problems workflows/data/quickstart-problems.jsonl [--port 8098]
 *
 * then point agents at it (any model name, no key): `--set plugins.gpt.with.baseURL=http://127.0.0.1:8098/v1`.
 *
 * POST /v1/chat/completions (JSON or SSE streaming; usage counted as whitespace-separated words)
 * recognises which built-in prompt template (plugins/policy/prompts/) the last user message was
 * rendered from and answers in kind:
 *   expand-thought      -> `width` lines "Thought: [model] step D.K: <idea>" (an idea chosen by a
 *                          hash of the problem, depth D, K and the model); once the reasoning so
 *                          far holds 3 thoughts: "Thought: <END>".
 *   code-from-thoughts,
 *   zero-shot           -> a ```python block with the problem's first reference solution (the
 *                          problem is found by the APPS `question` text contained in the prompt),
 *                          deliberately BROKEN for some requests: the program prints -1 (stdio)
 *                          or returns None (call-based) for about two inputs in three (see
 *                          breakProgram). Zero-shot: broken when a hash of (model, prompt) is
 *                          even. From thoughts: always broken without any of this server's
 *                          thoughts (a search's root), then broken unless the hash is 0 mod 4
 *                          (one thought), when it is even (two), when it is 0 mod 4 (three or
 *                          more): deeper reasoning helps, so a search goes further than one level;
 *                          two models, and two thought paths, get different but reproducible
 *                          pass rates.
 *   repair-with-reflection,
 *   repair-with-trace   -> ("repair") as zero-shot: broken when a hash of (model, prompt) is even.
 *   lats-expand         -> (LATS, expand/programs) as zero-shot: broken when the hash is even.
 *   refine-summary      -> a short diagnosis; reflection -> a short reflection;
 *   rap-subquestion     -> (RAP) `width` lines "Sub-question: [model] step D.K: should we <idea>?"
 *                          (as expand-thought, "<END>" after 2); rap-answer -> "Answer: yes, ...";
 *   rap-self-eval       -> "Rating: N", N = a hash of (model, prompt) mod 11.
 *   regenerate-thought  -> "Thought: [model] step D.r: <revised idea>".
 *   anything else       -> a fixed reply naming what it could not recognise.
 * GET /stats -> {"requests": N, "by_kind": {...}}; GET /v1/models. Listens on 127.0.0.1 only.
 * Templates replaced by the user (prompts/templates) are not recognised.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { listenOnLoopback } from "@bdc/core/testing";

export type PromptKind = "expand-thought" | "code-from-thoughts" | "zero-shot" | "refine-summary" | "regenerate-thought" | "reflection" | "repair" | "lats-expand" | "rap-subquestion" | "rap-answer" | "rap-self-eval" | "unknown";

export interface ScriptedCall {
  readonly model: string;
  readonly kind: PromptKind;
  /** The APPS problem the prompt was matched to (code prompts), if any. */
  readonly problem_id?: string;
  /** Code prompts: whether the answer was deliberately broken. */
  readonly broken?: boolean;
}

export interface ScriptedServer {
  /** http://127.0.0.1:PORT (the OpenAI base URL is this + "/v1"). */
  readonly url: string;
  readonly port: number;
  /** Chat completion requests answered so far. */
  requests(): number;
  /** What each request was recognised as, in order. */
  calls(): ReadonlyArray<ScriptedCall>;
  close(): Promise<void>;
}

export interface ScriptedServerOptions {
  /** APPS-format JSONL (question, solutions, input_output, starter_code, problem_id). */
  readonly problems: string;
  /** Default 0: a free port. */
  readonly port?: number;
  /** One line per request (default: silent). */
  readonly log?: (line: string) => void;
}

interface AppsProblem {
  readonly id: string;
  readonly question: string;
  readonly solution?: string;
  readonly fnName?: string;
}

type Json = Record<string, unknown>;

const parseMaybe = (v: unknown): unknown => {
  if (typeof v !== "string") return v;
  try {
    return JSON.parse(v);
  } catch {
    return undefined;
  }
};

export function loadAppsProblems(file: string): AppsProblem[] {
  const out: AppsProblem[] = [];
  for (const [i, line] of fs.readFileSync(file, "utf8").split("\n").entries()) {
    if (line.trim() === "") continue;
    let row: Json;
    try {
      row = JSON.parse(line) as Json;
    } catch {
      throw new Error(`${file}:${i + 1}: not JSON`);
    }
    if (typeof row.question !== "string") continue;
    const solutions = parseMaybe(row.solutions);
    const io = parseMaybe(row.input_output) as Json | undefined;
    const solution = Array.isArray(solutions) && typeof solutions[0] === "string" ? solutions[0] : undefined;
    const fnName = io !== null && typeof io === "object" && typeof io.fn_name === "string" ? io.fn_name : undefined;
    out.push({ id: String(row.problem_id ?? row.id ?? i), question: row.question, ...(solution === undefined ? {} : { solution }), ...(fnName === undefined ? {} : { fnName }) });
  }
  return out;
}

const hash = (...parts: string[]) => crypto.createHash("sha256").update(parts.join("\u0000")).digest();
const hashInt = (...parts: string[]) => hash(...parts).readUInt32BE(0);
const words = (s: string) => (s.match(/\S+/g) ?? []).length;

/** Which built-in template a prompt was rendered from (their fixed sentences). */
export function promptKind(prompt: string): PromptKind {
  if (prompt.includes("candidate next sub-questions")) return "rap-subquestion";
  if (prompt.includes("Sub-question to answer:")) return "rap-answer";
  if (prompt.includes("Rate how useful\nthe new step is")) return "rap-self-eval";
  if (prompt.includes("improving a solution by tree search")) return "lats-expand";
  if (prompt.includes("propose the\nnext reasoning step") || /Give \d+ different candidate next steps/.test(prompt)) return "expand-thought";
  if (prompt.includes("Write a Python 3 program that solves the problem below, following the reasoning given")) return "code-from-thoughts";
  if (prompt.includes("Another agent's line of reasoning")) return "refine-summary";
  if (prompt.includes("Your last reasoning step was judged wrong")) return "regenerate-thought";
  if (prompt.includes("Your previous program for the problem below fails some")) return "repair";
  if (prompt.includes("Reflect on why")) return "reflection";
  if (prompt.includes("Solve the following problem in Python 3")) return "zero-shot";
  return "unknown";
}

/** The text of a prompt between two headings ("Reasoning so far:" ... "Give"). */
function section(prompt: string, start: string, end: RegExp): string {
  const at = prompt.indexOf(start);
  if (at < 0) return "";
  const rest = prompt.slice(at + start.length);
  const stop = rest.search(end);
  return stop < 0 ? rest : rest.slice(0, stop);
}

/** Thoughts this server wrote, counted by their "step D.K:" marker. */
const MARKER = /\bstep \d+\.(?:\d+|r\d*):/g;
const countThoughts = (text: string) => (text.match(MARKER) ?? []).length;

const IDEAS = [
  "read the whole input first and parse it into integers",
  "handle the smallest case (a single element) separately",
  "a linear scan keeping a running best answer is enough",
  "sort the values first; then neighbours are the only candidates",
  "use a dictionary to count occurrences",
  "watch for negative numbers and for an empty result",
  "the answer fits in 64 bits, Python integers are fine anyway",
  "simulate the process directly, the limits are small",
  "precompute prefix sums to answer ranges in O(1)",
  "print exactly the format the statement asks for",
];

/**
 * The reference program with a deliberate bug: a wrong answer on the inputs (stdio) or the
 * arguments (call-based) for which `(sum of character codes + salt) % 3 != 0`, about two in
 * three, which ones depending on the salt; `always`: on every input.
 */
export function breakProgram(code: string, fnName: string | undefined, salt = 0, always = false): string {
  const when = (expr: string) => (always ? "True" : `(sum(map(ord, ${expr})) + ${salt}) % 3 != 0`);
  if (fnName !== undefined) {
    const name = JSON.stringify(fnName);
    return `${code.replace(/\s+$/, "")}


# scripted-server: a deliberate bug (returns None for some arguments)
def _scripted_bug(f, skip):
    def g(*a, **k):
        r = f(*a, **k)
        return None if ${when("repr(a[skip:])")} else r
    return g
if "Solution" in globals() and hasattr(Solution, ${name}):
    setattr(Solution, ${name}, _scripted_bug(getattr(Solution, ${name}), 1))
elif ${name} in globals():
    globals()[${name}] = _scripted_bug(globals()[${name}], 0)
`;
  }
  return `import sys, io
_scripted_data = sys.stdin.read()
# scripted-server: a deliberate bug (a wrong answer for some inputs)
if ${when("_scripted_data")}:
    print(-1)
    sys.exit(0)
sys.stdin = io.TextIOWrapper(io.BytesIO(_scripted_data.encode()))
${code}`;
}

/**
 * Whether a code answer is deliberately broken. Zero-shot: when a hash of (model, prompt) is even.
 * Code from thoughts gets better with reasoning, so that a search has something to improve (and
 * children can do worse than their parent: ill children for prune and refine): with none of this
 * server's thoughts in the prompt (the root) always broken; with one, unless the hash is 0 mod 4;
 * with two, when it is even; with three or more, when it is 0 mod 4.
 */
export function isBroken(kind: "zero-shot" | "code-from-thoughts", model: string, prompt: string): { broken: boolean; always: boolean; salt: number } {
  const h = hash(model, prompt);
  const salt = h[0]! % 3;
  if (kind === "zero-shot") return { broken: h[31]! % 2 === 0, always: false, salt };
  const thoughts = countThoughts(section(prompt, "Reasoning:", /\n\s*(?:The program|Return only|```)/));
  if (thoughts === 0) return { broken: true, always: false, salt };
  // Deeper reasoning helps more (1 thought: 1 in 4 programs works, 2: 1 in 2, 3 or more: 3 in 4),
  // so a search has reasons to go deeper than one level.
  return { broken: thoughts === 1 ? h[31]! % 4 !== 0 : thoughts === 2 ? h[31]! % 2 === 0 : h[31]! % 4 === 0, always: false, salt };
}

export class ScriptedModel {
  private readonly problems: AppsProblem[];
  constructor(problemsFile: string) {
    this.problems = loadAppsProblems(problemsFile);
  }

  /** The problem whose statement the prompt contains (the longest match). */
  findProblem(prompt: string): AppsProblem | undefined {
    let best: AppsProblem | undefined;
    for (const p of this.problems) {
      const q = p.question.trim();
      if (q !== "" && prompt.includes(q) && (best === undefined || q.length > best.question.trim().length)) best = p;
    }
    return best;
  }

  reply(model: string, prompt: string): { text: string; call: ScriptedCall } {
    const kind = promptKind(prompt);
    const problem = this.findProblem(prompt);
    const pid = problem?.id ?? "?";
    switch (kind) {
      case "expand-thought": {
        const so_far = section(prompt, "Reasoning so far:", /\n\s*Give \d+ different/);
        const depth = countThoughts(so_far);
        if (depth >= 3) return { text: "Thought: <END>", call: { model, kind } };
        const width = Number(/Give (\d+) different/.exec(prompt)?.[1] ?? 3);
        const first = hashInt(pid, String(depth), model);
        const lines = Array.from({ length: Math.max(1, Math.min(width, IDEAS.length)) }, (_, k) => {
          const idea = IDEAS[(first + k) % IDEAS.length]!;
          return `Thought: [${model}] step ${depth + 1}.${k + 1}: ${idea}`;
        });
        return { text: lines.join("\n"), call: { model, kind } };
      }
      case "code-from-thoughts":
      case "zero-shot":
      case "repair":
      case "lats-expand": {
        if (problem?.solution === undefined) {
          return { text: "```python\nprint('scripted-server: problem not found in its problems file')\n```", call: { model, kind } };
        }
        const { broken, always, salt } = isBroken(kind === "repair" || kind === "lats-expand" ? "zero-shot" : kind, model, prompt);
        const code = broken ? breakProgram(problem.solution, problem.fnName, salt, always) : problem.solution;
        return { text: `Here is the program.\n\n\`\`\`python\n${code.replace(/\s+$/, "")}\n\`\`\``, call: { model, kind, problem_id: problem.id, broken } };
      }
      case "rap-subquestion": {
        const depth = countThoughts(section(prompt, "Reasoning so far:", /\n\s*Ask \d+ different/));
        if (depth >= 2) return { text: "Sub-question: <END>", call: { model, kind } };
        const width = Number(/Ask (\d+) different/.exec(prompt)?.[1] ?? 3);
        const first = hashInt(pid, String(depth), model);
        const lines = Array.from({ length: Math.max(1, Math.min(width, IDEAS.length)) }, (_, k) => `Sub-question: [${model}] step ${depth + 1}.${k + 1}: should we ${IDEAS[(first + k) % IDEAS.length]!}?`);
        return { text: lines.join("\n"), call: { model, kind } };
      }
      case "rap-answer":
        return { text: `Answer: [${model}] yes, that keeps the program simple and correct.`, call: { model, kind } };
      case "rap-self-eval":
        return { text: `Rating: ${hashInt(model, prompt) % 11}`, call: { model, kind } };
      case "refine-summary":
        return {
          text: `[${model}] The reasoning overlooks inputs with an even number of tokens, so the program prints a wrong answer there. Drop the special case and apply the general rule to every input.`,
          call: { model, kind, ...(problem ? { problem_id: problem.id } : {}) },
        };
      case "regenerate-thought": {
        const before = section(prompt, "Reasoning before the wrong step:", /\n\s*The wrong step:/);
        const depth = countThoughts(before) + 1;
        const idea = IDEAS[hashInt(pid, String(depth), "r", model) % IDEAS.length]!;
        return { text: `Thought: [${model}] step ${depth}.r: revised: ${idea}, for every input without special cases`, call: { model, kind } };
      }
      case "reflection":
        return { text: `[${model}] The program mishandles inputs with an even number of tokens; remove that branch.`, call: { model, kind } };
      default:
        return { text: `scripted-server (${model}): prompt not recognised; it answers the built-in templates only`, call: { model, kind } };
    }
  }
}

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((p) => (typeof p === "object" && p !== null && typeof (p as Json).text === "string" ? ((p as Json).text as string) : "")).join("");
  return "";
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data) });
  res.end(data);
}

const sendError = (res: http.ServerResponse, status: number, message: string, type = "invalid_request_error") =>
  sendJson(res, status, { error: { message, type, param: null, code: null } });

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** Starts the scripted server on 127.0.0.1. */
export async function startScriptedServer(options: ScriptedServerOptions): Promise<ScriptedServer> {
  const model = new ScriptedModel(options.problems);
  const calls: ScriptedCall[] = [];
  const log = options.log ?? (() => {});
  let seq = 0;

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const route = url.pathname.replace(/\/+$/, "");
    let note = "";
    res.on("finish", () => log(`${req.method} ${req.url} ${res.statusCode}${note}`));
    try {
      if (req.method === "GET" && route === "/stats") {
        const by_kind: Record<string, number> = {};
        for (const c of calls) by_kind[c.kind] = (by_kind[c.kind] ?? 0) + 1;
        return sendJson(res, 200, { requests: calls.length, by_kind });
      }
      if (req.method === "GET" && route === "/v1/models") return sendJson(res, 200, { object: "list", data: [{ id: "scripted", object: "model", created: 0, owned_by: "bdc-scripted-server" }] });
      if (route !== "/v1/chat/completions") return sendError(res, 404, `unknown path ${req.method} ${url.pathname} (this scripted server serves POST /v1/chat/completions, GET /v1/models, GET /stats)`);
      if (req.method !== "POST") return sendError(res, 405, `use POST for ${url.pathname}`);
      let body: Json;
      try {
        body = JSON.parse(await readBody(req)) as Json;
        if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Error("not an object");
      } catch {
        return sendError(res, 400, "the request body is not a JSON object");
      }
      if (typeof body.model !== "string" || body.model === "") return sendError(res, 400, "you must provide a model parameter");
      const messages = Array.isArray(body.messages) ? (body.messages as Json[]) : [];
      if (messages.length === 0) return sendError(res, 400, "messages must be a non-empty array");
      const lastUser = [...messages].reverse().find((m) => m?.role === "user");
      const { text, call } = model.reply(body.model, textOf(lastUser?.content));
      calls.push(call);
      const usage = { prompt_tokens: messages.reduce((n, m) => n + words(textOf(m?.content)), 0), completion_tokens: words(text), total_tokens: 0 };
      usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
      note = ` (model ${body.model}, ${call.kind}${call.problem_id ? ` ${call.problem_id}` : ""}${call.broken ? ", broken" : ""}, ${usage.prompt_tokens}+${usage.completion_tokens} tokens)`;
      const id = `chatcmpl-scripted-${++seq}`;
      const created = Math.floor(Date.now() / 1000);
      if (body.stream !== true) {
        return sendJson(res, 200, {
          id,
          object: "chat.completion",
          created,
          model: body.model,
          choices: [{ index: 0, message: { role: "assistant", content: text, refusal: null }, logprobs: null, finish_reason: "stop" }],
          usage,
          system_fingerprint: "bdc-scripted",
        });
      }
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
      const includeUsage = (body.stream_options as Json | undefined)?.include_usage === true;
      const chunk = (choices: unknown[], extra: Json = includeUsage ? { usage: null } : {}) =>
        res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: body.model, system_fingerprint: "bdc-scripted", choices, ...extra })}\n\n`);
      chunk([{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]);
      for (const piece of text.match(/\s*\S+|\s+/g) ?? []) chunk([{ index: 0, delta: { content: piece }, logprobs: null, finish_reason: null }]);
      chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }]);
      if (includeUsage) chunk([], { usage });
      res.end("data: [DONE]\n\n");
    } catch (e) {
      if (res.headersSent) res.destroy();
      else sendError(res, 500, e instanceof Error ? e.message : String(e), "server_error");
    }
  });

  return { ...(await listenOnLoopback(server, options.port ?? 0)), requests: () => calls.length, calls: () => calls };
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);

if (isMain) {
  const args = process.argv.slice(2);
  const flag = (name: string): string | undefined => {
    const at = args.findIndex((a) => a === name || a.startsWith(`${name}=`));
    if (at < 0) return undefined;
    return args[at]!.includes("=") ? args[at]!.slice(args[at]!.indexOf("=") + 1) : args[at + 1];
  };
  const usage = "usage: pnpm exec tsx plugins/search-mcts/src/dev/scripted-server.ts --problems <apps.jsonl> [--port 8098]";
  const problems = flag("--problems");
  const port = Number(flag("--port") ?? "8098");
  if (args.includes("--help") || problems === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(usage);
    process.exit(args.includes("--help") ? 0 : 2);
  }
  const file = path.resolve(process.env.INIT_CWD ?? process.cwd(), problems);
  if (!fs.existsSync(file)) {
    console.error(`no such file: ${file}\n${usage}`);
    process.exit(2);
  }
  const server = await startScriptedServer({ problems: file, port, log: (line) => console.log(`${new Date().toISOString()} ${line}`) });
  console.log(`Scripted OpenAI-compatible test server on ${server.url}/v1 (baseURL; any model name, no key needed), answering from ${file}. Ctrl-C stops.`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
