/**
 * Reading the JSON files of a Hugging Face checkpoint directory, with errors that name the file
 * and say how to get a checkpoint. Every loader of this folder goes through here so that a
 * missing or broken file reads the same whichever part found it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BdcError } from "@bdc/core";

/** What to do about a checkpoint directory that lacks a file. */
export const GET_A_CHECKPOINT_HINT =
  "download a checkpoint with `pnpm bdc models pull <repo>` (a Hugging Face repo id), or write a random tiny one for tests with `pnpm bdc models make-tiny --out DIR`";

export function fileMissing(file: string, what: string, hint: string = GET_A_CHECKPOINT_HINT): BdcError {
  return new BdcError({ code: "BDC_MODEL_FILE_MISSING", message: `${file}: not found (${what})`, hint });
}

export function fileInvalid(file: string, message: string, hint?: string): BdcError {
  return new BdcError({
    code: "BDC_MODEL_FILE_INVALID",
    message: `${file}: ${message}`,
    hint: hint ?? "the file is damaged or was not written by Hugging Face tooling; download the checkpoint again",
  });
}

/** A JSON object file; `undefined` when absent and `optional`, else BDC_MODEL_FILE_MISSING. */
export function readJsonObject(file: string, what: string, optional: true): Record<string, unknown> | undefined;
export function readJsonObject(file: string, what: string, optional?: false): Record<string, unknown>;
export function readJsonObject(file: string, what: string, optional = false): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") {
      if (optional) return undefined;
      throw fileMissing(file, what);
    }
    throw fileInvalid(file, `cannot be read: ${(e as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw fileInvalid(file, `is not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(value)) throw fileInvalid(file, "is not a JSON object");
  return value;
}

export function isObject(u: unknown): u is Record<string, unknown> {
  return typeof u === "object" && u !== null && !Array.isArray(u);
}

export function writeJson(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(value, null, 2) + "\n");
}
