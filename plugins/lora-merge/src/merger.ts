/**
 * The `merge` slot (the plugins merge/*): a merge method with its options, filled by the merge/* plugins and used by
 * step/merge-lora. Each plugin is a thin preset of the one core (presets.ts, merge-core.ts).
 */
import type { MethodName, MethodOptions } from "./presets.ts";

export interface Merger {
  readonly method: MethodName;
  readonly options: MethodOptions;
  /** Delta space (default) or the labelled factor-space variant. */
  readonly space: "delta" | "factors";
  readonly twin?: { readonly sharedRank?: number | undefined; readonly exclusiveRank?: number | undefined } | undefined;
}

declare module "@bdc/core" {
  interface SlotTypes {
    merge: Merger;
  }
}
