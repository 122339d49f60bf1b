/**
 * The embeddings the hypernetwork reads: each row's input text through the encoder, in batches,
 * with the inputs longer than the encoder's window counted (they are truncated by the encoder,
 * as the authors' encoder truncates them) and said once.
 */
import type { Encoder } from "@bdc/policy";

export async function embedInputs(encoder: Encoder, texts: ReadonlyArray<string>, options: { readonly signal?: AbortSignal | undefined; readonly log?: (line: string) => void; readonly batch?: number } = {}): Promise<{ vectors: Float32Array[]; truncated: number }> {
  const batch = options.batch ?? 32;
  const vectors: Float32Array[] = [];
  for (let i = 0; i < texts.length; i += batch) {
    options.signal?.throwIfAborted();
    vectors.push(...(await encoder.embed(texts.slice(i, i + batch), options.signal === undefined ? undefined : { signal: options.signal })));
  }
  const max = encoder.maxTokens;
  const truncated = max === undefined || encoder.countTokens === undefined ? 0 : texts.filter((t) => encoder.countTokens!(t) > max).length;
  if (truncated > 0) options.log?.(`${truncated} of ${texts.length} inputs are longer than the encoder's window of ${max} tokens (${encoder.model}) and were embedded truncated`);
  return { vectors, truncated };
}
