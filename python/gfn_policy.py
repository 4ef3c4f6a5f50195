"""Load a policy written by `gfn export` and evaluate it on HyperGrid states, without gfn.

Needs only numpy and safetensors. The file layout is documented in docs/export.md.

    policy = load("policy.safetensors")
    policy.log_pf(states)   # [N, ndim + 1] log P_F(a | s); forbidden actions are -inf
    policy.log_pb(states)   # [N, ndim] log P_B(parent | s) (learned or uniform), where present
    policy.log_f(states)    # [N] log F(s), where present (DB, SubTB)
    policy.log_z            # float, where present (TB); else None

States are integer coordinates, shape [N, ndim], each in 0..height-1. The computation is done
in float64 from gfn's float32 weights; it matches gfn's float32 log-probabilities to about 1e-6.
gfn itself writes -1e9 (`masked_logit` in the metadata) over forbidden logits before its
log-softmax, which gives those actions probability exactly 0; this loader returns -inf there,
which is the same probability.

Command line (used by gfn's tests):

    python gfn_policy.py policy.safetensors [states.json]

prints JSON: {"metadata": {...}, "log_pf": [[...]], "log_pb": ..., "log_f": ..., "log_z": ...},
with -inf written as null. states.json holds a list of states (lists of ints); without it, every
grid state in gfn's canonical order (first coordinate most significant).
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np
from safetensors.numpy import load_file
from safetensors import safe_open

FORMAT = "gfn-policy"
FORMAT_VERSIONS = ("1",)


def _flag(meta: dict, key: str) -> bool:
    return meta.get(key, "false") == "true"


def _log_softmax(logits: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Log-softmax over the allowed entries of each row; forbidden entries (and rows with none
    allowed) are -inf."""
    masked = np.where(allowed, logits, -np.inf)
    top = masked.max(axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lse = np.log(np.exp(masked - top).sum(axis=1, keepdims=True)) + top
        out = masked - lse
    return np.where(allowed, out, -np.inf)


class Policy:
    """The estimators of one exported checkpoint (the mean network, when layers are noisy)."""

    def __init__(self, tensors: dict, meta: dict):
        if meta.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file (format = {meta.get('format')!r})")
        if meta.get("format_version") not in FORMAT_VERSIONS:
            raise ValueError(f"format_version {meta.get('format_version')!r} is not supported")
        self.metadata = meta
        self.tensors = {k: v.astype(np.float64) for k, v in tensors.items()}
        self.ndim = int(meta["ndim"])
        self.height = int(meta["height"])
        self.preprocessor = meta["preprocessor"]
        self.tabular = _flag(meta, "tabular")
        self.slope = float(meta["leaky_relu_slope"])
        self.uniform_pb = _flag(meta, "uniform_pb")
        self.step = int(meta["step"])
        z = self.tensors.get("log_z")
        self.log_z = None if z is None else float(z.reshape(-1)[0])

    # States and their encoding -------------------------------------------------------------

    def _check(self, states) -> np.ndarray:
        s = np.asarray(states)
        if s.ndim != 2 or s.shape[1] != self.ndim:
            raise ValueError(f"states must have shape [N, {self.ndim}], got {s.shape}")
        if not np.issubdtype(s.dtype, np.integer) and s.size:
            raise ValueError("states must be integers")
        if s.size and (s.min() < 0 or s.max() >= self.height):
            raise ValueError(f"coordinates must be in 0..{self.height - 1}")
        return s.astype(np.int64)

    def index(self, states) -> np.ndarray:
        """gfn's canonical index: sum of s_j * H^(D-1-j)."""
        s = self._check(states)
        strides = self.height ** np.arange(self.ndim - 1, -1, -1, dtype=np.int64)
        return s @ strides

    def all_states(self) -> np.ndarray:
        """Every grid state in canonical order, [H^D, D]."""
        idx = np.arange(self.height**self.ndim, dtype=np.int64)
        return np.stack([(idx // self.height**(self.ndim - 1 - j)) % self.height
                         for j in range(self.ndim)], axis=1)

    def encode(self, states) -> np.ndarray:
        """The network input of the preprocessor (khot, onehot or identity)."""
        s = self._check(states)
        n = len(s)
        if self.preprocessor == "khot":
            x = np.zeros((n, self.ndim * self.height))
            cols = np.arange(self.ndim) * self.height + s
            x[np.arange(n)[:, None], cols] = 1.0
            return x
        if self.preprocessor == "onehot":
            x = np.zeros((n, self.height**self.ndim))
            x[np.arange(n), self.index(s)] = 1.0
            return x
        if self.preprocessor == "identity":
            return s.astype(np.float64)
        raise ValueError(f"preprocessor {self.preprocessor!r} has no dense encoding")

    # Networks ------------------------------------------------------------------------------

    def _trunk(self, prefix: str, x: np.ndarray) -> np.ndarray:
        i = 0
        while f"{prefix}.{i}.weight" in self.tensors:
            x = x @ self.tensors[f"{prefix}.{i}.weight"].T + self.tensors[f"{prefix}.{i}.bias"]
            x = np.where(x > 0, x, self.slope * x)
            i += 1
        return x

    def _estimator(self, name: str, states) -> np.ndarray:
        """Raw outputs of estimator `name` (pf, pb or logf), [N, outputs]."""
        if self.tabular:
            table = self.tensors[f"{name}.table"]
            return table[self.index(states)] + self.tensors[f"{name}.table_bias"]
        x = self.encode(states)
        h = self._trunk("shared", x) if "shared.0.weight" in self.tensors else \
            self._trunk(f"{name}.trunk", x)
        return h @ self.tensors[f"{name}.head.weight"].T + self.tensors[f"{name}.head.bias"]

    def has(self, name: str) -> bool:
        key = f"{name}.table" if self.tabular else f"{name}.head.weight"
        return key in self.tensors

    # Policies ------------------------------------------------------------------------------

    def log_pf(self, states) -> np.ndarray:
        """log P_F(a | s), [N, ndim + 1] (the last action is exit); -inf where forbidden."""
        s = self._check(states)
        allowed = np.concatenate([s < self.height - 1, np.ones((len(s), 1), bool)], axis=1)
        return _log_softmax(self._estimator("pf", s), allowed)

    def log_pb(self, states) -> np.ndarray:
        """log P_B of undoing action d at s, [N, ndim]; -inf where s_d = 0 (the origin's row
        is all -inf: it has no parent). Uniform over the parents with uniform PB."""
        s = self._check(states)
        allowed = s > 0
        if self.has("pb"):
            return _log_softmax(self._estimator("pb", s), allowed)
        if self.uniform_pb:
            n = allowed.sum(axis=1, keepdims=True).astype(np.float64)
            with np.errstate(divide="ignore"):
                return np.where(allowed, -np.log(np.maximum(n, 1.0)), -np.inf)
        raise ValueError(f"this policy has no backward policy (loss {self.metadata['loss']})")

    def log_f(self, states) -> np.ndarray:
        """log F(s), [N]."""
        if not self.has("logf"):
            raise ValueError(f"this policy has no state flow (loss {self.metadata['loss']})")
        return self._estimator("logf", states)[:, 0]

    def has_pb(self) -> bool:
        return self.has("pb") or self.uniform_pb


def load(path: str) -> Policy:
    """Loads a file written by `gfn export`."""
    with safe_open(path, framework="numpy") as f:
        meta = f.metadata() or {}
    return Policy(load_file(path), meta)


def _json_rows(a: np.ndarray):
    return [[None if math.isinf(v) and v < 0 else float(v) for v in row] for row in a]


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: gfn_policy.py POLICY.safetensors [STATES.json]", file=sys.stderr)
        return 2
    policy = load(argv[1])
    if len(argv) == 3:
        with open(argv[2]) as f:
            states = np.asarray(json.load(f), dtype=np.int64).reshape(-1, policy.ndim)
    else:
        states = policy.all_states()
    out = {"metadata": policy.metadata, "log_pf": _json_rows(policy.log_pf(states))}
    out["log_pb"] = _json_rows(policy.log_pb(states)) if policy.has_pb() else None
    out["log_f"] = policy.log_f(states).tolist() if policy.has("logf") else None
    out["log_z"] = policy.log_z
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
