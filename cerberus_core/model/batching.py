"""The order batches come in: for training, random or random with similar lengths together;
for scoring, longest first.

A batch is padded to its longest pair, so random batches of WikiQA pairs (9 to 128
tokens) compute a lot of padding. Length grouping (the "mega-batch" scheme of Hugging
Face's LengthGroupedSampler and fairseq): cut the epoch's random permutation into pools
of `pool_batches` batches, sort each pool by length, cut it into batches, then shuffle the
order of all batches. Which pairs meet in a pool and the order of batches stay random;
only the pairs inside one batch are chosen by length.

Every tokenization of pairs goes through `encode_pairs`, which first cuts each text to
`MAX_CHARS_PER_TOKEN` characters per allowed token: a 50 MB line is never tokenized whole
to keep its first 32 tokens. The cut keeps at least max_length tokens of any text whose
tokens are shorter than that on average (a WordPiece word longer than 100 characters is one
unknown token), so what the model sees is unchanged.

Scoring (`inference_batches`) tokenizes a chunk of pairs once, unpadded, sorts it by token
count and cuts it into batches padded only to their own longest: with WikiQA's lengths a
batch of the given order is about 40% padding, a sorted one almost none. The longest batch
comes first, so a batch size that does not fit memory fails at once.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

MAX_CHARS_PER_TOKEN = 1000


def clip_text(text: str, max_length: int) -> str:
    """`text` cut to what max_length tokens could cover (see the module docstring)."""
    limit = max_length * MAX_CHARS_PER_TOKEN
    return text if len(text) <= limit else text[:limit]


def encode_pairs(tokenizer, pairs, max_length: int, **kwargs: Any):
    """The tokenizer over (question, candidate) pairs, each text clipped first, truncated
    longest-first to max_length tokens."""
    return tokenizer([clip_text(q, max_length) for q, _ in pairs], [clip_text(c, max_length) for _, c in pairs],
                     truncation="longest_first", max_length=max_length, **kwargs)


def sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Indices longest first (ties in input order) cut into batches of batch_size."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def inference_batches(tokenizer, pairs: Sequence[tuple[str, str]], max_length: int, batch_size: int,
                      chunk_pairs: int | None = None) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
    """(indices into `pairs`, model inputs) per batch, longest first within each chunk of
    `chunk_pairs` pairs (default: 64 batches, at least 4096 pairs; rounded up to whole batches),
    padded on the right (the heads read position 0) only to the batch's own longest pair."""
    chunk = -(-(chunk_pairs or max(64 * batch_size, 4096)) // batch_size) * batch_size
    for start in range(0, len(pairs), chunk):
        enc = encode_pairs(tokenizer, pairs[start : start + chunk], max_length)
        lengths = np.fromiter(map(len, enc["input_ids"]), dtype=np.int64, count=len(enc["input_ids"]))
        real = np.arange(lengths.max()) < lengths[:, None]  # (chunk, longest): True on tokens
        arrays = {"attention_mask": real.astype(np.int64)}
        pads = {"input_ids": tokenizer.pad_token_id or 0, "token_type_ids": getattr(tokenizer, "pad_token_type_id", 0)}
        for name, pad in pads.items():
            if name in enc:
                arrays[name] = np.full(real.shape, pad, dtype=np.int64)
                arrays[name][real] = np.fromiter((t for ids in enc[name] for t in ids), dtype=np.int64,
                                                 count=int(lengths.sum()))
        for index in sorted_batches(lengths, batch_size):
            width = int(lengths[index[0]])
            yield start + index, {name: torch.from_numpy(a[index, :width]) for name, a in arrays.items()}


def epoch_batches(lengths: torch.Tensor, batch_size: int, seed: int, epoch: int,
                  pool_batches: int = 0) -> list[torch.Tensor]:
    """The batches of one epoch, each a tensor of pair indices; every pair appears once.

    With pool_batches <= 1 these are the plain random batches (the order earlier runs used:
    a permutation seeded by seed * 1000 + epoch, cut in order). The last batch may be short.
    """
    generator = torch.Generator().manual_seed(seed * 1000 + epoch)
    order = torch.randperm(len(lengths), generator=generator)
    if pool_batches <= 1:
        return list(order.split(batch_size))
    batches = []
    for pool in order.split(batch_size * pool_batches):  # only the last pool can be short
        by_length = pool[torch.sort(lengths[pool], stable=True, descending=True).indices]
        batches.extend(by_length.split(batch_size))
    last = batches.pop() if len(batches[-1]) < batch_size else None
    batches = [batches[i] for i in torch.randperm(len(batches), generator=generator)]
    return batches + ([last] if last is not None else [])  # a short batch stays last (it may be dropped)


def padding_share(lengths: torch.Tensor, batches: list[torch.Tensor]) -> float:
    """Share of the computed positions that are padding when each batch pads to its longest."""
    computed = sum(int(lengths[b].max()) * len(b) for b in batches)
    return 1 - float(lengths.sum()) / computed


def pair_lengths(tokenizer, pairs: list[tuple[str, str]], max_length: int) -> torch.Tensor:
    """Tokens per (question, candidate) pair after truncation, as the training batches see them."""
    enc = encode_pairs(tokenizer, pairs, max_length)
    return torch.tensor([len(ids) for ids in enc["input_ids"]])
