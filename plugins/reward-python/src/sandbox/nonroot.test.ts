/**
 * The paths other than "bwrap as root": the non-root bubblewrap path (run in a child node process
 * dropped to `nobody` with setpriv), sandbox "none" (its warning and its function), and the error
 * when bubblewrap is missing.
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, test } from "node:test";
import { DEFAULT_LIMITS } from "../types.ts";
import { checkSandbox, createExecutor, NONE_WARNING } from "./executor.ts";

const REPO = path.resolve(import.meta.dirname, "../../../..");
const EXECUTOR_URL = pathToFileURL(path.join(import.meta.dirname, "executor.ts")).href;
const isRoot = process.getuid?.() === 0;
const setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => fs.existsSync(p));

/** Runs an ESM TypeScript snippet in a fresh node process (tsx), returns its parsed JSON stdout. */
function runScript(source: string, opts: { prefix?: string[]; env?: NodeJS.ProcessEnv } = {}): { json: unknown; stderr: string; status: number | null } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-nonroot-"));
  try {
    fs.chmodSync(dir, 0o755);
    const file = path.join(dir, "script.mts");
    fs.writeFileSync(file, source, { mode: 0o644 });
    const argv = [...(opts.prefix ?? []), process.execPath, "--import", "tsx", file];
    const r = spawnSync(argv[0]!, argv.slice(1), {
      cwd: REPO,
      encoding: "utf8",
      timeout: 60_000,
      env: { PATH: process.env.PATH, HOME: dir, TMPDIR: os.tmpdir(), ...opts.env },
    });
    let json: unknown;
    try {
      json = JSON.parse(r.stdout.trim().split("\n").pop() ?? "");
    } catch {
      json = undefined;
    }
    return { json, stderr: `${r.stderr}${r.error?.message ?? ""}`, status: r.status };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe("non-root bubblewrap path", () => {
  test("as nobody (setpriv): sandboxes run, without setpriv, with a per-sandbox process limit", (t) => {
    if (!isRoot) {
      // Already not root: this process IS the non-root path; run the check in-process instead.
      if (!checkSandbox().ok) return t.skip("not root and bubblewrap unavailable here");
    } else if (setpriv === undefined) {
      return t.skip("setpriv (util-linux) is not installed: cannot drop to nobody to test the non-root path");
    }
    if (isRoot && !checkSandbox().ok) return t.skip("bubblewrap unavailable here");
    const source = `
import { createExecutor } from ${JSON.stringify(EXECUTOR_URL)};
const ex = createExecutor({ sandbox: "bwrap", workers: 2 });
const limits = { timeMs: 1000, memoryMb: 256, outputBytes: 65536, fileSizeBytes: 1 << 20, tmpBytes: 4 << 20, processes: 10, openFiles: 64 };
const echo = await ex.run({ code: "import os\\nprint(input(), os.getuid())", tests: [{ kind: "stdio", input: "hi\\n" }, { kind: "stdio", input: "there\\n" }], limits });
const forks = await ex.run({ code: "import os, time\\nn = 0\\ntry:\\n    for _ in range(500):\\n        if os.fork() == 0:\\n            time.sleep(30)\\n            os._exit(0)\\n        n += 1\\nexcept OSError:\\n    pass\\nprint(n)", tests: [{ kind: "stdio", input: "" }], limits });
const files = await ex.run({ code: "import os\\nfor p in ['/etc/shadow', '/root', '${REPO}']:\\n    print(os.path.exists(p))", tests: [{ kind: "stdio", input: "" }], limits });
const loop = await ex.run({ code: "while True: pass", tests: [{ kind: "stdio", input: "" }], limits });
console.log(JSON.stringify({ uid: process.getuid(), describe: ex.describe(), echo, forks, files, loop }));
await ex.close();
`;
    const r = runScript(source, isRoot ? { prefix: [setpriv!, "--reuid=nobody", "--regid=nogroup", "--clear-groups"] } : {});
    assert.ok(r.json !== undefined, `child failed (status ${r.status}): ${r.stderr}`);
    const out = r.json as {
      uid: number;
      describe: { privileged: boolean; processLimit: string; uids: number[]; caveats: string[] };
      echo: Array<{ status: string; stdout: string }>;
      forks: Array<{ status: string; stdout: string }>;
      files: Array<{ status: string; stdout: string }>;
      loop: Array<{ status: string }>;
    };
    assert.notEqual(out.uid, 0);
    assert.equal(out.describe.privileged, false);
    assert.deepEqual(out.describe.uids, []);
    assert.ok(out.describe.caveats.some((c) => /not root/.test(c)));
    assert.deepEqual(
      out.echo.map((e) => [e.status, e.stdout]),
      [
        ["ok", `hi ${out.uid}\n`],
        ["ok", `there ${out.uid}\n`],
      ],
    );
    assert.equal(out.files[0]!.stdout, "False\nFalse\nFalse\n");
    assert.equal(out.loop[0]!.status, "time_limit");
    if (out.describe.processLimit === "per-sandbox") {
      // RLIMIT_NPROC inside the sandbox's user namespace counts only the sandbox's processes.
      assert.equal(out.forks[0]!.status, "ok");
      assert.ok(Number(out.forks[0]!.stdout) <= 10, `forked ${out.forks[0]!.stdout.trim()} with limits.processes = 10`);
    }
  });
});

describe("sandbox none", () => {
  test("warns through onWarning on every creation and runs the same harness", async () => {
    const warnings: string[] = [];
    const a = createExecutor({ sandbox: "none", workers: 1, onWarning: (m) => warnings.push(m) });
    const b = createExecutor({ sandbox: "none", workers: 1, onWarning: (m) => warnings.push(m) });
    try {
      assert.equal(warnings.length, 2);
      assert.equal(warnings[0], NONE_WARNING);
      assert.match(warnings[0]!, /WITHOUT isolation/);
      assert.equal(a.sandboxed, false);
      assert.ok(a.describe().caveats.includes(NONE_WARNING));
      const rs = await a.run({
        code: "def f(x):\n    return (x, x * 2)\nif __name__ == '__main__':\n    print(sum(map(int, input().split())))\n",
        tests: [
          { kind: "stdio", input: "1 2 3\n" },
          { kind: "call", fnName: "f", args: [4] },
          { kind: "script", code: "assert f(1) == (1, 2)" },
          { kind: "stdio", input: "x\n" },
        ],
        limits: { ...DEFAULT_LIMITS, timeMs: 1000 },
      });
      assert.deepEqual(
        rs.map((r) => r.status),
        ["ok", "ok", "ok", "runtime_error"],
      );
      assert.equal(rs[0]!.stdout, "6\n");
      assert.deepEqual(rs[1]!.returned, [4, 8]);
      const raw = await b.runRaw({ script: "import os\nprint(sorted(os.listdir('.')))", stdin: "", files: { "a.txt": "x" }, limits: DEFAULT_LIMITS });
      assert.equal(raw.stdout, "['_script.py', 'a.txt']\n");
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("the default warning goes to stderr", () => {
    const r = runScript(`
import { createExecutor } from ${JSON.stringify(EXECUTOR_URL)};
await createExecutor({ sandbox: "none" }).close();
console.log(JSON.stringify({ ok: true }));
`);
    assert.deepEqual(r.json, { ok: true });
    assert.match(r.stderr, /WITHOUT isolation/);
  });
});

describe("bubblewrap missing", () => {
  test("createExecutor throws BDC_SANDBOX_MISSING with the install command; checkSandbox says why", () => {
    const r = runScript(
      `
import { checkSandbox, createExecutor } from ${JSON.stringify(EXECUTOR_URL)};
let error;
try { createExecutor({ sandbox: "bwrap" }); } catch (e) { error = { code: e.code, message: e.message, hint: e.hint, name: e.name }; }
console.log(JSON.stringify({ check: checkSandbox(), error }));
`,
      { env: { BDC_BWRAP: "/nonexistent/bwrap" } },
    );
    const out = r.json as { check: { ok: boolean; message: string; hint: string }; error: { code: string; message: string; hint: string; name: string } };
    assert.ok(out !== undefined, r.stderr);
    assert.equal(out.check.ok, false);
    assert.match(out.check.message, /bwrap/);
    assert.equal(out.error.name, "BdcError");
    assert.equal(out.error.code, "BDC_SANDBOX_MISSING");
    assert.match(out.error.hint, /sudo apt-get install -y bubblewrap/);
  });
});
