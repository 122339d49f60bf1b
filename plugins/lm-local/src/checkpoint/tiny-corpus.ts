/**
 * The text the tiny test tokenizers learn their merges from: plain English and Python, the two
 * kinds of text BDC's student model reads (problem statements, thoughts, programs). A few
 * kilobytes support a few hundred merges; past that, training stops early (see bpe-trainer.ts).
 */
export const TINY_CORPUS = String.raw`
The quick brown fox jumps over the lazy dog. A student model learns to write code from the
thoughts and solutions of larger models. Each problem has a statement, some examples, and hidden
tests that decide whether a program is correct. Read the input carefully, think about the edge
cases, and then write the simplest program that solves the problem within the time limit.

Given an array of integers, return the indices of the two numbers such that they add up to a
specific target. You may assume that each input would have exactly one solution, and you may not
use the same element twice. You can return the answer in any order.

Write a function that reverses a string. The input string is given as an array of characters.
You must do this by modifying the input array in place with constant extra memory.

Given a string s, find the length of the longest substring without repeating characters. For
example, the answer for "abcabcbb" is 3, because the longest substring is "abc". The answer for
"bbbbb" is 1 and the answer for "pwwkew" is 3.

The first line of the input contains a single integer n, the number of test cases. Each of the
next n lines contains two integers a and b separated by a space. For each test case, print the
sum of a and b on a separate line. It is guaranteed that the numbers fit in a 64-bit integer.

Think step by step. First, we sort the list. Then we use two pointers, one at the start and one
at the end of the list, and move them towards each other until they meet. The time complexity
is O(n log n) for the sort and O(n) for the scan, and the extra memory is O(1).

If the number is even, divide it by two; otherwise multiply it by three and add one. Count the
steps until the number becomes one. The result for the number 6 is 8 and for 7 it is 16.

def two_sum(nums, target):
    seen = {}
    for i, num in enumerate(nums):
        if target - num in seen:
            return [seen[target - num], i]
        seen[num] = i
    return []


def reverse_string(s):
    left, right = 0, len(s) - 1
    while left < right:
        s[left], s[right] = s[right], s[left]
        left += 1
        right -= 1
    return s


def length_of_longest_substring(s: str) -> int:
    last = {}
    start = 0
    best = 0
    for i, ch in enumerate(s):
        if ch in last and last[ch] >= start:
            start = last[ch] + 1
        last[ch] = i
        best = max(best, i - start + 1)
    return best


class Solution:
    def maxSubArray(self, nums: List[int]) -> int:
        best = current = nums[0]
        for x in nums[1:]:
            current = max(x, current + x)
            best = max(best, current)
        return best


def main():
    import sys
    data = sys.stdin.read().split()
    n = int(data[0])
    out = []
    for i in range(n):
        a = int(data[1 + 2 * i])
        b = int(data[2 + 2 * i])
        out.append(str(a + b))
    print("\n".join(out))


if __name__ == "__main__":
    main()


def is_prime(n):
    if n < 2:
        return False
    i = 2
    while i * i <= n:
        if n % i == 0:
            return False
        i += 1
    return True


def fibonacci(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def binary_search(items, target):
    low, high = 0, len(items) - 1
    while low <= high:
        mid = (low + high) // 2
        if items[mid] == target:
            return mid
        elif items[mid] < target:
            low = mid + 1
        else:
            high = mid - 1
    return -1


def count_words(text):
    counts = {}
    for word in text.lower().split():
        word = word.strip(".,!?;:")
        if word:
            counts[word] = counts.get(word, 0) + 1
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


class Node:
    def __init__(self, value, children=None):
        self.value = value
        self.children = children if children is not None else []

    def depth(self):
        if not self.children:
            return 1
        return 1 + max(child.depth() for child in self.children)


def read_ints():
    return list(map(int, input().split()))


for _ in range(int(input())):
    n, k = read_ints()
    values = read_ints()
    values.sort(reverse=True)
    print(sum(values[:k]))

The function returns a list of the values that appear more than once in the input, in the order
of their first appearance. When the list is empty, the function returns an empty list and does
not raise an exception. The tests check the output exactly, so print nothing else.

We keep a dictionary from each value to the number of times we have seen it. When the count of a
value reaches two, we append the value to the result. This is correct because every value is
appended exactly once, at the moment its second occurrence is read.

Note that the answer can be large, so print it modulo 1000000007. The sample input is:
3
1 2
3 4
5 6
and the expected output is:
3
7
11
`;
