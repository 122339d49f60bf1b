/**
 * The dev echo server speaks the Chat Completions protocol, and `bdc ask` works end to end
 * through policy/openai against it: offline, without a key, with the cache.
 */
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { cli, type Io } from "@bdc/core";
import { testPlugin } from "@bdc/core/testing";
import { policyContract } from "@bdc/policy/testing";
import plugin from "./openai-plugin.ts";
import { startEchoServer, type EchoServer } from "./dev/echo-server.ts";

const here = import.meta.dirname;
const pluginFile = path.join(here, "openai-plugin.ts");
const askCommand = path.resolve(here, "..", "..", "policy", "src", "ask-command.ts");
const echoScript = path.join(here, "dev", "echo-server.ts");

const server: EchoServer = await startEchoServer();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-openai-echo-"));
after(async () => {
  await server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

// The policy slot's contract, on the echo server.
testPlugin(plugin, { contract: { config: { model: "echo", baseURL: `${server.url}/v1`, cache_dir: path.join(tmp, "contract-cache") }, slot: policyContract } });

const post = (body: unknown) => fetch(`${server.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

describe("dev echo server", () => {
  test("a completion echoes the last user message, with usage", async () => {
    const res = await post({ model: "echo", messages: [{ role: "system", content: "be brief" }, { role: "user", content: "hello there" }] });
    assert.equal(res.status, 200);
    const body = (await res.json()) as Record<string, any>;
    assert.equal(body.object, "chat.completion");
    assert.equal(body.model, "echo");
    assert.equal(typeof body.id, "string");
    assert.equal(typeof body.created, "number");
    assert.deepEqual(body.choices[0].message, { role: "assistant", content: "echo: hello there", refusal: null });
    assert.equal(body.choices[0].finish_reason, "stop");
    assert.deepEqual(body.usage, { prompt_tokens: 4, completion_tokens: 3, total_tokens: 7 });
  });

  test("max_tokens truncates (finish_reason length); stop cuts", async () => {
    const long = (await (await post({ model: "echo", max_tokens: 2, messages: [{ role: "user", content: "a b c d" }] })).json()) as Record<string, any>;
    assert.equal(long.choices[0].message.content, "echo: a");
    assert.equal(long.choices[0].finish_reason, "length");
    const stopped = (await (await post({ model: "echo", stop: [" c"], messages: [{ role: "user", content: "a b c d" }] })).json()) as Record<string, any>;
    assert.equal(stopped.choices[0].message.content, "echo: a b");
  });

  test("SSE streaming: chunks, a usage chunk, data: [DONE]", async () => {
    const res = await post({ model: "echo", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "x y" }] });
    assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
    const lines = (await res.text()).split("\n\n").filter((l) => l !== "");
    assert.ok(lines.every((l) => l.startsWith("data: ")));
    assert.equal(lines.at(-1), "data: [DONE]");
    const chunks = lines.slice(0, -1).map((l) => JSON.parse(l.slice(6)) as Record<string, any>);
    assert.ok(chunks.every((c) => c.object === "chat.completion.chunk" && c.model === "echo"));
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? "").join(""), "echo: x y");
    assert.equal(chunks.at(-2)!.choices[0].finish_reason, "stop");
    assert.deepEqual(chunks.at(-1)!.choices, []);
    assert.deepEqual(chunks.at(-1)!.usage, { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 });
  });

  test("errors in OpenAI's format; GET /stats counts completion requests", async () => {
    const before = server.requests();
    const bad = await post({ messages: [] });
    assert.equal(bad.status, 400);
    const err = (await bad.json()) as { error: Record<string, unknown> };
    assert.equal(err.error.type, "invalid_request_error");
    assert.equal(typeof err.error.message, "string");
    const missing = await fetch(`${server.url}/v2/nothing`);
    assert.equal(missing.status, 404);
    assert.ok(((await missing.json()) as { error?: unknown }).error !== undefined);
    const stats = (await (await fetch(`${server.url}/stats`)).json()) as { requests: number };
    assert.equal(stats.requests, before + 1);
    assert.equal(server.requests(), before + 1);
  });

  test("runs as a script: --port, a line per request on stdout", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", echoScript, "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
    try {
      let out = "";
      child.stdout.setEncoding("utf8");
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no URL printed: ${out}`)), 10_000);
        child.stdout.on("data", (d: string) => {
          out += d;
          const m = /(http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(out);
          if (m !== null) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
        child.once("exit", (code) => reject(new Error(`exited with ${code}: ${out}`)));
      });
      const res = await fetch(`${url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: "echo", messages: [{ role: "user", content: "hi" }] }) });
      assert.equal(((await res.json()) as Record<string, any>).choices[0].message.content, "echo: hi");
      await new Promise((r) => setTimeout(r, 50));
      assert.match(out, /POST \/v1\/chat\/completions 200/);
    } finally {
      child.kill("SIGTERM");
    }
  });
});

describe("bdc ask through policy/openai against the echo server", () => {
  test("the reply, then the same ask from the cache without a request", async () => {
    // A project of its own that contributes `ask` (from @bdc/policy): the test does not depend
    // on which packages the repository's root package.json registers.
    const project = path.join(tmp, "project");
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "ask-e2e", private: true, bdc: { commands: { ask: askCommand } } }));
    const wf = path.join(project, "ask.yaml");
    fs.writeFileSync(
      wf,
      [
        "name: ask-e2e",
        "plugins:",
        "  local:",
        `    use: ${JSON.stringify(pluginFile)}`,
        `    with: { model: echo, baseURL: ${JSON.stringify(`${server.url}/v1`)}, cache_dir: ./cache }`,
        "",
      ].join("\n"),
    );
    const run = async (...args: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      // No API key in the environment: a local baseURL needs none.
      const io: Io = { out: (t) => out.push(t), err: (t) => err.push(t), cwd: project, env: { PATH: process.env.PATH }, isTTY: false };
      const code = await cli(["ask", wf, "local", ...args], io);
      const stdout = out.join("");
      assert.equal(code, 0, `exit ${code}\nstdout: ${stdout}\nstderr: ${err.join("")}`);
      return { last: JSON.parse(stdout.trim().split("\n").at(-1)!) as Record<string, unknown>, stdout, stderr: err.join("") };
    };

    const exampleOut: string[] = [];
    const n0 = server.requests();
    const first = await run("hello", "--json");
    assert.equal(first.stdout.split("\n")[0], "echo: hello");
    assert.deepEqual(Object.keys(first.last).sort(), ["cached", "input_tokens", "latency_ms", "output_tokens", "text"]);
    assert.equal(first.last.text, "echo: hello");
    assert.equal(first.last.input_tokens, 1);
    assert.equal(first.last.output_tokens, 2);
    assert.equal(first.last.cached, false);
    assert.equal(typeof first.last.latency_ms, "number");
    assert.equal(server.requests(), n0 + 1);
    assert.ok(fs.existsSync(path.join(project, "cache")), "cache_dir resolved from the workflow's folder");

    const second = await run("hello", "--json");
    assert.equal(second.last.cached, true);
    assert.equal(second.last.text, "echo: hello");
    assert.equal(server.requests(), n0 + 1);

    const streamed = await run("stream me", "--json", "--set", "plugins.local.with.stream=true");
    assert.equal(streamed.last.text, "echo: stream me");
    assert.equal(streamed.last.output_tokens, 3);
    assert.equal(server.requests(), n0 + 2);

    // The config the README's snippet uses (configs/models/local-echo.yaml).
    const example = await cli(
      [
        "ask",
        path.resolve(here, "..", "..", "..", "configs", "models", "local-echo.yaml"),
        "local",
        "from the example",
        "--json",
        "--set",
        `plugins.local.use=${JSON.stringify(pluginFile)}`,
        "--set",
        `plugins.local.with.baseURL=${server.url}/v1`,
        "--set",
        `plugins.local.with.cache_dir=${JSON.stringify(path.join(tmp, "example-cache"))}`,
      ],
      { out: (t) => exampleOut.push(t), err: () => {}, cwd: project, env: {}, isTTY: false },
    );
    assert.equal(example, 0);
    assert.equal((JSON.parse(exampleOut.join("").trim().split("\n").at(-1)!) as { text: string }).text, "echo: from the example");
  });
});
