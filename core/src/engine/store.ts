/**
 * The run directory:
 *
 *   resolved.yaml            the workflow after extends, overlays, --set and defaults
 *   plugins.json             instance -> plugin id@version and where it came from
 *   invocation.json          workflow file, overlays and --set values (replayed by --resume)
 *   events.jsonl             append-only log, one JSON event per line, written as it happens
 *   steps/<step>/outputs.jsonl   one line per finished item: {"id", "output"}
 *   steps/<step>/...         artifacts a step writes (linked from the report)
 *   summary.json, report.html
 *
 * Each event and output line is written with a single write(2) on an O_APPEND descriptor, so a
 * finished item is in the kernel's page cache before the engine moves on: killing the process
 * at any moment loses no finished item. A line torn by a crash mid-write (power loss, full
 * disk) is cut off when the run is reopened.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BdcError } from "../errors.ts";
import type { StepResult } from "../plugin.ts";

export const RUN_FILES = {
  resolved: "resolved.yaml",
  plugins: "plugins.json",
  invocation: "invocation.json",
  events: "events.jsonl",
  summary: "summary.json",
  report: "report.html",
  lock: "run.lock",
  outputs: "outputs.jsonl",
} as const;

export class RunStore {
  private readonly eventsFd: number;
  private readonly outputFds = new Map<string, number>();
  private locked = false;

  private constructor(readonly dir: string) {
    this.eventsFd = openForAppend(path.join(dir, RUN_FILES.events));
  }

  /** A new run directory (it may exist only if empty). */
  static create(dir: string, files: { resolvedYaml: string; plugins: unknown; invocation?: unknown }): RunStore {
    if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) {
      throw new BdcError({
        code: "BDC_RUN_DIR",
        message: `run directory ${dir} already exists and is not empty`,
        hint: `continue that run with --resume ${dir}, or choose another --out`,
      });
    }
    fs.mkdirSync(dir, { recursive: true });
    writeFileAtomic(path.join(dir, RUN_FILES.resolved), files.resolvedYaml);
    writeFileAtomic(path.join(dir, RUN_FILES.plugins), `${JSON.stringify(files.plugins, null, 2)}\n`);
    if (files.invocation !== undefined) writeFileAtomic(path.join(dir, RUN_FILES.invocation), `${JSON.stringify(files.invocation, null, 2)}\n`);
    const store = new RunStore(dir);
    store.lock();
    return store;
  }

  /** An existing run directory, to resume it. */
  static open(dir: string): RunStore {
    if (!fs.existsSync(path.join(dir, RUN_FILES.resolved))) {
      throw new BdcError({
        code: "BDC_RUN_DIR",
        message: fs.existsSync(dir) ? `${dir} is not a run directory (no ${RUN_FILES.resolved})` : `run directory ${dir} does not exist`,
        hint: "pass the directory a previous `bdc run` printed (runs/<workflow>-<time> by default)",
      });
    }
    const store = new RunStore(dir);
    store.lock();
    return store;
  }

  static resolvedYaml(dir: string): string {
    return fs.readFileSync(path.join(dir, RUN_FILES.resolved), "utf8");
  }

  /** One process per run directory: a second `--resume` while a run is live would interleave. */
  private lock(): void {
    const file = path.join(this.dir, RUN_FILES.lock);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        fs.writeFileSync(file, `${process.pid}\n`, { flag: "wx" });
        this.locked = true;
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        const pid = Number(fs.readFileSync(file, "utf8").trim());
        if (Number.isInteger(pid) && pid !== process.pid && isAlive(pid)) {
          throw new BdcError({
            code: "BDC_RUN_DIR",
            message: `run directory ${this.dir} is in use by a live bdc process (pid ${pid})`,
            hint: `wait for it, or stop it (kill ${pid}) and resume`,
          });
        }
        fs.rmSync(file, { force: true }); // left behind by a killed run
      }
    }
  }

  close(): void {
    for (const fd of this.outputFds.values()) fs.closeSync(fd);
    this.outputFds.clear();
    fs.closeSync(this.eventsFd);
    if (this.locked) fs.rmSync(path.join(this.dir, RUN_FILES.lock), { force: true });
    this.locked = false;
  }

  event(type: string, data: Record<string, unknown> = {}): void {
    fs.writeSync(this.eventsFd, `${JSON.stringify({ ts: new Date().toISOString(), type, ...data })}\n`);
  }

  /** How many events of a type the log holds (e.g. sessions: "run.start", killed ones included). */
  countEvents(type: string): number {
    const needle = `"type":${JSON.stringify(type)}`;
    const text = fs.readFileSync(path.join(this.dir, RUN_FILES.events), "utf8");
    let n = 0;
    for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + needle.length)) n++;
    return n;
  }

  stepDir(step: string): string {
    const dir = path.join(this.dir, "steps", step);
    fs.mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** Persists a finished item; throws if the output is not JSON. */
  appendOutput(step: string, id: string, output: unknown): void {
    let fd = this.outputFds.get(step);
    if (fd === undefined) {
      fd = openForAppend(path.join(this.stepDir(step), RUN_FILES.outputs));
      this.outputFds.set(step, fd);
    }
    fs.writeSync(fd, `{"id":${JSON.stringify(id)},"output":${toJson(output)}}\n`);
  }

  /** Items a step finished in earlier sessions of this run, in the order they finished. */
  finished(step: string): Map<string, StepResult> {
    const file = path.join(this.dir, "steps", step, RUN_FILES.outputs);
    const out = new Map<string, StepResult>();
    if (!fs.existsSync(file)) return out;
    for (const line of fs.readFileSync(file, "utf8").split("\n")) {
      if (line === "") continue;
      try {
        const rec = JSON.parse(line) as { id: string; output?: unknown };
        out.set(rec.id, { id: rec.id, output: rec.output });
      } catch {
        // a torn last line: cut off by openForAppend
      }
    }
    return out;
  }

  writeJson(name: string, value: unknown): void {
    writeFileAtomic(path.join(this.dir, name), `${JSON.stringify(value, null, 2)}\n`);
  }

  writeText(name: string, text: string): void {
    writeFileAtomic(path.join(this.dir, name), text);
  }
}

function toJson(output: unknown): string {
  try {
    return JSON.stringify(output === undefined ? null : output);
  } catch (cause) {
    throw new BdcError({
      code: "BDC_ITEM_FAILED",
      message: `the step's output is not JSON-serialisable: ${(cause as Error).message}`,
      hint: "return plain data (objects, arrays, strings, numbers, booleans, null) from run()",
    });
  }
}

/** Opens for appending, cutting a trailing partial line left by a crash. */
function openForAppend(file: string): number {
  if (fs.existsSync(file)) {
    const text = fs.readFileSync(file);
    if (text.length > 0 && text[text.length - 1] !== 0x0a) {
      const keep = text.lastIndexOf(0x0a) + 1;
      fs.truncateSync(file, keep);
    }
  }
  return fs.openSync(file, "a");
}

export function writeFileAtomic(file: string, content: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, content);
  fs.renameSync(tmp, file);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
