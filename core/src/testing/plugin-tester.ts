/**
 * Testing a plugin in about ten lines:
 *
 * ```ts
 * import { testPlugin } from "@bdc/core/testing";
 * import plugin from "./jsonl-dataset.ts";
 *
 * testPlugin(plugin, {
 *   valid: [{ path: "fixtures/rows.jsonl" }],
 *   invalid: [{ config: { path: 3 }, code: "BDC_CONFIG_TYPE", path: "path" }],
 *   contract: { config: { path: "fixtures/rows.jsonl" }, baseDir: import.meta.dirname },
 * });
 * ```
 *
 * It registers node:test cases: the plugin's metadata, each valid config decodes and
 * round-trips through encode, each invalid config fails with the given code at the given
 * key, and the built instance passes its slot's contract cases.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, test } from "node:test";
import { Schema } from "effect";
import { decodeConfig, encodeConfig, resolveFilePaths, type ConfigProblem } from "../config-schema.ts";
import { BdcError, formatPath } from "../errors.ts";
import { slotOf, type AnyPlugin, type Item, type KernelServices, type StepContext } from "../plugin.ts";
import { pluginShapeProblems } from "../registry.ts";
import { builtinContracts, type ContractFixture, type SlotContract } from "./contracts.ts";

type WithBlock = Record<string, unknown>;

export class PluginTester {
  constructor(readonly plugin: AnyPlugin) {}

  private schema() {
    return (this.plugin.config ?? Schema.Struct({})) as Schema.Schema<Record<string, unknown>, WithBlock>;
  }

  /** Problems of a config (empty when valid), with paths relative to `with:`. */
  problems(config: WithBlock): ConfigProblem[] {
    const result = decodeConfig(this.schema(), config);
    return result.ok ? [] : result.problems;
  }

  /** The decoded config (defaults applied); throws a BdcError listing the problems. */
  decode(config: WithBlock): Record<string, unknown> {
    const result = decodeConfig(this.schema(), config);
    if (!result.ok) {
      throw new BdcError({
        code: result.problems[0]!.code,
        message: result.problems.map((p) => `${formatPath(p.path) || "(with)"}: ${p.message}`).join("; "),
        plugin: this.plugin.id,
      });
    }
    return result.value;
  }

  encode(config: Record<string, unknown>): WithBlock {
    return encodeConfig(this.schema(), config);
  }

  /** Builds an instance the way the kernel does, with the given deps and kernel services. */
  async make<Impl = unknown>(config: WithBlock, deps: Record<string, unknown> = {}, kernel: Partial<KernelServices> = {}): Promise<Impl> {
    const services: KernelServices = {
      instance: "under-test",
      baseDir: process.cwd(),
      runDir: undefined,
      emit: () => {},
      log: () => {},
      warn: () => {},
      signal: new AbortController().signal,
      ...kernel,
    };
    const decoded = this.decode(config);
    // FilePath values resolve from baseDir here, as the kernel resolves them from their YAML file.
    resolveFilePaths(this.schema(), decoded, () => services.baseDir);
    return (await this.plugin.make(decoded, deps as never, services)) as Impl;
  }
}

export interface PluginTestCases {
  readonly valid?: ReadonlyArray<WithBlock>;
  readonly invalid?: ReadonlyArray<{ readonly config: WithBlock; readonly code: string; readonly path?: string }>;
  readonly contract?: {
    readonly config: WithBlock;
    readonly deps?: Record<string, unknown>;
    readonly baseDir?: string;
    /** Sample items for steps. */
    readonly items?: ReadonlyArray<Item>;
    /** The slot's contract; defaults to the kernel's own for `step` and `dataset`. */
    readonly slot?: SlotContract<never>;
  };
}

export function testPlugin(plugin: AnyPlugin, cases: PluginTestCases = {}): void {
  const tester = new PluginTester(plugin);
  describe(`plugin ${(plugin as { id?: unknown }).id ?? "(no id)"}`, () => {
    test("is a valid plugin object", () => {
      assert.deepEqual(pluginShapeProblems(plugin), []);
    });

    for (const [i, config] of (cases.valid ?? []).entries()) {
      test(`valid config #${i + 1} decodes and round-trips`, () => {
        const decoded = tester.decode(config);
        assert.deepEqual(tester.decode(tester.encode(decoded)), decoded);
      });
    }

    for (const [i, { config, code, path: at }] of (cases.invalid ?? []).entries()) {
      test(`invalid config #${i + 1} fails with ${code}${at === undefined ? "" : ` at ${at}`}`, () => {
        const problems = tester.problems(config);
        assert.ok(problems.length > 0, `expected ${code}, but ${JSON.stringify(config)} is valid`);
        const hit = problems.find((p) => p.code === code && (at === undefined || formatPath(p.path) === at));
        assert.ok(hit, `expected ${code}${at === undefined ? "" : ` at ${at}`}, got: ${problems.map((p) => `${p.code} at ${formatPath(p.path)}`).join(", ")}`);
      });
    }

    const contract = cases.contract;
    if (contract !== undefined) {
      const slot = contract.slot ?? builtinContracts[slotOf(plugin.id)];
      if (slot === undefined) {
        test(`contract of slot "${slotOf(plugin.id)}"`, () => {
          assert.fail(`no contract is known for slot "${slotOf(plugin.id)}": pass contract.slot (the plugin family exports it)`);
        });
        return;
      }
      describe(`${slot.slot} contract`, () => {
        for (const c of slot.cases) {
          test(c.name, async () => {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-contract-"));
            try {
              const impl = await tester.make(contract.config, contract.deps, { baseDir: contract.baseDir ?? process.cwd(), runDir: dir });
              await c.check(impl as never, fixture(dir, contract.items ?? []));
            } finally {
              fs.rmSync(dir, { recursive: true, force: true });
            }
          });
        }
      });
    }
  });
}

function fixture(dir: string, items: ReadonlyArray<Item>): ContractFixture {
  return {
    items,
    stepContext: (outputs = {}): StepContext => ({
      step: "under-test",
      signal: new AbortController().signal,
      dir,
      emit: () => {},
      log: () => {},
      outputs: <T>(step: string) => {
        const o = outputs[step];
        if (o === undefined) throw new BdcError({ code: "BDC_UNKNOWN_STEP", message: `no outputs given for step "${step}" in this test` });
        return o as ReadonlyArray<Item<T>>;
      },
    }),
  };
}
