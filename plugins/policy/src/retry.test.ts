import * as assert from "node:assert/strict";
import { test } from "node:test";
import { Limiter } from "./rate-limit.ts";
import { backoffMs, DEFAULT_RETRY, parseRetryAfter } from "./retry.ts";

const headers = (h: Record<string, string>) => ({ get: (k: string) => h[k.toLowerCase()] ?? null });

test("backoff: full jitter under an exponentially growing cap; Retry-After wins (capped)", () => {
  const policy = { ...DEFAULT_RETRY, baseMs: 100, maxMs: 1000 };
  assert.equal(backoffMs(0, { ...policy, random: () => 0.999 }), 100);
  assert.equal(backoffMs(3, { ...policy, random: () => 0.5 }), 400);
  assert.equal(backoffMs(10, { ...policy, random: () => 1 }), 1000);
  assert.equal(backoffMs(0, { ...policy, random: () => 0 }), 0);
  assert.equal(backoffMs(5, policy, 250), 250);
  assert.equal(backoffMs(5, policy, 99_000), 1000);
});

test("Retry-After: seconds, an HTTP date, or retry-after-ms", () => {
  assert.equal(parseRetryAfter(headers({ "retry-after": "2" })), 2000);
  assert.equal(parseRetryAfter(headers({ "retry-after": "0.5" })), 500);
  assert.equal(parseRetryAfter(headers({ "retry-after-ms": "150", "retry-after": "9" })), 150);
  const soon = parseRetryAfter(headers({ "retry-after": new Date(Date.now() + 3000).toUTCString() }))!;
  assert.ok(soon > 1000 && soon <= 3000, String(soon));
  assert.equal(parseRetryAfter(headers({})), undefined);
  assert.equal(parseRetryAfter(headers({ "retry-after": "soon" })), undefined);
});

/** A fake clock whose sleep advances time at once, recording each wait. */
function fakeTime() {
  const t = { now: 0, waits: [] as number[] };
  return { t, now: () => t.now, sleep: async (ms: number) => void (t.waits.push(ms), (t.now += ms)) };
}

test("requests per minute: the next request waits for the oldest to leave the window", async () => {
  const { t, now, sleep } = fakeTime();
  const limiter = new Limiter(10, 2, undefined, now, sleep);
  const signal = new AbortController().signal;
  (await limiter.acquire(signal, 0))();
  t.now = 1000;
  (await limiter.acquire(signal, 0))();
  assert.deepEqual(t.waits, []);
  (await limiter.acquire(signal, 0))();
  assert.deepEqual(t.waits, [59_000], "the third waits until the first is a minute old");
});

test("tokens per minute: a request that would exceed the budget waits", async () => {
  const { t, now, sleep } = fakeTime();
  const limiter = new Limiter(10, undefined, 1000, now, sleep);
  const signal = new AbortController().signal;
  (await limiter.acquire(signal, 100))();
  limiter.spend(900);
  (await limiter.acquire(signal, 50))();
  assert.deepEqual(t.waits, [], "within budget");
  limiter.spend(50);
  t.now = 10_000;
  (await limiter.acquire(signal, 200))();
  assert.deepEqual(t.waits, [50_000], "over budget: wait until the first spend leaves the window");
});
