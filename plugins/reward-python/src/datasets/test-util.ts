/** Helpers for the dataset tests (not part of the plugins). */
import * as assert from "node:assert/strict";
import { PluginTester } from "@bdc/core/testing";
import type { AnyPlugin, KernelServices } from "@bdc/core";
import type { PublicProblem, TestCase } from "../types.ts";
import type { ProblemDataset } from "./common.ts";

export const fixtures = `${import.meta.dirname}/fixtures`;

export interface Recorded {
  readonly logs: string[];
  readonly events: Array<{ event: string; data: Record<string, unknown> | undefined }>;
}

/** Builds a dataset instance as the kernel does (paths relative to the fixtures folder). */
export async function build(plugin: AnyPlugin, config: Record<string, unknown>): Promise<{ ds: ProblemDataset } & Recorded> {
  const logs: string[] = [];
  const events: Recorded["events"] = [];
  const kernel: Partial<KernelServices> = { baseDir: fixtures, log: (m) => logs.push(m), emit: (event, data) => events.push({ event, data }) };
  const ds = await new PluginTester(plugin).make<ProblemDataset>(config, {}, kernel);
  return { ds, logs, events };
}

export async function problems(ds: ProblemDataset): Promise<PublicProblem[]> {
  const out: PublicProblem[] = [];
  for await (const item of ds.items()) {
    assert.equal(item.id, item.data.id);
    out.push(item.data);
  }
  return out;
}

export const byId = (ps: ReadonlyArray<PublicProblem>, id: string): PublicProblem => {
  const p = ps.find((x) => x.id === id);
  assert.ok(p, `no problem ${id}`);
  return p;
};

/** The strings a test carries (what must not leak into items). */
export function testStrings(t: TestCase): string[] {
  if (t.kind === "stdio") return [t.input, t.output].map((s) => s.trim()).filter((s) => s !== "");
  if (t.kind === "call") return [JSON.stringify(t.args), JSON.stringify(t.expected)];
  return [t.code.trim()];
}

const PUBLIC_KEYS = new Set(["id", "source", "difficulty", "statement", "starterCode", "fnName", "style", "publicTests", "timeLimitMs", "memoryLimitMb", "split", "rawDifficulty"]);

/**
 * Serialises every item and checks that no hidden test (one that is not also a public test of
 * its problem) occurs in it, in any problem, and that items hold only public fields.
 * Returns how many hidden tests were checked.
 */
export async function assertNoHiddenLeak(ds: ProblemDataset, distinctive: RegExp): Promise<number> {
  const items: unknown[] = [];
  for await (const item of ds.items()) items.push(item);
  const serialised = JSON.stringify(items);
  let checked = 0;
  for (const item of items as Array<{ id: string; data: PublicProblem }>) {
    for (const key of Object.keys(item.data)) assert.ok(PUBLIC_KEYS.has(key), `item ${item.id} has a non-public field "${key}"`);
    const hidden = await ds.hiddenTests(item.id);
    const refs = await ds.references(item.id);
    for (const r of refs) if (r.trim().length > 20) assert.ok(!serialised.includes(JSON.stringify(r).slice(1, -1)), `a reference solution of ${item.id} is in the items`);
    if (item.data.split === "same-as-hidden") continue;
    for (const t of hidden) {
      if (item.data.publicTests.some((p) => JSON.stringify(p) === JSON.stringify(t))) continue;
      for (const s of testStrings(t)) {
        checked++;
        assert.ok(!serialised.includes(JSON.stringify(s).slice(1, -1)), `hidden test of ${item.id} leaks into the items: ${s.slice(0, 80)}`);
      }
    }
  }
  // The fixtures mark hidden tests with distinctive strings: none may appear anywhere in the items,
  // except in problems whose rule makes the hidden tests public.
  const publicByRule = (items as Array<{ data: PublicProblem }>).filter((i) => i.data.split === "same-as-hidden");
  const rest = JSON.stringify((items as Array<{ data: PublicProblem }>).filter((i) => !publicByRule.includes(i)));
  assert.ok(!distinctive.test(rest), `a distinctive hidden marker ${distinctive} occurs in the items`);
  return checked;
}
