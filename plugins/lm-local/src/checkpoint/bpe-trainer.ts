/**
 * A small byte-level BPE trainer (GPT-2 / Qwen / Llama-3 style), for the tiny test checkpoints:
 * the tokenizer.json it feeds is a real one, so the code that loads real checkpoints is what the
 * tests exercise.
 *
 * Byte level: text is UTF-8 encoded and every byte is written as one printable character
 * (GPT-2's `bytes_to_unicode`), so the 256 byte symbols cover any text and decoding is exact.
 * The corpus is split like the ByteLevel pre-tokenizer splits (the GPT-2 pattern), and the most
 * frequent adjacent pair is merged until the vocabulary is full or no pair occurs twice.
 */

/** GPT-2's byte -> printable character map (printable Latin-1 bytes map to themselves). */
export const BYTES_TO_UNICODE: readonly string[] = (() => {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const map: string[] = new Array<string>(256);
  for (const b of bs) map[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (map[b] === undefined) map[b] = String.fromCharCode(256 + n++);
  return map;
})();

/** The 256 byte symbols in GPT-2's id order (printable bytes first), the base of every byte-level vocab. */
export const BYTE_SYMBOLS_IN_ID_ORDER: readonly string[] = (() => {
  const order: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) order.push(b);
  for (let b = 0xa1; b <= 0xac; b++) order.push(b);
  for (let b = 0xae; b <= 0xff; b++) order.push(b);
  for (let b = 0; b < 256; b++) if (!order.includes(b)) order.push(b);
  return order.map((b) => BYTES_TO_UNICODE[b]!);
})();

/** The split of the ByteLevel pre-tokenizer with `use_regex: true` (GPT-2's pattern). */
export const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export function byteLevelEncode(text: string): string {
  let out = "";
  for (const b of new TextEncoder().encode(text)) out += BYTES_TO_UNICODE[b]!;
  return out;
}

export interface TrainedBpe {
  /** Token strings by id: the 256 byte symbols, then one per merge that made a new token. */
  readonly vocab: string[];
  /** In priority order (rank 0 first). */
  readonly merges: Array<[string, string]>;
}

/**
 * Learns merges over `corpus` until the vocabulary has `maxTokens` tokens or no adjacent pair
 * occurs at least twice (then it stops early: a corpus can only support so many merges). Ties
 * between equally frequent pairs go to the lexicographically smaller pair, so training is
 * deterministic.
 */
export function trainByteLevelBpe(corpus: string, maxTokens: number): TrainedBpe {
  const vocab = [...BYTE_SYMBOLS_IN_ID_ORDER];
  const known = new Set(vocab);
  const merges: Array<[string, string]> = [];
  const counts = new Map<string, number>();
  for (const piece of corpus.match(GPT2_SPLIT) ?? []) {
    const word = byteLevelEncode(piece);
    counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  // Each distinct word as its current symbols, with how often it occurs.
  const words = [...counts].map(([w, count]) => ({ symbols: Array.from(w), count }));
  const SEP = " "; // never inside a byte-level symbol (the space byte is written "Ġ")
  while (vocab.length < maxTokens) {
    const pairs = new Map<string, number>();
    for (const { symbols, count } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = symbols[i] + SEP + symbols[i + 1];
        pairs.set(key, (pairs.get(key) ?? 0) + count);
      }
    }
    let best: string | undefined;
    let bestCount = 1; // a pair must occur at least twice to be worth a token
    for (const [key, count] of pairs) {
      if (count > bestCount || (count === bestCount && best !== undefined && key < best)) {
        best = key;
        bestCount = count;
      }
    }
    if (best === undefined) break;
    const [a, b] = best.split(SEP) as [string, string];
    const merged = a + b;
    merges.push([a, b]);
    if (!known.has(merged)) {
      known.add(merged);
      vocab.push(merged);
    }
    for (const word of words) {
      const s = word.symbols;
      for (let i = 0; i + 1 < s.length; i++) {
        if (s[i] === a && s[i + 1] === b) s.splice(i, 2, merged);
      }
    }
  }
  return { vocab, merges };
}
