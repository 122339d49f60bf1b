/**
 * The `composer` slot: what turns an input into a composition of LoRA experts for policy/local
 * (composer/hypernet: the DisenLoRA hypernetwork). policy/local builds its model with gated slots
 * over the composer's stack, asks the composer for each request's gates, and records which experts
 * the request leaned on.
 */
import type { CompositionRecord } from "@bdc/policy";
import { expertMass, type Composition, type ExpertStack } from "./composition.ts";

export interface Composer {
  readonly name: string;
  /** The experts it composes (the model needs gated slots on these modules). */
  readonly stack: ExpertStack;
  /** Identity of the composition's inputs (files of the hypernetwork and experts): part of response-cache keys. */
  readonly key: string;
  /** The composition for one input text (what `inputText` makes of a request's messages). */
  compose(input: string, options?: { readonly signal?: AbortSignal | undefined }): Promise<Composition>;
}

declare module "@bdc/core" {
  interface SlotTypes {
    composer: Composer;
  }
}

/** What a response records of its composition: the mass per expert, overall and per module. */
export function compositionRecord(composition: Composition): CompositionRecord {
  const round = (x: number) => Math.round(x * 1e4) / 1e4;
  const modules: Record<string, number[]> = {};
  for (const [key, g] of composition.gates) modules[key] = expertMass({ stack: composition.stack, gates: new Map([[key, g]]) }).map(round);
  return { experts: composition.stack.experts, mass: expertMass(composition).map(round), modules };
}
