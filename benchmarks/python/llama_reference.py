#!/usr/bin/env python3
"""Independent PyTorch implementation of Llama-family decoder LLMs (plain torch, no transformers).

Reads a Hugging Face checkpoint folder (config.json + model.safetensors, or a sharded
model.safetensors.index.json; pytorch_model.bin as a fallback) for the architectures
LlamaForCausalLM (Llama 2/3, rope_scaling llama3 / linear), Qwen2ForCausalLM (q/k/v biases,
tied embeddings) and MistralForCausalLM (sliding window), and computes the same forward as
transformers' LlamaForCausalLM in float32 (F16/BF16 weights are upcast on load). It is the
reference our ONNX Runtime implementation is checked against (log-probabilities to 1e-3) and
the PyTorch speed reference of the benchmarks.

Run it with Debian's torch (/usr/bin/python3, package python3-torch) and set
OMP_WAIT_POLICY=PASSIVE in the environment (benchmarks/src/torch-reference.ts does): with the
default ACTIVE policy idle OpenMP workers spin between the many small decode ops and steal the
cores from the thread doing the work.

  score     --model DIR --tokens 1,2,3 [--tokens -  (read from stdin)] [--impl fast|reference]
            -> {"tokens": [...], "logprobs": [...]}   logprobs[i] = log p(tokens[i+1] | tokens[..i])
  bench     --model DIR [--prompt-tokens 512] [--decode-tokens 64] [--threads 2] [--repeats 3]
            [--warmup 1] [--seed 0] [--prefill-logits last|all]
            -> {"prefill_tokens_per_second": median, "decode_tokens_per_second": median,
                "peak_rss_mb": ..., "threads": ..., "torch": version, ...}
  train     --model DIR [--plan FILE|-]   (a JSON plan: init_adapter, optimizer, steps of micro-batches)
            -> {"losses": [...], "grad_norms": [...], "final": {"<layer>.<target>": {"A": [...], "B": [...]}}}
  train-bench --model DIR [--tokens 256] [--batch 1] [--rank 8] [--targets q_proj,v_proj]
            -> {"step_seconds": median, "tokens_per_second": ..., "peak_rss_mb": ..., "blas": ...}
  selfcheck --model DIR [--length 24] [--tol 1e-4]
            -> {"max_abs_diff": ..., ...}; exit status 1 when a difference exceeds --tol.
Errors print a traceback and a last line "llama_reference MODE: error: ..." on stderr, exit status 2.
            Compares (a) the cached path (prefill, a multi-token chunk on top of the cache, then
            one-token decode steps) with one full forward of the whole sequence, and (b) that full
            forward with a literal transcription of transformers' eager code (separate q/k/v
            projections, repeat_kv, additive finfo.min causal mask).

Two implementations live here:
  * `reference_logits`: a line-by-line transcription of transformers' eager LlamaForCausalLM
    (batch 1, no cache); slow where torch's BLAS is slow, used by selfcheck and `--impl reference`.
  * `FastModel`: the same math with a preallocated KV cache, fused q/k/v and gate/up weights
    stored transposed ([in, out]). Multi-token chunks (prefill) run their matrix products through
    oneDNN (torch._C._nn.mkldnn_linear) -- Debian's torch links the generic reference BLAS, which
    manages ~4 GFLOP/s, whereas oneDNN reaches a few hundred. One-token decode steps compute their
    matrix-vector products with F.embedding_bag(mode="sum", per_sample_weights=x) over the [in, out]
    weight, a multithreaded streaming axpy that runs at memory bandwidth (about 4x torch.mv on
    reference BLAS, and no temporary like (W * x).sum(-1)). Attention of a decode step uses the
    same trick over the cache (K kept transposed, [kv_heads, head_dim, max_len]).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import struct
import sys
import time
import traceback

import torch
import torch.nn.functional as F

SUPPORTED_ARCHITECTURES = ("LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM")
SAFETENSORS_DTYPES = {
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F64": torch.float64,
}


# --------------------------------------------------------------------------------------------
# Checkpoint reading
# --------------------------------------------------------------------------------------------


class Checkpoint:
    """Lazy access to the tensors of a checkpoint folder; `get` returns a float32 tensor."""

    def __init__(self, folder: str):
        self.folder = folder
        self._entries: dict[str, tuple[str, torch.dtype, list[int], int, int]] = {}
        self._loaded: dict[str, torch.Tensor] = {}  # pytorch_model.bin fallback only
        single = os.path.join(folder, "model.safetensors")
        index = os.path.join(folder, "model.safetensors.index.json")
        bin_single = os.path.join(folder, "pytorch_model.bin")
        bin_index = os.path.join(folder, "pytorch_model.bin.index.json")
        if os.path.exists(single):
            self._read_safetensors_header(single)
        elif os.path.exists(index):
            with open(index, "r", encoding="utf-8") as f:
                weight_map = json.load(f)["weight_map"]
            for shard in sorted(set(weight_map.values())):
                self._read_safetensors_header(os.path.join(folder, shard))
        elif os.path.exists(bin_single) or os.path.exists(bin_index):
            shards = [bin_single]
            if not os.path.exists(bin_single):
                with open(bin_index, "r", encoding="utf-8") as f:
                    shards = [os.path.join(folder, s) for s in sorted(set(json.load(f)["weight_map"].values()))]
            for shard in shards:
                try:
                    state = torch.load(shard, map_location="cpu", weights_only=True)
                except TypeError:  # torch without weights_only
                    state = torch.load(shard, map_location="cpu")
                self._loaded.update(state)
        else:
            raise FileNotFoundError(
                f"{folder}: no model.safetensors, model.safetensors.index.json or pytorch_model.bin"
            )

    def _read_safetensors_header(self, path: str) -> None:
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) != 8:
                raise ValueError(f"{path}: too short for a safetensors file")
            (header_len,) = struct.unpack("<Q", raw)
            size = os.fstat(f.fileno()).st_size
            if header_len > size - 8:
                raise ValueError(f"{path}: header length {header_len} exceeds the file ({size} bytes)")
            header = json.loads(f.read(header_len).decode("utf-8"))
        data_start = 8 + header_len
        for name, meta in header.items():
            if name == "__metadata__":
                continue
            dtype = SAFETENSORS_DTYPES.get(meta["dtype"])
            if dtype is None:
                raise ValueError(f"{path}: tensor {name} has unsupported dtype {meta['dtype']}")
            begin, end = meta["data_offsets"]
            shape = list(meta["shape"])
            expected = math.prod(shape) * torch.tensor([], dtype=dtype).element_size()
            if end - begin != expected:
                raise ValueError(f"{path}: tensor {name} spans {end - begin} bytes, shape {shape} needs {expected}")
            self._entries[name] = (path, dtype, shape, data_start + begin, data_start + end)

    def names(self) -> list[str]:
        return sorted(set(self._entries) | set(self._loaded))

    def has(self, name: str) -> bool:
        return name in self._entries or name in self._loaded

    def get(self, name: str) -> torch.Tensor:
        if name in self._loaded:
            return self._loaded[name].to(torch.float32).contiguous()
        if name not in self._entries:
            raise KeyError(f"{self.folder}: checkpoint has no tensor {name}")
        path, dtype, shape, begin, end = self._entries[name]
        buf = bytearray(end - begin)
        with open(path, "rb") as f:
            f.seek(begin)
            if f.readinto(buf) != len(buf):
                raise ValueError(f"{path}: truncated data for {name}")
        if len(buf) == 0:
            return torch.zeros(shape, dtype=torch.float32)
        t = torch.frombuffer(buf, dtype=dtype).reshape(shape)
        # float32 data stays in `buf` (the tensor keeps it alive); other dtypes are converted.
        return t.to(torch.float32)


# --------------------------------------------------------------------------------------------
# Config and RoPE (as transformers computes them)
# --------------------------------------------------------------------------------------------


class Config:
    def __init__(self, d: dict):
        archs = d.get("architectures") or ["LlamaForCausalLM"]
        self.architecture = archs[0]
        if self.architecture not in SUPPORTED_ARCHITECTURES:
            raise ValueError(f"unsupported architecture {self.architecture}; supported: {', '.join(SUPPORTED_ARCHITECTURES)}")
        self.hidden_size = int(d["hidden_size"])
        self.intermediate_size = int(d["intermediate_size"])
        self.num_layers = int(d["num_hidden_layers"])
        self.num_heads = int(d["num_attention_heads"])
        self.num_kv_heads = int(d.get("num_key_value_heads") or self.num_heads)
        self.head_dim = int(d.get("head_dim") or self.hidden_size // self.num_heads)
        self.rms_norm_eps = float(d.get("rms_norm_eps", 1e-6))
        self.rope_theta = float(d.get("rope_theta", 10000.0))
        self.rope_scaling = d.get("rope_scaling")
        self.vocab_size = int(d["vocab_size"])
        self.tie_word_embeddings = bool(d.get("tie_word_embeddings", False))
        act = d.get("hidden_act", "silu")
        if act not in ("silu", "swish"):
            raise ValueError(f"unsupported hidden_act {act!r} (only silu)")
        if self.num_heads % self.num_kv_heads != 0:
            raise ValueError(f"num_attention_heads {self.num_heads} is not a multiple of num_key_value_heads {self.num_kv_heads}")
        self.n_rep = self.num_heads // self.num_kv_heads
        self.sliding_window = None
        if self.architecture == "MistralForCausalLM" and d.get("sliding_window"):
            self.sliding_window = int(d["sliding_window"])
        if self.architecture == "Qwen2ForCausalLM" and d.get("use_sliding_window"):
            raise NotImplementedError("Qwen2 use_sliding_window=true (per-layer sliding windows) is not implemented")
        if d.get("partial_rotary_factor", 1.0) != 1.0:
            raise NotImplementedError("partial_rotary_factor != 1 is not implemented")

    @property
    def q_dim(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim


def rope_inv_freq(cfg: Config) -> torch.Tensor:
    """inv_freq exactly as transformers' ROPE_INIT_FUNCTIONS (default, linear, llama3), float32."""
    dim = cfg.head_dim
    base = cfg.rope_theta
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(dtype=torch.float) / dim))
    rs = cfg.rope_scaling
    if not rs:
        return inv_freq
    rope_type = rs.get("rope_type", rs.get("type", "default"))
    if rope_type == "default":
        return inv_freq
    if rope_type == "linear":
        return inv_freq / float(rs["factor"])
    if rope_type == "llama3":
        factor = rs["factor"]
        low_freq_factor = rs["low_freq_factor"]
        high_freq_factor = rs["high_freq_factor"]
        old_context_len = rs["original_max_position_embeddings"]
        low_freq_wavelen = old_context_len / low_freq_factor
        high_freq_wavelen = old_context_len / high_freq_factor
        wavelen = 2 * math.pi / inv_freq
        inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
        smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
        is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
        return torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)
    raise NotImplementedError(f"rope_scaling type {rope_type!r} is not implemented (default, linear, llama3 are)")


def rope_cos_sin(inv_freq: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape [len(positions), head_dim] (attention_scaling is 1 for the supported types)."""
    freqs = positions.to(torch.float32)[:, None] * inv_freq.to(torch.float32)[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    input_dtype = x.dtype
    h = x.to(torch.float32)
    variance = h.pow(2).mean(-1, keepdim=True)
    h = h * torch.rsqrt(variance + eps)
    return weight * h.to(input_dtype)


def load_config(folder: str) -> Config:
    with open(os.path.join(folder, "config.json"), "r", encoding="utf-8") as f:
        return Config(json.load(f))


def weight_prefix(ck: Checkpoint) -> str:
    if ck.has("model.embed_tokens.weight"):
        return "model."
    if ck.has("embed_tokens.weight"):
        return ""
    raise KeyError(f"{ck.folder}: no model.embed_tokens.weight")


def lm_head_name(cfg: Config, ck: Checkpoint, prefix: str) -> str:
    """The tensor used as lm_head: lm_head.weight, or the embeddings when tied (or absent)."""
    if cfg.tie_word_embeddings or not ck.has("lm_head.weight"):
        if not cfg.tie_word_embeddings:
            print("llama_reference: no lm_head.weight, using the tied embeddings", file=sys.stderr)
        return prefix + "embed_tokens.weight"
    return "lm_head.weight"


def optional(ck: Checkpoint, name: str) -> torch.Tensor | None:
    return ck.get(name) if ck.has(name) else None


# --------------------------------------------------------------------------------------------
# Literal transcription of transformers' eager forward (batch 1, no cache)
# --------------------------------------------------------------------------------------------


def reference_logits(cfg: Config, ck: Checkpoint, tokens: list[int]) -> torch.Tensor:
    """Logits [len(tokens), vocab] computed like transformers' LlamaForCausalLM (eager attention)."""
    p = weight_prefix(ck)
    S = len(tokens)
    ids = torch.tensor([tokens], dtype=torch.long)
    hidden = F.embedding(ids, ck.get(p + "embed_tokens.weight"))  # [1, S, H]
    position_ids = torch.arange(S)[None, :]
    inv_freq = rope_inv_freq(cfg)
    inv_freq_expanded = inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
    position_ids_expanded = position_ids[:, None, :].float()
    freqs = (inv_freq_expanded.float() @ position_ids_expanded.float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]  # unsqueeze_dim=1
    min_value = torch.finfo(torch.float32).min
    i = torch.arange(S)[:, None]
    j = torch.arange(S)[None, :]
    masked = j > i
    if cfg.sliding_window is not None:
        masked = masked | (i - j >= cfg.sliding_window)
    causal_mask = torch.zeros(S, S).masked_fill(masked, min_value)[None, None]
    scaling = cfg.head_dim**-0.5

    def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
        b, kvh, slen, hd = x.shape
        if n_rep == 1:
            return x
        return x[:, :, None, :, :].expand(b, kvh, n_rep, slen, hd).reshape(b, kvh * n_rep, slen, hd)

    for layer in range(cfg.num_layers):
        lp = f"{p}layers.{layer}."
        residual = hidden
        h = rms_norm(hidden, ck.get(lp + "input_layernorm.weight"), cfg.rms_norm_eps)
        hidden_shape = (1, S, -1, cfg.head_dim)
        a = lp + "self_attn."
        q = F.linear(h, ck.get(a + "q_proj.weight"), optional(ck, a + "q_proj.bias")).view(hidden_shape).transpose(1, 2)
        k = F.linear(h, ck.get(a + "k_proj.weight"), optional(ck, a + "k_proj.bias")).view(hidden_shape).transpose(1, 2)
        v = F.linear(h, ck.get(a + "v_proj.weight"), optional(ck, a + "v_proj.bias")).view(hidden_shape).transpose(1, 2)
        q = (q * cos) + (rotate_half(q) * sin)
        k = (k * cos) + (rotate_half(k) * sin)
        k = repeat_kv(k, cfg.n_rep)
        v = repeat_kv(v, cfg.n_rep)
        attn_weights = torch.matmul(q, k.transpose(2, 3)) * scaling
        attn_weights = attn_weights + causal_mask
        attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).to(q.dtype)
        attn_output = torch.matmul(attn_weights, v).transpose(1, 2).contiguous().reshape(1, S, -1)
        attn_output = F.linear(attn_output, ck.get(a + "o_proj.weight"), optional(ck, a + "o_proj.bias"))
        hidden = residual + attn_output
        residual = hidden
        h = rms_norm(hidden, ck.get(lp + "post_attention_layernorm.weight"), cfg.rms_norm_eps)
        m = lp + "mlp."
        gate = F.linear(h, ck.get(m + "gate_proj.weight"), optional(ck, m + "gate_proj.bias"))
        up = F.linear(h, ck.get(m + "up_proj.weight"), optional(ck, m + "up_proj.bias"))
        down = F.linear(F.silu(gate) * up, ck.get(m + "down_proj.weight"), optional(ck, m + "down_proj.bias"))
        hidden = residual + down
    hidden = rms_norm(hidden, ck.get(p + "norm.weight"), cfg.rms_norm_eps)
    logits = F.linear(hidden, ck.get(lm_head_name(cfg, ck, p)))
    return logits[0].float()


# --------------------------------------------------------------------------------------------
# Fast implementation with a preallocated KV cache
# --------------------------------------------------------------------------------------------


class KVCache:
    """Per layer: K transposed [kv_heads, head_dim, capacity] and V [kv_heads, capacity, head_dim]."""

    def __init__(self, cfg: Config, capacity: int):
        self.cfg = cfg
        self.capacity = 0
        self.kt: list[torch.Tensor] = []
        self.v: list[torch.Tensor] = []
        self.length = 0
        self.ensure(max(1, capacity))

    def ensure(self, needed: int) -> None:
        if needed <= self.capacity:
            return
        capacity = max(needed, 2 * self.capacity)
        c = self.cfg
        kt = [torch.zeros(c.num_kv_heads, c.head_dim, capacity) for _ in range(c.num_layers)]
        v = [torch.zeros(c.num_kv_heads, capacity, c.head_dim) for _ in range(c.num_layers)]
        for layer in range(len(self.kt)):
            kt[layer][:, :, : self.length] = self.kt[layer][:, :, : self.length]
            v[layer][:, : self.length] = self.v[layer][:, : self.length]
        self.kt, self.v, self.capacity = kt, v, capacity

    def reset(self) -> None:
        self.length = 0


class Layer:
    __slots__ = ("ln1", "ln2", "qkv_t", "qkv_b", "o_t", "o_b", "gu_t", "gu_b", "down_t", "down_b")


def onednn_available() -> bool:
    return bool(torch.backends.mkldnn.is_available()) and hasattr(torch._C._nn, "mkldnn_linear")


class FastModel:
    def __init__(self, cfg: Config, ck: Checkpoint, backend: str = "auto"):
        self.cfg = cfg
        if backend == "auto":
            backend = "onednn" if onednn_available() else "blas"
        if backend == "onednn" and not onednn_available():
            raise RuntimeError("--backend onednn: this torch has no oneDNN (mkldnn)")
        self.backend = backend
        p = weight_prefix(ck)

        self.layers: list[Layer] = []
        for i in range(cfg.num_layers):
            lp = f"{p}layers.{i}."
            layer = Layer()
            layer.ln1 = ck.get(lp + "input_layernorm.weight")
            layer.ln2 = ck.get(lp + "post_attention_layernorm.weight")
            a = lp + "self_attn."
            qkv_names = [a + "q_proj", a + "k_proj", a + "v_proj"]
            ws = [ck.get(n + ".weight") for n in qkv_names]
            layer.qkv_t = torch.cat(ws, 0).t().contiguous()
            del ws
            bs = [optional(ck, n + ".bias") for n in qkv_names]
            if any(b is not None for b in bs):
                dims = [cfg.q_dim, cfg.kv_dim, cfg.kv_dim]
                layer.qkv_b = torch.cat([b if b is not None else torch.zeros(d) for b, d in zip(bs, dims)])
            else:
                layer.qkv_b = None
            layer.o_t = ck.get(a + "o_proj.weight").t().contiguous()
            layer.o_b = optional(ck, a + "o_proj.bias")
            m = lp + "mlp."
            ws = [ck.get(m + "gate_proj.weight"), ck.get(m + "up_proj.weight")]
            layer.gu_t = torch.cat(ws, 0).t().contiguous()
            del ws
            gb, ub = optional(ck, m + "gate_proj.bias"), optional(ck, m + "up_proj.bias")
            if gb is not None or ub is not None:
                z = torch.zeros(cfg.intermediate_size)
                layer.gu_b = torch.cat([gb if gb is not None else z, ub if ub is not None else z])
            else:
                layer.gu_b = None
            layer.down_t = ck.get(m + "down_proj.weight").t().contiguous()
            layer.down_b = optional(ck, m + "down_proj.bias")
            self.layers.append(layer)
        self.norm = ck.get(p + "norm.weight")
        head = lm_head_name(cfg, ck, p)
        self.lm_head_t = ck.get(head).t().contiguous()  # [H, vocab]
        # Tied: look the embeddings up in the transposed lm_head (one copy of the matrix).
        self.embed = None if head == p + "embed_tokens.weight" else ck.get(p + "embed_tokens.weight")
        self.inv_freq = rope_inv_freq(cfg)
        self.cos = torch.empty(0, cfg.head_dim)
        self.sin = torch.empty(0, cfg.head_dim)
        self._aranges: dict[int, torch.Tensor] = {}
        self._offset0 = torch.zeros(1, dtype=torch.long)
        h = torch.arange(cfg.num_heads)
        self._kv_of_head = h // cfg.n_rep  # repeat_kv: query head h reads kv head h // n_rep
        self._q_idx = (self._kv_of_head[:, None] * cfg.head_dim + torch.arange(cfg.head_dim)[None, :]).reshape(-1)
        self._q_offsets = torch.arange(cfg.num_heads) * cfg.head_dim
        self.scaling = cfg.head_dim**-0.5

    def num_parameters(self) -> int:
        n = sum(t.numel() for t in (self.norm, self.lm_head_t))
        if self.embed is not None:
            n += self.embed.numel()
        for l in self.layers:
            for name in Layer.__slots__:
                t = getattr(l, name)
                if t is not None:
                    n += t.numel()
        return n

    # ---- primitives -------------------------------------------------------------------------

    def _arange(self, n: int) -> torch.Tensor:
        t = self._aranges.get(n)
        if t is None:
            t = self._aranges[n] = torch.arange(n)
        return t

    def _matvec(self, x: torch.Tensor, w_t: torch.Tensor) -> torch.Tensor:
        """x [in] @ w_t [in, out] -> [out], streamed at memory bandwidth."""
        return F.embedding_bag(self._arange(w_t.shape[0]), w_t, self._offset0, mode="sum", per_sample_weights=x)[0]

    def _matmul(self, x: torch.Tensor, w_t: torch.Tensor) -> torch.Tensor:
        """x [M, in] @ w_t [in, out] -> [M, out]."""
        if self.backend == "onednn":
            return torch._C._nn.mkldnn_linear(x.contiguous().to_mkldnn(), w_t.t(), None).to_dense()
        return torch.matmul(x, w_t)

    def linear(self, x: torch.Tensor, w_t: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        y = self._matvec(x[0], w_t)[None] if x.shape[0] == 1 else self._matmul(x, w_t)
        return y if b is None else y + b

    def _ensure_rope(self, n: int) -> None:
        if self.cos.shape[0] >= n:
            return
        n = max(n, 2 * self.cos.shape[0])
        self.cos, self.sin = rope_cos_sin(self.inv_freq, torch.arange(n))

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        if self.embed is not None:
            return self.embed.index_select(0, ids)
        return self.lm_head_t.index_select(1, ids).t().contiguous()

    # ---- attention --------------------------------------------------------------------------

    def _attend_chunk(self, q: torch.Tensor, layer: int, cache: KVCache, T: int, mask: torch.Tensor) -> torch.Tensor:
        """q [M, heads, hd] (the last M positions) over the cache [0, T) -> [M, heads*hd].

        `mask` [M, T] is 0 where attention is allowed and -inf elsewhere; mask + scaling * (q @ k^T)
        rounds exactly like transformers' (q @ k^T) * scaling + causal_mask."""
        cfg = self.cfg
        M = q.shape[0]
        r = cfg.n_rep
        out = torch.empty(M, cfg.num_heads, cfg.head_dim)
        for g in range(cfg.num_kv_heads):
            qg = q[:, g * r : (g + 1) * r, :].permute(1, 0, 2).reshape(r * M, cfg.head_dim)
            kt = cache.kt[layer][g, :, :T].contiguous()  # [hd, T] = [in, out]
            scores = torch.add(mask, self._matmul(qg, kt).view(r, M, T), alpha=self.scaling)
            probs = F.softmax(scores, dim=-1, dtype=torch.float32).view(r * M, T)
            vg = cache.v[layer][g, :T, :]  # [T, hd] = [in, out]
            out[:, g * r : (g + 1) * r, :] = self._matmul(probs, vg).view(r, M, cfg.head_dim).permute(1, 0, 2)
        return out.reshape(M, cfg.q_dim)

    def _attend_one(self, q: torch.Tensor, layer: int, cache: KVCache, T: int, av_idx: torch.Tensor, av_off: torch.Tensor) -> torch.Tensor:
        """q [1, heads, hd] at position T-1 over the cache [0, T) -> [1, heads*hd]."""
        cfg = self.cfg
        # Over the whole capacity (a [:, :T] view would make embedding_bag copy the cache), then cut.
        kt = cache.kt[layer].view(cfg.kv_dim, cache.capacity)
        scores = F.embedding_bag(self._q_idx, kt, self._q_offsets, mode="sum", per_sample_weights=q.reshape(-1))
        scores = scores[:, :T] * self.scaling  # [heads, T]
        w = cfg.sliding_window
        if w is not None and T > w:
            scores[:, : T - w] = float("-inf")
        probs = F.softmax(scores, dim=-1, dtype=torch.float32)
        v = cache.v[layer].view(cfg.num_kv_heads * cache.capacity, cfg.head_dim)
        out = F.embedding_bag(av_idx, v, av_off, mode="sum", per_sample_weights=probs.reshape(-1))
        return out.reshape(1, cfg.q_dim)

    # ---- forward ----------------------------------------------------------------------------

    def forward(self, tokens: list[int] | torch.Tensor, cache: KVCache, logits: str = "last") -> torch.Tensor:
        """Appends `tokens` to the cache; returns logits [1 or M, vocab] (logits="last" or "all")."""
        cfg = self.cfg
        ids = torch.as_tensor(tokens, dtype=torch.long).reshape(-1)
        M = ids.shape[0]
        p0 = cache.length
        T = p0 + M
        cache.ensure(T)
        self._ensure_rope(T)
        cos = self.cos[p0:T][:, None, :]
        sin = self.sin[p0:T][:, None, :]
        x = self._embed(ids)  # [M, H]
        if M == 1:
            av_idx = (self._kv_of_head[:, None] * cache.capacity + self._arange(T)[None, :]).reshape(-1)
            av_off = torch.arange(cfg.num_heads) * T
        else:
            i = torch.arange(p0, T)[:, None]
            j = torch.arange(T)[None, :]
            allowed = j <= i
            if cfg.sliding_window is not None:
                allowed = allowed & (i - j < cfg.sliding_window)
            mask = torch.zeros(M, T).masked_fill_(~allowed, float("-inf"))
        qd, kd = cfg.q_dim, cfg.kv_dim
        inter = cfg.intermediate_size
        for li, L in enumerate(self.layers):
            h = rms_norm(x, L.ln1, cfg.rms_norm_eps)
            qkv = self.linear(h, L.qkv_t, L.qkv_b)
            q = qkv[:, :qd].reshape(M, cfg.num_heads, cfg.head_dim)
            k = qkv[:, qd : qd + kd].reshape(M, cfg.num_kv_heads, cfg.head_dim)
            v = qkv[:, qd + kd :].reshape(M, cfg.num_kv_heads, cfg.head_dim)
            q = (q * cos) + (rotate_half(q) * sin)
            k = (k * cos) + (rotate_half(k) * sin)
            cache.kt[li][:, :, p0:T] = k.permute(1, 2, 0)
            cache.v[li][:, p0:T, :] = v.permute(1, 0, 2)
            if M == 1:
                attn = self._attend_one(q, li, cache, T, av_idx, av_off)
            else:
                attn = self._attend_chunk(q, li, cache, T, mask)
            x = x + self.linear(attn, L.o_t, L.o_b)
            h = rms_norm(x, L.ln2, cfg.rms_norm_eps)
            gu = self.linear(h, L.gu_t, L.gu_b)
            x = x + self.linear(F.silu(gu[:, :inter]) * gu[:, inter:], L.down_t, L.down_b)
        cache.length = T
        if logits == "last":
            x = x[-1:]
        elif logits != "all":
            raise ValueError(f"logits must be 'last' or 'all', got {logits!r}")
        x = rms_norm(x, self.norm, cfg.rms_norm_eps)
        return self.linear(x, self.lm_head_t, None)


# --------------------------------------------------------------------------------------------
# LoRA training (PEFT semantics, plain torch autograd)
# --------------------------------------------------------------------------------------------

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def read_safetensors_file(path: str) -> dict[str, torch.Tensor]:
    """Every tensor of one safetensors file, as float32."""
    ck = Checkpoint.__new__(Checkpoint)
    ck.folder = os.path.dirname(path)
    ck._entries = {}
    ck._loaded = {}
    ck._read_safetensors_header(path)
    return {name: ck.get(name) for name in ck.names()}


class LoraTrainModel:
    """The decoder with LoRA on chosen projections: y = W x (+ b) + scale * B (A x), PEFT's LoraLayer
    (dropout 0). Base weights are frozen tensors; each A and B is a leaf tensor with requires_grad.
    Batched: input ids [B, S], positions [B, S] and an additive attention bias [B, 1, S, S]."""

    def __init__(self, cfg: Config, ck: Checkpoint, adapter: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]], scale: float):
        self.cfg = cfg
        self.p = weight_prefix(ck)
        self.ck = ck
        self.scale = scale
        self.w: dict[str, torch.Tensor] = {}
        for name in ck.names():
            self.w[name] = ck.get(name)
        self.lm_head = self.w[lm_head_name(cfg, ck, self.p)]
        self.inv_freq = rope_inv_freq(cfg)
        self.lora: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}
        for key, (a, b) in adapter.items():
            self.lora[key] = (a.clone().requires_grad_(True), b.clone().requires_grad_(True))

    def parameters(self) -> list[torch.Tensor]:
        return [t for key in sorted(self.lora) for t in self.lora[key]]

    def proj(self, x: torch.Tensor, layer: int, module: str, target: str) -> torch.Tensor:
        name = f"{self.p}layers.{layer}.{module}.{target}"
        bias = self.w.get(name + ".bias")
        y = F.linear(x, self.w[name + ".weight"], bias)
        ab = self.lora.get((layer, target))
        if ab is not None:
            a, b = ab
            y = y + (x @ a.t()) @ b.t() * self.scale
        return y

    def loss(self, ids: torch.Tensor, positions: torch.Tensor, bias: torch.Tensor, loss_index: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        B, S = ids.shape
        hidden = F.embedding(ids, self.w[self.p + "embed_tokens.weight"])
        freqs = positions.to(torch.float32)[..., None] * self.inv_freq[None, None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos()[:, None], emb.sin()[:, None]  # [B, 1, S, D]
        scaling = cfg.head_dim**-0.5
        for layer in range(cfg.num_layers):
            lp = f"{self.p}layers.{layer}."
            h = rms_norm(hidden, self.w[lp + "input_layernorm.weight"], cfg.rms_norm_eps)
            q = self.proj(h, layer, "self_attn", "q_proj").view(B, S, -1, cfg.head_dim).transpose(1, 2)
            k = self.proj(h, layer, "self_attn", "k_proj").view(B, S, -1, cfg.head_dim).transpose(1, 2)
            v = self.proj(h, layer, "self_attn", "v_proj").view(B, S, -1, cfg.head_dim).transpose(1, 2)
            q = (q * cos) + (rotate_half(q) * sin)
            k = (k * cos) + (rotate_half(k) * sin)
            if cfg.n_rep > 1:
                k = k.repeat_interleave(cfg.n_rep, dim=1)
                v = v.repeat_interleave(cfg.n_rep, dim=1)
            scores = torch.matmul(q, k.transpose(2, 3)) * scaling + bias
            probs = F.softmax(scores, dim=-1, dtype=torch.float32)
            attn = torch.matmul(probs, v).transpose(1, 2).reshape(B, S, -1)
            hidden = hidden + self.proj(attn, layer, "self_attn", "o_proj")
            h = rms_norm(hidden, self.w[lp + "post_attention_layernorm.weight"], cfg.rms_norm_eps)
            act = F.silu(self.proj(h, layer, "mlp", "gate_proj")) * self.proj(h, layer, "mlp", "up_proj")
            hidden = hidden + self.proj(act, layer, "mlp", "down_proj")
        hidden = rms_norm(hidden, self.w[self.p + "norm.weight"], cfg.rms_norm_eps)
        picked = hidden.reshape(B * S, -1)[loss_index]
        logp = torch.log_softmax(picked @ self.lm_head.t(), dim=-1)
        return -(logp.gather(1, labels[:, None])[:, 0] * weight).sum()


def read_lora_adapter(folder: str, cfg: Config) -> tuple[dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]], dict]:
    with open(os.path.join(folder, "adapter_config.json"), "r", encoding="utf-8") as f:
        conf = json.load(f)
    tensors = read_safetensors_file(os.path.join(folder, "adapter_model.safetensors"))
    found: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
    import re

    pattern = re.compile(r"layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])(?:\.default)?\.weight$")
    for name, t in tensors.items():
        m = pattern.search(name)
        if m is None:
            continue
        found.setdefault((int(m.group(1)), m.group(2)), {})[m.group(3)] = t
    return {k: (v["A"], v["B"]) for k, v in found.items()}, conf


def hf_lr_lambda(schedule: str, total: int, warmup: int):
    """transformers' get_{linear,cosine,constant}_schedule_with_warmup multipliers."""

    def f(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        if schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        if schedule == "linear":
            return max(0.0, (total - step) / max(1, total - warmup))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))

    return f


def micro_batch_tensors(mb: dict, masked: float = -1e9) -> tuple[torch.Tensor, ...]:
    ids = torch.tensor(mb["ids"], dtype=torch.long)
    positions = torch.tensor(mb["positions"], dtype=torch.long)
    B, S = ids.shape
    bias = torch.full((B, 1, S, S), masked)
    for b, segs in enumerate(mb["segments"]):
        covered = 0
        for start, length in segs:
            block = torch.zeros(length, length).masked_fill(torch.ones(length, length, dtype=torch.bool).triu(1), masked)
            bias[b, 0, start : start + length, start : start + length] = block
            covered = start + length
        for q in range(covered, S):
            bias[b, 0, q, q] = 0.0
    return ids, positions, bias, torch.tensor(mb["loss_index"], dtype=torch.long), torch.tensor(mb["labels"], dtype=torch.long)


def cmd_train(args: argparse.Namespace) -> int:
    """Runs the LoRA training described by a JSON plan (read from --plan or stdin): the same
    checkpoint, initial adapter and micro-batches as our trainer, torch.optim.AdamW (foreach=False),
    LambdaLR with transformers' schedule, clip_grad_norm_. Prints per-step losses and grad norms, and
    the final A/B tensors."""
    plan = json.load(sys.stdin if args.plan == "-" else open(args.plan, "r", encoding="utf-8"))
    cfg = load_config(args.model)
    ck = Checkpoint(args.model)
    adapter, conf = read_lora_adapter(plan["init_adapter"], cfg)
    r = int(conf["r"])
    scale = conf["lora_alpha"] / (math.sqrt(r) if conf.get("use_rslora") else r)
    model = LoraTrainModel(cfg, ck, adapter, scale)
    params = model.parameters()
    opt_conf = plan["optimizer"]
    opt = torch.optim.AdamW(params, lr=opt_conf["lr"], betas=tuple(opt_conf["betas"]), eps=opt_conf["eps"], weight_decay=opt_conf["weight_decay"], foreach=False)
    total = len(plan["steps"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, hf_lr_lambda(opt_conf["schedule"], total, opt_conf["warmup"]))
    losses: list[float] = []
    norms: list[float] = []
    for step in plan["steps"]:
        opt.zero_grad(set_to_none=True)
        total_loss = 0.0
        weight_value = 1.0 / step["scored_tokens"]
        for mb in step["micro_batches"]:
            ids, positions, bias, loss_index, labels = micro_batch_tensors(mb)
            weight = torch.full((loss_index.shape[0],), weight_value)
            loss = model.loss(ids, positions, bias, loss_index, labels, weight)
            loss.backward()
            total_loss += loss.item()
        if opt_conf["max_grad_norm"] > 0:
            norms.append(float(torch.nn.utils.clip_grad_norm_(params, opt_conf["max_grad_norm"])))
        opt.step()
        sched.step()
        losses.append(total_loss)
    final = {f"{layer}.{target}": {"A": a.detach().reshape(-1).tolist(), "B": b.detach().reshape(-1).tolist()} for (layer, target), (a, b) in sorted(model.lora.items())}
    print(json.dumps({"losses": losses, "grad_norms": norms, "final": final, "torch": torch.__version__}))
    return 0


def blas_library() -> str:
    """Which BLAS this torch calls (Debian's torch goes through the libblas.so.3 alternative)."""
    try:
        with open("/proc/self/maps", "r") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower() and line.split()[-1].startswith("/")}
        return ", ".join(sorted(os.path.basename(os.path.dirname(l)) + "/" + os.path.basename(l) for l in libs)) or "none mapped"
    except OSError:
        return "unknown"


def cmd_train_bench(args: argparse.Namespace) -> int:
    """Time of one LoRA training step (forward, backward, AdamW) on random tokens: PEFT's LoRA on
    --targets with rank --rank, batch --batch x --tokens, every position scored."""
    cfg = load_config(args.model)
    ck = Checkpoint(args.model)
    targets = args.targets.split(",")
    gen = torch.Generator().manual_seed(args.seed)
    adapter = {}
    dims = {"q_proj": (cfg.hidden_size, cfg.q_dim), "k_proj": (cfg.hidden_size, cfg.kv_dim), "v_proj": (cfg.hidden_size, cfg.kv_dim), "o_proj": (cfg.q_dim, cfg.hidden_size),
            "gate_proj": (cfg.hidden_size, cfg.intermediate_size), "up_proj": (cfg.hidden_size, cfg.intermediate_size), "down_proj": (cfg.intermediate_size, cfg.hidden_size)}
    for layer in range(cfg.num_layers):
        for t in targets:
            i, o = dims[t]
            adapter[(layer, t)] = ((torch.rand(args.rank, i, generator=gen) * 2 - 1) / math.sqrt(i), torch.zeros(o, args.rank))
    t0 = time.perf_counter()
    model = LoraTrainModel(cfg, ck, adapter, 2.0)
    load_s = time.perf_counter() - t0
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=False)
    B, S = args.batch, args.tokens
    ids = torch.randint(0, cfg.vocab_size, (B, S), generator=gen)
    positions = torch.arange(S)[None].expand(B, S)
    bias = torch.zeros(S, S).masked_fill(torch.ones(S, S, dtype=torch.bool).triu(1), -1e9)[None, None].expand(B, 1, S, S)
    index = torch.tensor([b * S + s for b in range(B) for s in range(S - 1)])
    labels = ids[:, 1:].reshape(-1)
    weight = torch.full((index.shape[0],), 1.0 / index.shape[0])
    times: list[float] = []
    for rep in range(args.warmup + args.repeats):
        ta = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model.loss(ids, positions, bias, index, labels, weight)
        loss.backward()
        opt.step()
        tb = time.perf_counter()
        if rep >= args.warmup:
            times.append(tb - ta)
    print(json.dumps({
        "step_seconds": median(times),
        "samples": times,
        "tokens_per_second": B * S / median(times),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "blas": blas_library(),
        "load_seconds": load_s,
        "loss": loss.item(),
    }))
    return 0


# --------------------------------------------------------------------------------------------
# Modes
# --------------------------------------------------------------------------------------------


def set_threads(threads: int | None) -> int:
    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    return threads


def parse_tokens(spec: str) -> list[int]:
    text = sys.stdin.read() if spec == "-" else spec
    text = text.strip()
    if text.startswith("["):
        return [int(t) for t in json.loads(text)]
    return [int(t) for t in text.replace(",", " ").split()]


def token_logprobs(logits: torch.Tensor, tokens: list[int]) -> list[float]:
    lp = torch.log_softmax(logits[:-1].double(), dim=-1)
    nxt = torch.tensor(tokens[1:], dtype=torch.long)
    return lp.gather(1, nxt[:, None])[:, 0].tolist()


def fast_all_logits(model: FastModel, tokens: list[int], chunk: int) -> torch.Tensor:
    cache = KVCache(model.cfg, len(tokens))
    parts = []
    for s in range(0, len(tokens), chunk):
        parts.append(model.forward(tokens[s : s + chunk], cache, logits="all"))
    return torch.cat(parts, 0)


def check_tokens(cfg: Config, tokens: list[int]) -> None:
    bad = [t for t in tokens if t < 0 or t >= cfg.vocab_size]
    if bad:
        raise ValueError(f"token ids out of range [0, {cfg.vocab_size}): {bad[:5]}")


def cmd_score(args: argparse.Namespace) -> int:
    cfg = load_config(args.model)
    tokens = parse_tokens(args.tokens)
    if len(tokens) < 1:
        raise ValueError("--tokens: need at least one token")
    check_tokens(cfg, tokens)
    ck = Checkpoint(args.model)
    if len(tokens) == 1:
        logprobs: list[float] = []
    elif args.impl == "reference":
        logprobs = token_logprobs(reference_logits(cfg, ck, tokens), tokens)
    else:
        model = FastModel(cfg, ck, args.backend)
        del ck
        logprobs = token_logprobs(fast_all_logits(model, tokens, args.chunk), tokens)
    print(json.dumps({"tokens": tokens, "logprobs": logprobs}))
    return 0


def cmd_selfcheck(args: argparse.Namespace) -> int:
    cfg = load_config(args.model)
    ck = Checkpoint(args.model)
    model = FastModel(cfg, ck, args.backend)
    n = max(4, args.length)
    gen = torch.Generator().manual_seed(args.seed)
    tokens = torch.randint(0, cfg.vocab_size, (n,), generator=gen).tolist()
    ref = reference_logits(cfg, ck, tokens)  # transformers-literal, whole sequence
    full = model.forward(tokens, KVCache(cfg, n), logits="all")  # fast path, one chunk
    # Cached path: prefill, a multi-token chunk on top of the cache, then one-token steps.
    p1 = max(1, n // 3)
    p2 = min(n - 1, p1 + 3)
    cache = KVCache(cfg, 1)  # deliberately small: exercises the cache growing
    parts = [model.forward(tokens[:p1], cache, logits="all"), model.forward(tokens[p1:p2], cache, logits="all")]
    for t in tokens[p2:]:
        parts.append(model.forward([t], cache, logits="last"))
    cached = torch.cat(parts, 0)
    diff_cached = (cached - full).abs().max().item()
    diff_ref = (full - ref).abs().max().item()
    diff_lp = max(abs(a - b) for a, b in zip(token_logprobs(cached, tokens), token_logprobs(ref, tokens)))
    worst = max(diff_cached, diff_ref)
    ok = worst <= args.tol
    print(
        json.dumps(
            {
                "max_abs_diff": worst,
                "max_abs_diff_cached_vs_full": diff_cached,
                "max_abs_diff_full_vs_reference": diff_ref,
                "max_abs_diff_logprobs_cached_vs_reference": diff_lp,
                "max_abs_logit": ref.abs().max().item(),
                "tokens": n,
                "split": [p1, p2],
                "architecture": cfg.architecture,
                "tied": model.embed is None,
                "biases": model.layers[0].qkv_b is not None,
                "backend": model.backend,
                "tol": args.tol,
                "pass": ok,
            }
        )
    )
    return 0 if ok else 1


def rss_mb() -> float:
    try:
        with open("/proc/self/statm", "r") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def median(xs: list[float]) -> float:
    s = sorted(xs)
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


def cmd_bench(args: argparse.Namespace) -> int:
    cfg = load_config(args.model)
    t0 = time.perf_counter()
    model = FastModel(cfg, Checkpoint(args.model), args.backend)
    load_s = time.perf_counter() - t0
    gen = torch.Generator().manual_seed(args.seed)
    prompt = torch.randint(0, cfg.vocab_size, (args.prompt_tokens,), generator=gen).tolist()
    cache = KVCache(cfg, args.prompt_tokens + args.decode_tokens + 1)
    prefill_tps: list[float] = []
    decode_tps: list[float] = []
    generated: list[int] = []
    for rep in range(args.warmup + args.repeats):
        cache.reset()
        ta = time.perf_counter()
        logits = model.forward(prompt, cache, logits=args.prefill_logits)
        nxt = int(logits[-1].argmax())
        tb = time.perf_counter()
        out = [nxt]
        for _ in range(args.decode_tokens):
            nxt = int(model.forward([nxt], cache, logits="last")[0].argmax())
            out.append(nxt)
        tc = time.perf_counter()
        if rep >= args.warmup:
            prefill_tps.append(args.prompt_tokens / (tb - ta))
            if args.decode_tokens > 0:
                decode_tps.append(args.decode_tokens / (tc - tb))
        generated = out
    print(
        json.dumps(
            {
                "prefill_tokens_per_second": median(prefill_tps),
                "decode_tokens_per_second": median(decode_tps) if decode_tps else None,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "rss_mb": rss_mb(),
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "prefill_samples": prefill_tps,
                "decode_samples": decode_tps,
                "prompt_tokens": args.prompt_tokens,
                "decode_tokens": args.decode_tokens,
                "repeats": args.repeats,
                "warmup": args.warmup,
                "prefill_logits": args.prefill_logits,
                "architecture": cfg.architecture,
                "parameters": model.num_parameters(),
                "backend": model.backend,
                "load_seconds": load_s,
                "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                "generated_head": generated[:8],
            }
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", required=True, help="Hugging Face checkpoint folder (config.json + safetensors)")
        p.add_argument("--threads", type=int, default=None, help="torch threads (default: the CPUs this process may use)")
        p.add_argument("--backend", choices=("auto", "onednn", "blas"), default="auto", help="multi-token matrix products (default: oneDNN when available)")

    ps = sub.add_parser("score", help="log p(tokens[i+1] | tokens[..i]) as one JSON line")
    common(ps)
    ps.add_argument("--tokens", required=True, help="comma/space separated ids, a JSON array, or - to read them from stdin")
    ps.add_argument("--impl", choices=("fast", "reference"), default="fast", help="fast path (default) or the literal transformers transcription")
    ps.add_argument("--chunk", type=int, default=512, help="prefill chunk length of the fast path")

    pb = sub.add_parser("bench", help="prefill + greedy decode throughput as one JSON line")
    common(pb)
    pb.add_argument("--prompt-tokens", type=int, default=512)
    pb.add_argument("--decode-tokens", type=int, default=64)
    pb.add_argument("--repeats", type=int, default=3)
    pb.add_argument("--warmup", type=int, default=1, help="untimed full rounds first")
    pb.add_argument("--seed", type=int, default=0)
    pb.add_argument("--prefill-logits", choices=("last", "all"), default="last", help="lm_head on the last prompt position (default) or on all")

    pt = sub.add_parser("train", help="LoRA training steps from a JSON plan; per-step losses and final weights as one JSON line")
    common(pt)
    pt.add_argument("--plan", default="-", help="the plan file (default: stdin)")

    ptb = sub.add_parser("train-bench", help="time of one LoRA training step as one JSON line")
    common(ptb)
    ptb.add_argument("--tokens", type=int, default=256)
    ptb.add_argument("--batch", type=int, default=1)
    ptb.add_argument("--rank", type=int, default=8)
    ptb.add_argument("--targets", default="q_proj,v_proj")
    ptb.add_argument("--repeats", type=int, default=3)
    ptb.add_argument("--warmup", type=int, default=1)
    ptb.add_argument("--seed", type=int, default=0)

    pc = sub.add_parser("selfcheck", help="cached vs full vs transformers-literal logits; exit 1 above --tol")
    common(pc)
    pc.add_argument("--length", type=int, default=24)
    pc.add_argument("--tol", type=float, default=1e-4)
    pc.add_argument("--seed", type=int, default=0)

    args = ap.parse_args(argv)
    if getattr(args, "chunk", 1) < 1:
        ap.error("--chunk must be >= 1")
    if args.mode == "bench" and (args.prompt_tokens < 1 or args.decode_tokens < 0 or args.repeats < 1 or args.warmup < 0):
        ap.error("--prompt-tokens >= 1, --decode-tokens >= 0, --repeats >= 1, --warmup >= 0")
    set_threads(args.threads)
    try:
        if args.mode == "train":
            return cmd_train(args)
        if args.mode == "train-bench":
            return cmd_train_bench(args)
        with torch.inference_mode():
            if args.mode == "score":
                return cmd_score(args)
            if args.mode == "bench":
                return cmd_bench(args)
            return cmd_selfcheck(args)
    except Exception as e:  # exit 2 (argparse's status too); 1 is reserved for a failed selfcheck
        traceback.print_exc()
        print(f"llama_reference {args.mode}: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
