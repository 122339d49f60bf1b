// Benchmark plugin: a step that does (almost) nothing, so a run through the kernel measures
// the kernel itself: scheduling, event logging and per-item persistence.
import { definePlugin, EmptyConfig, type Item, type StepImpl } from "@bdc/core";

export interface NoopOutput {
  readonly id: string;
  readonly n: number;
  readonly ok: true;
}

export class NoopStep implements StepImpl<{ n: number }, NoopOutput> {
  run(item: Item<{ n: number }>): NoopOutput {
    return { id: item.id, n: item.data.n * 2, ok: true };
  }
}

export default definePlugin({
  id: "step/bench-noop",
  version: "1.0.0",
  description: "Benchmark: returns a small JSON object per item and does no other work",
  config: EmptyConfig,
  make: () => new NoopStep(),
});
