/** How errors reach the terminal: the same environment problem at several places is printed once. */
import * as assert from "node:assert/strict";
import { test } from "node:test";
import { BdcError } from "../errors.ts";
import { printErrors } from "./output.ts";

const io = () => {
  let err = "";
  return { io: { out: () => {}, err: (t: string) => void (err += t), cwd: "/", env: {}, isTTY: false }, text: () => err };
};

test("one problem at two places (two agents without model access) is printed once, the other place under it; config errors each on their own", () => {
  const noAccess = (instance: string, line: number) =>
    new BdcError({ code: "BDC_NO_MODEL_ACCESS", message: "no model access: set OPENAI_API_KEY", hint: "see the README", plugin: "policy/auto", path: ["plugins", instance, "with"], origin: { kind: "file", file: "wf.yaml", line, col: 3 } });
  const missing = (instance: string) => new BdcError({ code: "BDC_CONFIG_MISSING_KEY", message: 'missing required key "model"', path: ["plugins", instance, "with", "model"] });
  const out = io();
  printErrors(out.io, [noAccess("agent1", 4), noAccess("agent2", 5), missing("a"), missing("b")]);
  assert.equal(
    out.text(),
    "wf.yaml:4:3 plugins.agent1.with  no model access: set OPENAI_API_KEY  [BDC_NO_MODEL_ACCESS]\n" +
      "  also at: wf.yaml:5:3 plugins.agent2.with\n" +
      "  plugin: policy/auto\n" +
      "  hint: see the README\n" +
      'plugins.a.with.model  missing required key "model"  [BDC_CONFIG_MISSING_KEY]\n' +
      'plugins.b.with.model  missing required key "model"  [BDC_CONFIG_MISSING_KEY]\n' +
      "3 problems\n",
  );
});

test("one environment problem in several plugins (a GPU that is not there) is printed once; the other places name their plugin", () => {
  const noGpu = (instance: string, plugin: string, line: number) =>
    new BdcError({ code: "BDC_DEVICE_UNAVAILABLE", message: "device: webgpu, but no adapter", hint: "install libvulkan1", plugin, path: ["plugins", instance, "with", "device"], origin: { kind: "file", file: "gpu.yaml", line, col: 30 } });
  const out = io();
  printErrors(out.io, [noGpu("encoder", "encoder/local", 12), noGpu("student", "policy/local", 15), noGpu("other", "encoder/local", 16)]);
  assert.equal(
    out.text(),
    "gpu.yaml:12:30 plugins.encoder.with.device  device: webgpu, but no adapter  [BDC_DEVICE_UNAVAILABLE]\n" +
      "  also at: gpu.yaml:15:30 plugins.student.with.device (policy/local)\n" +
      "  also at: gpu.yaml:16:30 plugins.other.with.device\n" +
      "  plugin: encoder/local\n" +
      "  hint: install libvulkan1\n",
  );
});
