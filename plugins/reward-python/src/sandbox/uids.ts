/**
 * Worker uids (root path) and the process bookkeeping around them, all by scanning /proc: picking
 * a free block of uids per executor, waiting until a killed sandbox's uid has no processes left,
 * killing what a sandbox started.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import { randomInt } from "node:crypto";
import { BdcError } from "@bdc/core";

export const UID_LOW = 61_000;
const UID_HIGH = 93_000;

/** Kernel >= 5.14 counts RLIMIT_NPROC per user namespace (ucounts). */
export function kernelCountsProcessesPerUserns(): boolean {
  const m = /^(\d+)\.(\d+)/.exec(os.release());
  if (m === null) return false;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return major > 5 || (major === 5 && minor >= 14);
}

function passwdUids(): Set<number> {
  const uids = new Set<number>();
  try {
    for (const line of fs.readFileSync("/etc/passwd", "utf8").split("\n")) {
      const uid = Number(line.split(":")[2]);
      if (Number.isInteger(uid)) uids.add(uid);
    }
  } catch {
    // no /etc/passwd
  }
  return uids;
}

/** One uid per worker: uidBase.. when given, else a random free block in 61000..93000. */
export function pickUids(workers: number, base: number | undefined): number[] {
  if (base !== undefined) {
    if (!Number.isInteger(base) || base < 1000) throw new BdcError({ code: "BDC_CONFIG_VALUE", message: `uidBase must be an integer >= 1000, got ${base}` });
    return Array.from({ length: workers }, (_, i) => base + i);
  }
  const block = 16 * Math.ceil(workers / 16);
  const blocks = Math.floor((UID_HIGH - UID_LOW) / block);
  const taken = passwdUids();
  for (const uid of uidsInUse()) taken.add(uid);
  for (let attempt = 0; attempt < 100; attempt++) {
    const start = UID_LOW + block * randomInt(0, blocks);
    const uids = Array.from({ length: workers }, (_, i) => start + i);
    if (uids.some((u) => taken.has(u) || u === 65534 || u === 65535)) continue;
    return uids;
  }
  throw new BdcError({ code: "BDC_SANDBOX_FAILED", message: `no free block of ${workers} uids in ${UID_LOW}..${UID_HIGH}` });
}

/** The real and effective uids of all processes (scans /proc once). */
function uidsInUse(): Set<number> {
  const uids = new Set<number>();
  let names: string[];
  try {
    names = fs.readdirSync("/proc");
  } catch {
    return uids;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const m = /\nUid:\s+(\d+)\s+(\d+)/.exec(fs.readFileSync(`/proc/${name}/status`, "utf8"));
      if (m !== null) uids.add(Number(m[1])).add(Number(m[2]));
    } catch {
      // gone
    }
  }
  return uids;
}

/** Pids of the processes whose real or effective uid is `uid` (scans /proc); `live`: without zombies. */
export function processesOfUid(uid: number, live = false): number[] {
  const pids: number[] = [];
  let names: string[];
  try {
    names = fs.readdirSync("/proc");
  } catch {
    return pids;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    let status: string;
    try {
      status = fs.readFileSync(`/proc/${name}/status`, "utf8");
    } catch {
      continue;
    }
    const m = /\nUid:\s+(\d+)\s+(\d+)/.exec(status);
    if (m === null || (Number(m[1]) !== uid && Number(m[2]) !== uid)) continue;
    if (live && /\nState:\s+Z/.test(status)) continue;
    pids.push(Number(name));
  }
  return pids;
}

/** Waits (bounded) until no live process runs as `uid` (zombies hold no resources but a pid). */
export async function waitUidFree(uid: number, maxMs: number): Promise<void> {
  const until = Date.now() + maxMs;
  while (processesOfUid(uid, true).length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
}

/** SIGKILLs the descendants of `root` at depth >= minDepth (1 = its children); returns how many. */
export function killDescendants(root: number, minDepth: number): number {
  let killed = 0;
  for (let round = 0; round < 2; round++) {
    const children = new Map<number, number[]>();
    let names: string[];
    try {
      names = fs.readdirSync("/proc");
    } catch {
      return killed;
    }
    for (const name of names) {
      if (!/^\d+$/.test(name)) continue;
      let stat: string;
      try {
        stat = fs.readFileSync(`/proc/${name}/stat`, "utf8");
      } catch {
        continue;
      }
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid);
      if (list === undefined) children.set(ppid, [Number(name)]);
      else list.push(Number(name));
    }
    let level = [root];
    for (let depth = 1; level.length > 0 && depth < 64; depth++) {
      level = level.flatMap((p) => children.get(p) ?? []);
      if (depth < minDepth) continue;
      for (const pid of level) {
        try {
          process.kill(pid, "SIGKILL");
          killed++;
        } catch {
          // already gone
        }
      }
    }
    if (minDepth >= 2) break; // bwrap: killing the namespace's init takes everything in it
  }
  return killed;
}
