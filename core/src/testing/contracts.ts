/**
 * Contract cases per slot: what every implementation of a slot must do, whatever it does
 * otherwise. Plugin families add theirs (e.g. a `policy` contract) with `defineContract`.
 */
import * as assert from "node:assert/strict";
import type { DatasetImpl, Item, StepContext, StepImpl } from "../plugin.ts";

export interface ContractCase<Impl> {
  readonly name: string;
  check(impl: Impl, fixture: ContractFixture): Promise<void> | void;
}

export interface ContractFixture {
  /** Sample items for slots that process items (steps). */
  readonly items: ReadonlyArray<Item>;
  /** A step context writing into a temporary directory. */
  stepContext(outputs?: Record<string, ReadonlyArray<Item>>): StepContext;
}

export interface SlotContract<Impl> {
  readonly slot: string;
  readonly cases: ReadonlyArray<ContractCase<Impl>>;
}

export const defineContract = <Impl>(contract: SlotContract<Impl>): SlotContract<Impl> => contract;

const assertJson = (value: unknown, what: string) => {
  assert.doesNotThrow(() => JSON.stringify(value), `${what} must be JSON-serialisable`);
  if (value !== undefined) assert.deepEqual(JSON.parse(JSON.stringify(value)), value, `${what} must survive a JSON round trip unchanged`);
};

async function collect(impl: DatasetImpl): Promise<Item[]> {
  const out: Item[] = [];
  for await (const item of await impl.items(new AbortController().signal)) out.push(item);
  return out;
}

export const datasetContract = defineContract<DatasetImpl>({
  slot: "dataset",
  cases: [
    {
      name: "yields items with unique, non-empty string ids and JSON data",
      async check(impl) {
        const items = await collect(impl);
        const ids = new Set<string>();
        for (const item of items) {
          assert.equal(typeof item.id, "string", "item.id must be a string");
          assert.notEqual(item.id, "", "item.id must not be empty");
          assert.ok(!ids.has(item.id), `duplicate item id "${item.id}"`);
          ids.add(item.id);
          assertJson(item.data, `data of item "${item.id}"`);
        }
      },
    },
    {
      name: "yields the same ids in the same order every time (resume depends on it)",
      async check(impl) {
        const a = (await collect(impl)).map((i) => i.id);
        const b = (await collect(impl)).map((i) => i.id);
        assert.deepEqual(b, a);
      },
    },
  ],
});

export const stepContract = defineContract<StepImpl>({
  slot: "step",
  cases: [
    {
      name: "returns JSON outputs for the sample items",
      async check(impl, fx) {
        assert.ok(fx.items.length > 0, "give the step contract sample items (contract.items)");
        for (const item of fx.items) assertJson(await impl.run(item, fx.stepContext()), `output for item "${item.id}"`);
      },
    },
    {
      name: "summarize (if any) folds results into a JSON object",
      async check(impl, fx) {
        if (impl.summarize === undefined) return;
        const results = [];
        for (const item of fx.items) results.push({ id: item.id, output: await impl.run(item, fx.stepContext()) });
        results.push({ id: "failed-item", error: { code: "BDC_ITEM_FAILED", message: "a failed item" } });
        const summary = await impl.summarize(results, fx.stepContext());
        assert.equal(typeof summary, "object");
        assertJson(summary, "the summary");
      },
    },
  ],
});

export const builtinContracts: Readonly<Record<string, SlotContract<never>>> = {
  dataset: datasetContract as SlotContract<never>,
  step: stepContract as SlotContract<never>,
};
