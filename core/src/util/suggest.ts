/** Edit distance counting a swap of neighbours as one edit (optimal string alignment): "pcub" ~ "pucb". */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest candidate, if it is close enough to be a plausible typo. */
export function nearest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  if (best === undefined) return undefined;
  // A plausible typo changes a few characters and leaves most of the word ("ab" is not "xy").
  return bestDistance <= Math.max(2, Math.floor(best.length / 3)) && bestDistance < Math.max(word.length, best.length) ? best : undefined;
}

/** `did you mean "x"? valid choices: a, b, c` */
export function choicesHint(word: string, candidates: ReadonlyArray<string>, what = "valid choices"): string {
  const near = nearest(word, candidates);
  const list = candidates.length === 0 ? "(none)" : [...candidates].sort().join(", ");
  return `${near === undefined ? "" : `did you mean "${near}"? `}${what}: ${list}`;
}
