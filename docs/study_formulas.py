"""Trainable-parameter counts of every technique in docs/study.md, as closed formulas.

Plain Python (no torch, no peftlab): a BERT-style encoder with a sequence
classification head is described by a few sizes (`Dims`), and each function
returns how many parameters the technique trains at the given settings. The
classifier head counts: every technique except full fine-tuning freezes the
pre-trained model and trains a new head of d*C + C weights (peft keeps a
trainable copy of it, `modules_to_save`). tests/docs/test_study_formulas.py
checks each formula against `sdk.count_parameters` on BERT-base and
all-MiniLM-L6-v2 with the technique bundles themselves.

Run `python docs/study_formulas.py` to print the table used in the study.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Dims:
    """Sizes of a BERT encoder with a classification head."""

    layers: int  # L
    hidden: int  # d
    intermediate: int  # d_ff
    vocab: int = 30522  # V
    positions: int = 512  # P
    token_types: int = 2  # T
    classes: int = 2  # C

    @classmethod
    def from_config(cls, config: object, classes: int = 2) -> Dims:
        """Read the sizes from a transformers BertConfig (or anything with the same fields)."""
        return cls(
            layers=int(config.num_hidden_layers),
            hidden=int(config.hidden_size),
            intermediate=int(config.intermediate_size),
            vocab=int(config.vocab_size),
            positions=int(config.max_position_embeddings),
            token_types=int(config.type_vocab_size),
            classes=classes,
        )


BERT_BASE = Dims(layers=12, hidden=768, intermediate=3072)
MINILM = Dims(layers=6, hidden=384, intermediate=1536)


def head(m: Dims) -> int:
    """The new classifier: a d x C linear layer with bias."""
    return m.hidden * m.classes + m.classes


def encoder_layer(m: Dims) -> int:
    """One transformer layer: Q, K, V, O (with biases), two LayerNorms, the two FFN linears."""
    d, f = m.hidden, m.intermediate
    return 4 * (d * d + d) + 2 * (2 * d) + (d * f + f) + (f * d + d)


def full(m: Dims) -> int:
    """Every weight: embeddings (+ LayerNorm), L layers, pooler, head."""
    d = m.hidden
    embeddings = (m.vocab + m.positions + m.token_types) * d + 2 * d
    return embeddings + m.layers * encoder_layer(m) + (d * d + d) + head(m)


def head_only(m: Dims, unfreeze_last_layers: int = 0) -> int:
    return head(m) + min(unfreeze_last_layers, m.layers) * encoder_layer(m)


def _square_targets(m: Dims, targets: int) -> list[tuple[int, int]]:
    """(in, out) of the adapted projections: `targets` d x d projections in each layer
    (query and value by default)."""
    return [(m.hidden, m.hidden)] * (targets * m.layers)


def lora(m: Dims, r: int = 8, targets: int = 2) -> int:
    """B (out x r) and A (r x in) per adapted projection."""
    return sum(r * (i + o) for i, o in _square_targets(m, targets)) + head(m)


def dora(m: Dims, r: int = 8, targets: int = 2) -> int:
    """LoRA plus one magnitude per output feature of each adapted projection."""
    return lora(m, r, targets) + sum(o for _, o in _square_targets(m, targets))


def rslora(m: Dims, r: int = 8, targets: int = 2) -> int:
    """Same matrices as LoRA; only the scaling changes (alpha / sqrt(r))."""
    return lora(m, r, targets)


def qlora(m: Dims, r: int = 8, targets: int = 2) -> int:
    """LoRA's count: the 4-bit base is frozen, the adapters are the same."""
    return lora(m, r, targets)


def adalora(m: Dims, init_r: int = 12, targets: int = 2) -> int:
    """P (out x r), Q (r x in) and the r singular values E per projection; the budget
    pruning zeroes entries of E but keeps every parameter."""
    return sum(init_r * (i + o + 1) for i, o in _square_targets(m, targets)) + head(m)


def ia3(m: Dims) -> int:
    """Scaling vectors: keys (d) and values (d) rescaled at the output, the FFN output layer
    rescaled at its input (d_ff), in every layer."""
    return m.layers * (2 * m.hidden + m.intermediate) + head(m)


def loha(m: Dims, r: int = 8, targets: int = 2) -> int:
    """Two low-rank pairs per projection: (B1 A1) * (B2 A2)."""
    return sum(2 * r * (i + o) for i, o in _square_targets(m, targets)) + head(m)


def factorization(dimension: int, factor: int = -1) -> tuple[int, int]:
    """dimension = a * b with a <= b and a as close to sqrt(dimension) as the divisors allow
    (or to `factor`); the split LoKr uses for each side of a weight."""
    if factor > 0 and dimension % factor == 0:
        return factor, dimension // factor
    limit = dimension if factor == -1 else factor
    a, b = 1, dimension
    length = a + b  # as peft writes it: the first split's sum, never updated
    while a < b:
        new_a = a + 1
        while dimension % new_a:
            new_a += 1
        new_b = dimension // new_a
        if new_a + new_b > length or new_a > limit:
            break
        a, b = new_a, new_b
    return min(a, b), max(a, b)


def lokr_module(
    d_in: int, d_out: int, r: int = 8, decompose_both: bool = False, factor: int = -1
) -> int:
    """W = W1 (x) W2 with out = a*b, in = c*e: W1 is a x c, W2 is b x e; each factor is kept
    whole unless r is below half its larger side, then it is a rank-r product."""
    (a, b), (c, e) = factorization(d_out, factor), factorization(d_in, factor)
    w1 = a * c if not (decompose_both and r < max(a, c) / 2) else r * (a + c)
    w2 = b * e if not r < max(b, e) / 2 else r * (b + e)
    return w1 + w2


def lokr(m: Dims, r: int = 8, targets: int = 2) -> int:
    return sum(lokr_module(i, o, r) for i, o in _square_targets(m, targets)) + head(m)


def vera(m: Dims, r: int = 256, targets: int = 2) -> int:
    """Per projection a vector b (out) and a vector d (r); the random A and B are shared,
    frozen buffers."""
    return sum(o + r for _, o in _square_targets(m, targets)) + head(m)


def prefix_tuning(m: Dims, n: int = 20, projection_hidden: int | None = None) -> int:
    """A key and a value vector per virtual token and layer; with the reparameterisation,
    one n x d embedding through an MLP d -> h -> 2 L d instead."""
    out = m.layers * 2 * m.hidden
    if projection_hidden is None:
        return n * out + head(m)
    h = projection_hidden
    return n * m.hidden + (m.hidden * h + h) + (h * out + out) + head(m)


def prompt_tuning(m: Dims, n: int = 20) -> int:
    """n virtual token embeddings of size d."""
    return n * m.hidden + head(m)


def p_tuning(m: Dims, n: int = 20, e: int = 128, kind: str = "MLP", lstm_layers: int = 2) -> int:
    """n embeddings plus the prompt encoder: an MLP d -> e -> e -> d, or a bidirectional
    LSTM (hidden e) followed by an MLP 2e -> 2e -> d."""
    d = m.hidden
    if kind == "MLP":
        encoder = (d * e + e) + (e * e + e) + (e * d + d)
    else:
        lstm = 0
        for layer in range(lstm_layers):
            inputs = d if layer == 0 else 2 * e
            lstm += 2 * 4 * (e * inputs + e * e + 2 * e)  # 2 directions, 4 gates, 2 biases
        encoder = lstm + (2 * e * 2 * e + 2 * e) + (2 * e * d + d)
    return n * d + encoder + head(m)


def adapter(m: Dims, reduction_factor: int = 16, placement: str = "houlsby") -> int:
    """A bottleneck d -> d/k -> d (with biases) after the attention and the FFN sub-layers
    (Houlsby) or after the FFN only (Pfeiffer)."""
    d = m.hidden
    k = max(1, d // reduction_factor)
    per_adapter = (d * k + k) + (k * d + d)
    return m.layers * (2 if placement == "houlsby" else 1) * per_adapter + head(m)


def oft(m: Dims, block: int = 32, targets: int = 2) -> int:
    """Per projection d_in / b skew-symmetric b x b blocks, stored as their b(b-1)/2 entries
    above the diagonal: d_in (b - 1) / 2."""
    return sum(i // block * (block * (block - 1) // 2) for i, _ in _square_targets(m, targets)) + (
        head(m)
    )


def boft(m: Dims, block: int = 4, factors: int = 1, targets: int = 2) -> int:
    """Per projection `factors` butterfly factors of d_in / b full b x b blocks (peft keeps the
    whole block and takes its skew-symmetric part), plus a scale per output feature."""
    return sum(factors * i * block + o for i, o in _square_targets(m, targets)) + head(m)


def ln_tuning(m: Dims) -> int:
    """A gain and a bias (2d) per LayerNorm: the embeddings' and two in each layer."""
    return (2 * m.layers + 1) * 2 * m.hidden + head(m)


def fourierft(m: Dims, n_frequency: int = 1000, targets: int = 2) -> int:
    """n spectral coefficients per projection, whatever its size."""
    return n_frequency * len(_square_targets(m, targets)) + head(m)


def hra(m: Dims, r: int = 8, targets: int = 2) -> int:
    """r Householder vectors of size d_in per projection."""
    return sum(r * i for i, _ in _square_targets(m, targets)) + head(m)


def vblora(
    m: Dims, r: int = 4, num_vectors: int = 256, vector_length: int = 64, targets: int = 2
) -> int:
    """One shared bank (num_vectors x length) plus, per projection, logits over the bank for
    each of the r (d_in + d_out) / length sub-vectors of A and B."""
    logits = sum(r * (i + o) // vector_length * num_vectors for i, o in _square_targets(m, targets))
    return num_vectors * vector_length + logits + head(m)


def miss(m: Dims, r: int = 64, targets: int = 2) -> int:
    """One r x d_out shard matrix per projection."""
    return sum(r * o for _, o in _square_targets(m, targets)) + head(m)


@dataclass(frozen=True)
class Case:
    """A row of the study's table: a technique bundle at some params, and its formula."""

    name: str
    technique: str
    params: dict
    formula: Callable[[Dims], int]


# the technique bundles' defaults (plugin.yaml) unless a row says otherwise
CASES = [
    Case("full", "full", {}, full),
    Case("head_only", "head_only", {}, head_only),
    Case(
        "head_only (last 2 layers)",
        "head_only",
        {"unfreeze_last_layers": 2},
        lambda m: head_only(m, 2),
    ),
    Case("lora (r=8, q,v)", "lora", {}, lora),
    Case("dora (r=8, q,v)", "lora", {"use_dora": True}, dora),
    Case("rslora (r=8, q,v)", "lora", {"use_rslora": True}, rslora),
    Case("pissa (r=8, q,v)", "lora", {"init_lora_weights": "pissa"}, lora),
    Case("olora (r=8, q,v)", "lora", {"init_lora_weights": "olora"}, lora),
    Case("eva (r=8, q,v)", "lora", {"init_lora_weights": "eva"}, lora),
    Case("corda (r=8, q,v)", "lora", {"init_lora_weights": "corda"}, lora),
    Case("qlora (r=8, q,v)", "qlora", {}, qlora),
    Case("adalora (init_r=12, q,v)", "adalora", {}, adalora),
    Case("ia3 (k, v, ffn out)", "ia3", {}, ia3),
    Case("loha (r=8, q,v)", "loha", {}, loha),
    Case("lokr (r=8, q,v)", "lokr", {}, lokr),
    Case("vera (r=256, q,v)", "vera", {}, vera),
    Case("vblora (r=4, 256 x 64 bank, q,v)", "vblora", {}, vblora),
    Case("miss (r=64, q,v)", "miss", {}, miss),
    Case("oft (block 32, q,v)", "oft", {}, oft),
    Case("boft (block 4, 1 factor, q,v)", "boft", {}, boft),
    Case("hra (r=8, q,v)", "hra", {}, hra),
    Case("fourierft (n=1000, q,v)", "fourierft", {}, fourierft),
    Case("ln_tuning (every LayerNorm)", "ln_tuning", {}, ln_tuning),
    Case("prefix_tuning (n=20)", "prefix_tuning", {}, prefix_tuning),
    Case(
        "prefix_tuning (n=20, MLP 512)",
        "prefix_tuning",
        {"prefix_projection": True},
        lambda m: prefix_tuning(m, 20, 512),
    ),
    Case("prompt_tuning (n=20)", "prompt_tuning", {}, prompt_tuning),
    Case("p_tuning (n=20, MLP 128)", "p_tuning", {}, p_tuning),
    Case(
        "p_tuning (n=20, LSTM 128)",
        "p_tuning",
        {"encoder_reparameterization_type": "LSTM"},
        lambda m: p_tuning(m, kind="LSTM"),
    ),
    Case("adapter (houlsby, d/16)", "adapter", {}, adapter),
    Case(
        "adapter (pfeiffer, d/16)",
        "adapter",
        {"placement": "pfeiffer"},
        lambda m: adapter(m, placement="pfeiffer"),
    ),
]


def table() -> str:
    """The Markdown table of docs/study.md: trainable parameters and share of the model."""
    lines = [
        "| technique (settings) | BERT-base trainable | % of BERT-base | MiniLM trainable | % of MiniLM |",
        "|---|---:|---:|---:|---:|",
    ]
    for case in CASES:
        cells = []
        for dims in (BERT_BASE, MINILM):
            n = case.formula(dims)
            cells += [f"{n:,}", f"{100 * n / full(dims):.3f}"]
        lines.append(f"| {case.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
