/**
 * Training checkpoints that survive `kill -9` and a full disk. A checkpoint is a folder
 * `checkpoint-<step>/` (Hugging Face Trainer's name) holding the adapter as a PEFT folder, the
 * optimizer's moments (`optimizer.safetensors`) and `trainer_state.json` (step, data cursor, the
 * seed of the counter-based random streams, the arguments' hash). It is written under a
 * temporary name, every file flushed to disk, and renamed into place: a `checkpoint-<step>` folder
 * is complete or absent. The newest `keep` checkpoints are kept; an older one is deleted only
 * after a newer one is in place, so a failed write always leaves the previous checkpoint intact.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BdcError } from "@bdc/core";
import type { ModelConfig } from "../checkpoint/config.ts";
import { openSafetensorsFile, safetensorsBytes } from "../checkpoint/safetensors.ts";
import { syncDir, writeSynced } from "../durable-files.ts";
import type { LoraAdapter } from "../lora/adapter.ts";
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, peftConfigJson, peftTensors, readPeftAdapter } from "../lora/peft.ts";
import type { MomentState } from "./optimizer.ts";
import type { Device } from "@bdc/onnx-graph";

/** How files reach the disk; tests swap it for one whose disk fills up. */
export interface CheckpointIo {
  /** Writes the whole file and flushes it to the device (throws on any failure, e.g. ENOSPC). */
  writeFile(file: string, data: Uint8Array | string): void;
}

export const diskIo: CheckpointIo = { writeFile: writeSynced };

export interface TrainerState {
  readonly global_step: number;
  readonly total_steps: number;
  readonly epoch: number;
  /** sha256 of the arguments that decide the result (training_args.json). */
  readonly args_hash: string;
  /** CPU threads of the run: results are bit-identical across a resume with the same count. */
  readonly threads: number;
  /** Where the steps ran (absent in checkpoints written before devices: cpu). */
  readonly device?: Device | undefined;
  /** Every random draw is a pure function of this seed and the step, epoch, micro-batch and slot indices. */
  readonly rng: { readonly seed: number; readonly scheme: string };
  readonly optimizer_step: number;
  readonly best_eval_loss?: number | undefined;
  readonly best_step?: number | undefined;
}

export const STATE_FILE = "trainer_state.json";
export const OPTIMIZER_FILE = "optimizer.safetensors";
const PREFIX = "checkpoint-";

export interface LoadedCheckpoint {
  readonly dir: string;
  readonly adapter: LoraAdapter;
  readonly moments: Map<string, MomentState>;
  readonly state: TrainerState;
}

export class CheckpointStore {
  constructor(
    readonly dir: string,
    private readonly io: CheckpointIo = diskIo,
    private readonly keep = 2,
  ) {}

  /** Complete checkpoints, oldest first. */
  list(): Array<{ step: number; dir: string }> {
    if (!fs.existsSync(this.dir)) return [];
    return fs
      .readdirSync(this.dir)
      .filter((n) => n.startsWith(PREFIX) && /^\d+$/.test(n.slice(PREFIX.length)) && fs.existsSync(path.join(this.dir, n, STATE_FILE)))
      .map((n) => ({ step: Number(n.slice(PREFIX.length)), dir: path.join(this.dir, n) }))
      .sort((a, b) => a.step - b.step);
  }

  latest(): { step: number; dir: string } | undefined {
    return this.list().at(-1);
  }

  /** Leftovers of writes that were interrupted (never complete checkpoints). */
  removeTemporary(): void {
    if (!fs.existsSync(this.dir)) return;
    for (const n of fs.readdirSync(this.dir)) if (n.startsWith(`.${PREFIX}`)) fs.rmSync(path.join(this.dir, n), { recursive: true, force: true });
  }

  save(step: number, adapter: LoraAdapter, model: ModelConfig, moments: ReadonlyMap<string, MomentState>, state: TrainerState): string {
    return this.saveFiles(step, [
      [ADAPTER_WEIGHTS, safetensorsBytes(peftTensors(adapter, model))],
      [ADAPTER_CONFIG, `${JSON.stringify(peftConfigJson(adapter.config, model.numLayers), null, 2)}\n`],
      [OPTIMIZER_FILE, momentsBytes(moments)],
      [STATE_FILE, `${JSON.stringify(state, null, 2)}\n`],
    ]);
  }

  /** Writes `checkpoint-<step>/` atomically from named files; the last file must be the state file (it marks the folder complete). */
  saveFiles(step: number, files: ReadonlyArray<readonly [string, Uint8Array | string]>): string {
    if (files.at(-1)?.[0] !== STATE_FILE) throw new Error(`saveFiles: the last file must be ${STATE_FILE}`);
    const final = path.join(this.dir, `${PREFIX}${step}`);
    const tmp = path.join(this.dir, `.${PREFIX}${step}.${process.pid}.tmp`);
    try {
      fs.rmSync(tmp, { recursive: true, force: true });
      fs.mkdirSync(tmp, { recursive: true });
      for (const [name, data] of files) this.io.writeFile(path.join(tmp, name), data);
      fs.rmSync(final, { recursive: true, force: true });
      fs.renameSync(tmp, final);
      syncDir(this.dir);
    } catch (cause) {
      fs.rmSync(tmp, { recursive: true, force: true });
      const previous = this.list().filter((c) => c.step !== step).at(-1);
      const code = (cause as NodeJS.ErrnoException).code;
      throw new BdcError({
        code: "BDC_TRAIN_CHECKPOINT",
        message: `could not write checkpoint-${step} in ${this.dir}: ${code === "ENOSPC" ? "no space left on device (ENOSPC)" : (cause as Error).message}; ${previous === undefined ? "no earlier checkpoint exists" : `checkpoint-${previous.step} (step ${previous.step}) is intact`}`,
        hint: `${code === "ENOSPC" ? "free disk space, then " : ""}run the same command again: training resumes from the last complete checkpoint`,
        cause,
      });
    }
    for (const old of this.list().slice(0, -this.keep)) {
      // Renamed away first (atomic), then deleted: a kill during the deletion leaves a temporary
      // folder that the next run removes, never a half-deleted checkpoint-<step>.
      const doomed = path.join(this.dir, `.${path.basename(old.dir)}.${process.pid}.old`);
      fs.renameSync(old.dir, doomed);
      fs.rmSync(doomed, { recursive: true, force: true });
    }
    return final;
  }

  load(dir: string, model: ModelConfig): LoadedCheckpoint {
    return { dir, adapter: readPeftAdapter(dir, model), moments: readMoments(dir), state: readState(dir) };
  }
}

export const readState = (dir: string): TrainerState => JSON.parse(fs.readFileSync(path.join(dir, STATE_FILE), "utf8")) as TrainerState;

/** The optimizer moments as one safetensors file (exp_avg/<param>, exp_avg_sq/<param>, torch's names). */
export function momentsBytes(moments: ReadonlyMap<string, MomentState>): Uint8Array {
  return safetensorsBytes(
    [...moments].flatMap(([name, s]) => [
      { name: `exp_avg/${name}`, dtype: "F32" as const, shape: [s.m.length], data: s.m },
      { name: `exp_avg_sq/${name}`, dtype: "F32" as const, shape: [s.v.length], data: s.v },
    ]),
  );
}

export function readMoments(dir: string): Map<string, MomentState> {
  const file = openSafetensorsFile(path.join(dir, OPTIMIZER_FILE));
  const moments = new Map<string, MomentState>();
  try {
    for (const name of file.names()) {
      const [kind, param] = [name.slice(0, name.indexOf("/")), name.slice(name.indexOf("/") + 1)];
      const entry = moments.get(param) ?? { m: new Float32Array(0), v: new Float32Array(0) };
      moments.set(param, kind === "exp_avg" ? { ...entry, m: file.readFloat32(name) } : { ...entry, v: file.readFloat32(name) });
    }
  } finally {
    file.close();
  }
  return moments;
}
