/**
 * The identity of a training run: the arguments that decide its result, hashed, and kept in the
 * output folder, so that a rerun with the same arguments resumes (or finds the work done) and one
 * with other arguments is refused, naming what differs. Shared by every trainer (LoRA, hypernetwork).
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { BdcError } from "@bdc/core";
import { deviceInstallHint, deviceUnavailableReason, type Device } from "@bdc/onnx-graph";
import { filesKey } from "../model/compiled-cache.ts";

export function sha256File(file: string): string {
  return crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

/** The inputs every trainer's result depends on: the base checkpoint's files and the data files, by path and content. */
export function trainingInputs(model: string, data: string, evalData: string | undefined): Record<string, unknown> {
  return {
    model: path.resolve(model),
    model_files: filesKey(model, (f) => f === "config.json" || f.endsWith(".safetensors") || f.endsWith(".safetensors.index.json") || f.startsWith("tokenizer")),
    data: path.resolve(data),
    data_sha256: sha256File(data),
    eval_data: evalData === undefined ? null : path.resolve(evalData),
    eval_data_sha256: evalData === undefined ? null : sha256File(evalData),
  };
}

/** Where a run's steps execute. Not part of its identity: a run may resume elsewhere, which the log says. */
export interface RunPlacement {
  readonly device: Device;
  readonly deviceId: number;
  readonly threads: number;
}

/** Refuses a device that is not there before any work (building an 8B training graph takes minutes). */
export async function checkDevice(placement: RunPlacement, fail: (message: string, hint: string, code: string) => Error): Promise<void> {
  const reason = await deviceUnavailableReason(placement.device, placement.deviceId);
  if (reason !== undefined) throw fail(`device: ${placement.device}, but ${reason}`, deviceInstallHint(placement.device), "BDC_DEVICE_UNAVAILABLE");
}

/** The warning for a run resumed with other threads or on another device: it continues, but not bit for bit. */
export function placementChange(before: { readonly threads: number; readonly device?: Device | undefined }, now: RunPlacement): string | undefined {
  const was = `${before.device ?? "cpu"}${(before.device ?? "cpu") === "cpu" ? ` with ${before.threads} threads` : ""}`;
  const is = `${now.device}${now.device === "cpu" ? ` with ${now.threads} threads` : ""}`;
  if (was === is) return undefined;
  return `warning: the run started on ${was} and resumes on ${is}: results will differ from an uninterrupted run by float32 rounding, not bit for bit`;
}

export function hashArgs(args: Record<string, unknown>): string {
  return crypto.createHash("sha256").update(JSON.stringify(args)).digest("hex").slice(0, 16);
}

/** Refuses to continue an output folder whose args file (`{result: {...}}`) another set of arguments wrote. */
export function checkSameRun(argsFile: string, args: Record<string, unknown>): void {
  if (!fs.existsSync(argsFile)) return;
  const before = (JSON.parse(fs.readFileSync(argsFile, "utf8")) as { result?: Record<string, unknown> }).result ?? {};
  const differ = Object.keys({ ...before, ...args }).filter((k) => JSON.stringify(before[k]) !== JSON.stringify(args[k]));
  if (differ.length === 0) return;
  // A content key (data_sha256, model_files, ...) is named only when its path did not change too.
  const base = (k: string) => k.replace(/_(sha256|files)$/, "");
  const described = differ
    .filter((k) => base(k) === k || !differ.includes(base(k)))
    .map((k) => (base(k) === k ? `${k} was ${JSON.stringify(before[k])}, now ${JSON.stringify(args[k])}` : `the contents of ${base(k)} changed`));
  throw new BdcError({
    code: "BDC_RESUME_MISMATCH",
    message: `${path.dirname(argsFile)} holds a training run with other arguments: ${described.join("; ")}`,
    hint: "run with the same arguments to resume it, or choose another --out (or --overwrite to start over there)",
  });
}
