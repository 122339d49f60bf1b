/**
 * End-to-end cases: each folder here with a case.yaml runs one `bdc` command in that folder
 * and compares its output with the files beside it.
 *
 *   case.yaml        args: [validate, workflow.yaml, --set, ...]   exit: 2   env: {K: V}
 *   expected.stdout  exact standard output (optional)
 *   expected.stderr  exact standard error (optional; one of the two must exist)
 *
 * `{tmp}` in args is a fresh temporary directory; in outputs it is written back as `{tmp}`, and
 * the repository's absolute path as `<repo>`.
 * After a deliberate change of messages, `BDC_UPDATE_CASES=1 pnpm test` rewrites the expected
 * files of failing cases; review the diff before committing it.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import { cli } from "@bdc/core";

interface CaseSpec {
  args: string[];
  exit: number;
  env?: Record<string, string>;
}

const here = import.meta.dirname;
const cases = fs
  .readdirSync(here, { withFileTypes: true })
  .filter((d) => d.isDirectory() && fs.existsSync(path.join(here, d.name, "case.yaml")))
  .map((d) => d.name)
  .sort();

test("there are end-to-end cases", () => assert.ok(cases.length > 0));

for (const name of cases) {
  test(name, async () => {
    const dir = path.join(here, name);
    const spec = parse(fs.readFileSync(path.join(dir, "case.yaml"), "utf8")) as CaseSpec;
    const read = (f: string) => (fs.existsSync(path.join(dir, f)) ? fs.readFileSync(path.join(dir, f), "utf8") : undefined);
    const expectedOut = read("expected.stdout");
    const expectedErr = read("expected.stderr");
    assert.ok(expectedOut !== undefined || expectedErr !== undefined, `${name}: add expected.stdout or expected.stderr`);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `bdc-case-${name}-`));
    try {
      let out = "";
      let err = "";
      const code = await cli(
        spec.args.map((a) => a.replaceAll("{tmp}", tmp)),
        {
          out: (t) => void (out += t),
          err: (t) => void (err += t),
          cwd: dir,
          env: { PATH: process.env.PATH, ...spec.env },
          isTTY: false,
        },
      );
      const repo = path.resolve(here, "../..");
      const clean = (s: string) => s.replaceAll(tmp, "{tmp}").replaceAll(repo, "<repo>").replace(/\d+(\.\d+)?(ms|s)\b/g, "<time>").replace(/[\d.]+\/s/g, "<rate>/s");
      if (process.env.BDC_UPDATE_CASES === "1") {
        if (expectedErr !== undefined) fs.writeFileSync(path.join(dir, "expected.stderr"), clean(err));
        if (expectedOut !== undefined) fs.writeFileSync(path.join(dir, "expected.stdout"), clean(out));
        if (code !== spec.exit) fs.writeFileSync(path.join(dir, "case.yaml"), fs.readFileSync(path.join(dir, "case.yaml"), "utf8").replace(/^exit: .*$/m, `exit: ${code}`));
        return;
      }
      if (expectedErr !== undefined) assert.equal(clean(err), expectedErr, `${name}: stderr`);
      if (expectedOut !== undefined) assert.equal(clean(out), expectedOut, `${name}: stdout`);
      assert.equal(code, spec.exit, `${name}: exit code (stderr: ${err})`);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
}
