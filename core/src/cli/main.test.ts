import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { main } from "./main.ts";
import type { Io } from "./output.ts";

const project = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-cli-"));
after(() => fs.rmSync(project, { recursive: true, force: true }));
fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "p", bdc: { commands: { hello: "./hello.ts", broken: "./broken.ts" } } }));
fs.writeFileSync(
  path.join(project, "hello.ts"),
  `export default {
  spec: { name: "hello", summary: "Say hello.", usage: "bdc hello <name>", minPositionals: 1, maxPositionals: 1, flags: { loud: { type: "boolean", description: "shout" } } },
  run: async (io, args) => { io.out((args.flags.loud ? "HELLO " : "hello ") + args.positionals[0] + "\\n"); return 0; },
};\n`,
);
fs.writeFileSync(path.join(project, "broken.ts"), `throw new Error("kaput");\n`);

async function bdc(...argv: string[]) {
  let out = "";
  let err = "";
  const io: Io = { out: (t) => void (out += t), err: (t) => void (err += t), cwd: project, env: {}, isTTY: false };
  const code = await main(argv, io);
  return { code, out, err };
}

test("packages contribute commands through bdc.commands; help lists them", async () => {
  assert.deepEqual(await bdc("hello", "world", "--loud"), { code: 0, out: "HELLO world\n", err: "" });
  const help = await bdc("--help");
  assert.match(help.out, /\n {2}hello +Say hello\.\n/);
  assert.match(help.out, /\n {2}broken +\(failed to load from \(project\)\)\n/);
  assert.match((await bdc("hello", "--help")).out, /Usage: bdc hello <name>[\s\S]*--loud\s+shout/);
});

test("a command that fails to import is reported, not fatal to the others", async () => {
  const r = await bdc("broken");
  assert.equal(r.code, 2);
  assert.match(r.err, /^command "broken" from \(project\) failed to load: kaput {2}\[BDC_PLUGIN_LOAD\]\n/);
});

test("usage errors exit 2 with a suggestion", async () => {
  const r = await bdc("helo");
  assert.equal(r.code, 2);
  assert.equal(r.err, 'unknown command "helo"  [BDC_USAGE]\n  hint: did you mean "hello"? commands: broken, describe, hello, plugins, report, run, schema, validate\n');
  const bare = await bdc();
  assert.equal(bare.code, 2);
  assert.match(bare.err, /^bdc - Boost, Disentangle, and Customize/);
  const flag = await bdc("hello", "x", "--lod");
  assert.equal(flag.code, 2);
  assert.match(flag.err, /unknown option '--lod'.*\[BDC_USAGE\]\n {2}hint: did you mean --loud\?/);
});

test("bdc run --yes / -y tells preflight checks (assumeYes, the workflow, a progress writer); validate never does", async () => {
  // A step whose preflight reports what it was told, and writes progress when told yes.
  fs.writeFileSync(
    path.join(project, "told.ts"),
    `export default {
  id: "step/told", version: "1.0.0", description: "reports its preflight context",
  preflight: (_config, ctx) => {
    if (ctx.assumeYes) ctx.progress?.write("doing it\\n");
    return [{ code: "BDC_TOLD", message: "assumeYes=" + ctx.assumeYes + " workflow=" + ctx.workflow + " progress=" + (ctx.progress !== undefined) }];
  },
  make: () => ({ run: () => null }),
};\n`,
  );
  fs.mkdirSync(path.join(project, "wf"), { recursive: true });
  fs.writeFileSync(path.join(project, "wf", "told.yaml"), "plugins:\n  told: { use: ../told.ts }\nsteps:\n  told: {}\n");
  const told = (r: { err: string }) => /BDC_TOLD/.test(r.err) ? /assumeYes=\S+ workflow=\S+ progress=\S+/.exec(r.err)![0] : r.err;
  const run = await bdc("run", "wf/told.yaml", "--yes");
  assert.equal(run.code, 2);
  assert.equal(told(run), "assumeYes=true workflow=wf/told.yaml progress=true");
  assert.match(run.err, /^doing it\n/);
  assert.equal(told(await bdc("run", "wf/told.yaml", "-y", "-q")), "assumeYes=true workflow=wf/told.yaml progress=false");
  assert.equal(told(await bdc("run", "wf/told.yaml")), "assumeYes=false workflow=wf/told.yaml progress=true");
  assert.equal(told(await bdc("validate", "wf/told.yaml")), "assumeYes=false workflow=wf/told.yaml progress=true");
  assert.match((await bdc("run", "--help")).out, /-y, --yes +answer yes to what plugins offer to do before the run \(e\.g\. download a model\)/);
});
