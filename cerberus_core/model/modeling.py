"""CERBERUS B_b kH_h: a shared transformer body, k ranking heads, and a pooler.

The body is a pretrained encoder cut after its first `b` layers. Each head is an
*independent copy* of the next `h` layers plus its own scorer on the first-token
state, so heads share nothing but the body (the released code aliased one donor
model's layers, which safetensors refuses; we copy instead). A teacher is simply a
`CerberusForRanking` with one head.

The scorer has two logits (negative, positive), as in the released code. A head's
ranking score is its logit margin `z1 - z0`; the pooled score is a probability of
the positive class under the chosen pooler.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.masking_utils import create_bidirectional_mask
from transformers.utils import ModelOutput

from .batched_heads import batched_heads_forward, can_batch
from .batching import inference_batches
from .choices import HEAD_INITS, MAX_HEADS, MAX_LAYERS, POOLERS
from ..errors import InputError



class CerberusConfig(PretrainedConfig):
    """Backbone config (nested, any BERT-style encoder) plus the B_b kH_h split."""

    model_type = "cerberus"

    def __init__(
        self,
        backbone: dict[str, Any] | None = None,
        body_layers: int = 0,
        num_heads: int = 1,
        head_layers: int = 1,
        pooler: str = "mean_prob",
        head_init: str = "copy",
        classifier_dropout: float = 0.1,
        backbone_name: str | None = None,
        **kwargs: Any,
    ):
        if pooler not in POOLERS:
            raise ValueError(f"pooler must be one of {POOLERS}, got {pooler!r}")
        if head_init not in HEAD_INITS:
            raise ValueError(f"head_init must be one of {HEAD_INITS}, got {head_init!r}")
        if num_heads < 1 or head_layers < 0 or body_layers < 0:
            raise ValueError("need num_heads >= 1, head_layers >= 0, body_layers >= 0")
        if num_heads > MAX_HEADS or max(head_layers, body_layers) > MAX_LAYERS:  # before anything is allocated
            raise ValueError(f"{num_heads} heads of {head_layers} layers on a body of {body_layers}: at most "
                             f"{MAX_HEADS} heads and {MAX_LAYERS} layers each are supported")
        if backbone is not None:
            depth = backbone.get("num_hidden_layers")
            if depth is not None and body_layers + head_layers > depth:
                raise ValueError(
                    f"body_layers + head_layers = {body_layers + head_layers} exceeds the "
                    f"backbone's {depth} layers"
                )
        self.backbone = backbone
        self.body_layers = body_layers
        self.num_heads = num_heads
        self.head_layers = head_layers
        self.pooler = pooler
        self.head_init = head_init
        self.classifier_dropout = classifier_dropout
        self.backbone_name = backbone_name
        kwargs.setdefault("num_labels", 2)
        super().__init__(**kwargs)

    def backbone_config(self, num_layers: int | None = None) -> PretrainedConfig:
        """The backbone's own config, optionally with a different layer count."""
        values = dict(self.backbone or {})
        model_type = values.pop("model_type")
        if num_layers is not None:
            values["num_hidden_layers"] = num_layers
        return AutoConfig.for_model(model_type, **values)

    @property
    def name(self) -> str:
        """Paper notation, e.g. B5 3H1."""
        return f"B{self.body_layers} {self.num_heads}H{self.head_layers}"


@dataclass
class CerberusOutput(ModelOutput):
    """`scores`: pooled positive-class probability per pair; `head_logits`: (batch, k, 2)."""

    scores: torch.Tensor | None = None
    pooled_logits: torch.Tensor | None = None
    head_logits: torch.Tensor | None = None
    head_states: torch.Tensor | None = None


class Scorer(nn.Module):
    """Classification head on the first-token state (as ELECTRA/RoBERTa's)."""

    def __init__(self, hidden: int, dropout: float, num_labels: int = 2):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(hidden, num_labels)

    def forward(self, cls_state: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.dense(self.dropout(cls_state)))
        return self.out_proj(self.dropout(x))


def _encoder_class(config: PretrainedConfig) -> type[nn.Module]:
    """The layer-stack class of an architecture (BertEncoder, MPNetEncoder, ...), found
    by building the model on the meta device so no memory is spent."""
    with torch.device("meta"):
        model = AutoModel.from_config(config)
    if not hasattr(model, "encoder") or not hasattr(model.encoder, "layer"):
        raise ValueError(
            f"{type(model).__name__} has no BERT-style `encoder.layer` stack; "
            "CERBERUS needs an encoder like BERT, RoBERTa, ELECTRA or MPNet"
        )
    return type(model.encoder)


class RankingHead(nn.Module):
    """h transformer layers (a copy of backbone layers [b, b+h)) + a scorer."""

    def __init__(self, config: CerberusConfig, attn_implementation: str | None):
        super().__init__()
        layer_config = config.backbone_config(num_layers=config.head_layers)
        layer_config._attn_implementation = attn_implementation  # heads read the body's mask format
        self.encoder = _encoder_class(layer_config)(layer_config)
        self.scorer = Scorer(layer_config.hidden_size, config.classifier_dropout, config.num_labels)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        states = self.encoder(hidden, attention_mask=mask)[0]
        cls_state = states[:, 0]
        return self.scorer(cls_state), cls_state


class CerberusForRanking(PreTrainedModel):
    config_class = CerberusConfig
    base_model_prefix = "cerberus"
    _no_split_modules: list[str] = []

    def __init__(self, config: CerberusConfig):
        super().__init__(config)
        body_config = config.backbone_config(num_layers=config.body_layers)
        self.body = AutoModel.from_config(body_config)
        if getattr(self.body, "pooler", None) is not None:
            self.body.pooler = None  # heads score the first-token state themselves
        attn = self.body.config._attn_implementation
        self.heads = nn.ModuleList(RankingHead(config, attn) for _ in range(config.num_heads))
        hidden = body_config.hidden_size
        self.pool = (
            nn.Linear(config.num_heads * hidden, config.num_labels)
            if config.pooler == "learned"
            else None
        )
        self.tokenizer: PreTrainedTokenizerBase | None = None
        # runtime switch, not saved: the batched path (batched_heads.py) or the per-head loop
        self.batched_heads = True
        self._stacked: dict = {}  # the heads' stacked weights, reused across inference calls
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        std = getattr(self.config.backbone_config(), "initializer_range", 0.02)
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    # ---------------------------------------------------------------- building
    @classmethod
    def from_backbone(
        cls,
        backbone: str | PreTrainedModel,
        body_layers: int | None = None,
        num_heads: int = 1,
        head_layers: int = 1,
        pooler: str = "mean_prob",
        head_init: str = "copy",
        classifier_dropout: float = 0.1,
        tokenizer: PreTrainedTokenizerBase | str | None = None,
    ) -> CerberusForRanking:
        """Build B_b kH_h from a pretrained encoder: an embedded name (`minilm-l6`), a
        local folder, a hub id, or an already loaded model.

        body_layers defaults to depth - head_layers, as in the released code. The new weights
        (scorers, independent heads) come from torch's global RNG: seed it first to reproduce them.
        """
        name = backbone if isinstance(backbone, str) else getattr(backbone, "name_or_path", None)
        if isinstance(backbone, str):
            from .zoo import resolve_model

            path = resolve_model(backbone)
            if Path(path).is_dir():
                from .modelfiles import refuse_custom_code

                refuse_custom_code(path)
            try:
                backbone = AutoModel.from_pretrained(path, trust_remote_code=False)
            except OSError as err:
                raise InputError(path, "not an embedded model name (minilm-l3, minilm-l6, mpnet-base), a model "
                                       f"folder or a reachable hub id: {str(err).splitlines()[0]}") from None
            except ValueError as err:  # e.g. a hub repository that needs its own code, which is never run
                raise InputError(path, f"cannot load the backbone: {str(err).strip().splitlines()[0]}") from None
            tokenizer = tokenizer or path
        depth = backbone.config.num_hidden_layers
        if body_layers is None:
            body_layers = depth - head_layers
        backbone_dict = backbone.config.to_dict()
        config = CerberusConfig(
            backbone=backbone_dict,
            body_layers=body_layers,
            num_heads=num_heads,
            head_layers=head_layers,
            pooler=pooler,
            head_init=head_init,
            classifier_dropout=classifier_dropout,
            backbone_name=name,
        )
        model = cls(config)
        model._load_backbone(backbone.state_dict())
        if isinstance(tokenizer, str):
            tokenizer = load_tokenizer(tokenizer)
        model.tokenizer = tokenizer
        return model.eval()

    def _load_backbone(self, state: dict[str, torch.Tensor]) -> None:
        """Copy embeddings + layers [0, b) into the body and layers [b, b+h) into every head."""
        b, h = self.config.body_layers, self.config.head_layers
        layer_key = re.compile(r"^encoder\.layer\.(\d+)\.(.*)$")
        body_state, head_state = {}, {}
        for key, tensor in state.items():
            match = layer_key.match(key)
            if match is None:
                if key.startswith("encoder."):  # e.g. MPNet's relative attention bias
                    body_state[key] = tensor
                    head_state[key[len("encoder.") :]] = tensor
                elif not key.startswith("pooler."):
                    body_state[key] = tensor
                continue
            index, rest = int(match.group(1)), match.group(2)
            if index < b:
                body_state[key] = tensor
            elif index < b + h:
                head_state[f"layer.{index - b}.{rest}"] = tensor
        self._strict_load(self.body, body_state, "body")
        for head in self.heads:
            self._strict_load(head.encoder, {k: v.clone() for k, v in head_state.items()}, "head")
        if self.config.head_init == "copy":
            for head in self.heads[1:]:
                head.scorer.load_state_dict(self.heads[0].scorer.state_dict())

    @staticmethod
    def _strict_load(module: nn.Module, state: dict[str, torch.Tensor], part: str) -> None:
        missing, unexpected = module.load_state_dict(state, strict=False)
        # position_ids-like buffers are recomputed by the module; anything else is a real mismatch
        missing = [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))]
        if missing or unexpected:
            raise ValueError(f"backbone weights do not fit the {part}: missing {missing[:5]}, unexpected {unexpected[:5]}")

    # ----------------------------------------------------------------- forward
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_head_states: bool = False,
        **kwargs: Any,
    ) -> CerberusOutput:
        body_inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None and getattr(self.body.config, "type_vocab_size", 0) > 1:
            body_inputs["token_type_ids"] = token_type_ids
        hidden = self.body(**body_inputs).last_hidden_state
        mask = create_bidirectional_mask(
            config=self.body.config, inputs_embeds=hidden, attention_mask=attention_mask
        )
        if self.batched_heads and can_batch(self.heads):
            head_logits, head_states = batched_heads_forward(self.heads, hidden, mask, attention_mask, self._stacked)
        else:  # the reference: each head in turn, every position of every layer
            logits, states = zip(*(head(hidden, mask) for head in self.heads))
            head_logits = torch.stack(logits, dim=1)  # (batch, k, 2)
            head_states = torch.stack(states, dim=1)  # (batch, k, hidden)
        pooled_logits = self._pool(head_logits, head_states)
        return CerberusOutput(
            scores=pooled_logits.softmax(-1)[:, 1],
            pooled_logits=pooled_logits,
            head_logits=head_logits,
            head_states=head_states if output_head_states else None,
        )

    def _pool(self, head_logits: torch.Tensor, head_states: torch.Tensor) -> torch.Tensor:
        """Pooled logits; for mean_prob, the log of the mean probability (a valid logit)."""
        if self.config.pooler == "mean_prob":
            return head_logits.softmax(-1).mean(dim=1).log()
        if self.config.pooler == "mean_logit":
            return head_logits.mean(dim=1)
        # detached: the pooler's loss must not reach the heads, each of which follows its own teacher
        return self.pool(head_states.detach().flatten(1))

    # ------------------------------------------------------------- user API
    @torch.inference_mode()
    def predict(
        self,
        pairs: Sequence[tuple[str, str]],
        batch_size: int = 64,
        max_length: int = 128,
        return_heads: bool = False,
        show_progress_bar: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Pooled score per (question, candidate) pair, in the order given; with return_heads,
        also the (n_pairs, k) matrix of each head's logit margin.

        Pairs are tokenized once, scored longest first in batches padded only to their own
        longest (`batching.inference_batches`), and put back in input order on the device, so
        padding costs almost nothing and the device syncs once. The model runs in its own
        precision (`precision.with_precision` for bf16 or int8); the heads' logits are pooled in
        fp32, since a bf16 probability near 1 has steps of 0.004 and would tie candidates."""
        from tqdm.auto import tqdm

        if self.tokenizer is None:
            raise ValueError("this model has no tokenizer; pass tokenizer= to from_backbone or set model.tokenizer")
        pairs = pairs if isinstance(pairs, (list, tuple)) else list(pairs)
        was_training = self.training
        self.eval()
        n, k, device = len(pairs), self.config.num_heads, self.device
        pooled = torch.zeros(n, dtype=torch.float32, device=device)
        margins = torch.zeros(n, k, dtype=torch.float32, device=device)
        batches = inference_batches(self.tokenizer, pairs, max_length, batch_size)
        for index, inputs in tqdm(batches, total=-(-n // batch_size), desc="scoring", unit="batch",
                                  disable=not show_progress_bar):
            out = self(**{name: t.to(device, non_blocking=True) for name, t in inputs.items()})
            where = torch.from_numpy(index).to(device, non_blocking=True)
            logits = out.head_logits.float()
            learned = self.config.pooler == "learned"  # the only pooler that reads the states, in their dtype
            pooled[where] = out.scores.float() if learned else self._pool(logits, None).softmax(-1)[:, 1]
            margins[where] = head_margins(logits)
        self.train(was_training)
        scores, margins = pooled.cpu().numpy(), margins.cpu().numpy()
        return (scores, margins) if return_heads else scores

    def rank(
        self, question: str, candidates: list[str], top_k: int | None = None, **predict_kwargs: Any
    ) -> list[dict[str, Any]]:
        """Candidates sorted by pooled score (ties keep input order), each with every head's score."""
        scores, margins = self.predict(
            [(question, c) for c in candidates], return_heads=True, **predict_kwargs
        )
        order = np.argsort(-scores, kind="stable")[:top_k]
        return [
            {
                "corpus_id": int(i),
                "text": candidates[i],
                "score": float(scores[i]),
                "head_scores": margins[i].tolist(),
            }
            for i in order
        ]

    def parameter_counts(self) -> dict[str, int]:
        """Parameters by part: embeddings, body layers, each head, pooler, total."""
        count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
        counts = {"embeddings": count(self.body) - count(self.body.encoder)}
        counts["body_layers"] = count(self.body.encoder)
        for i, head in enumerate(self.heads):
            counts[f"head{i}"] = count(head)
        counts["pooler"] = count(self.pool) if self.pool is not None else 0
        counts["total"] = count(self)
        return counts

    # ------------------------------------------------------------ save / load
    def save_pretrained(self, save_directory: str | Path, **kwargs: Any) -> None:
        """safetensors weights + config, and the tokenizer beside them."""
        kwargs.setdefault("safe_serialization", True)
        super().save_pretrained(save_directory, **kwargs)
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(save_directory)

    @classmethod
    def from_pretrained(cls, path: str | Path, *args: Any, **kwargs: Any) -> CerberusForRanking:
        """Load a saved model strictly: config.json must parse and describe a CERBERUS model,
        and model.safetensors must hold exactly its tensors (none missing, none unexpected, same
        shapes), checked from the file headers before any weight is read. Anything else is an
        InputError naming the file and the first mismatched keys, never a model with randomly
        initialised parts. Pickled weights (pytorch_model.bin) are never loaded."""
        from .modelfiles import (check_weights_fit, refuse_custom_code, safetensors_dtype, saved_model_config,
                                 weight_headers)

        kwargs.setdefault("use_safetensors", True)
        kwargs["trust_remote_code"] = False
        want_info = kwargs.pop("output_loading_info", False)
        folder = Path(path)
        local = folder.exists() or not re.fullmatch(r"[\w.-]+/[\w.-]+", str(path)) or str(path).startswith(".")
        if local:  # a hub id (user/name) is checked after loading instead
            saved_model_config(folder)
            refuse_custom_code(folder)
            found = weight_headers(folder)
            config = kwargs.get("config")
            try:
                if not isinstance(config, CerberusConfig):
                    config = CerberusConfig.from_pretrained(folder)
                with torch.device("meta"):
                    skeleton = cls(config)
            except (ValueError, TypeError, KeyError, AttributeError, OSError) as err:
                raise InputError(folder / "config.json", f"not a usable CERBERUS config ({type(err).__name__}: "
                                                         f"{str(err).splitlines()[0] if str(err) else ''})") from None
            check_weights_fit(folder, {k: (tuple(v.shape), safetensors_dtype(v.dtype))
                                       for k, v in skeleton.state_dict().items()}, found)
            kwargs["config"] = config
        # read (and checked to read text) before any weight is loaded
        tokenizer = load_tokenizer(path) if Path(path, "tokenizer_config.json").is_file() else None
        try:
            model, info = super().from_pretrained(path, *args, output_loading_info=True, **kwargs)
        except (OSError, ValueError, RuntimeError) as err:
            raise InputError(path, f"cannot load the model ({str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__})") from None
        missing = [k for k in info.get("missing_keys", []) if not k.endswith(("position_ids", "token_type_ids"))]
        unexpected = list(info.get("unexpected_keys", []))
        resized = list(info.get("mismatched_keys", []))
        if missing or unexpected or resized:
            raise InputError(path, f"the weights do not fit config.json: missing {sorted(missing)[:3]}, "
                                   f"unexpected {sorted(unexpected)[:3]}, of another shape {resized[:3]}")
        model.tokenizer = tokenizer
        model = model.eval()
        return (model, info) if want_info else model


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    """The tokenizer of a model folder (or hub id), read without running any code of the folder,
    and checked to give a plain text back (a folder that lost its vocabulary reads all as [UNK])."""
    from .modelfiles import check_tokenizer, refuse_custom_code

    if Path(path).is_dir():
        refuse_custom_code(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    except Exception as err:  # tokenizers raises a bare Exception for a damaged tokenizer.json
        raise InputError(path, f"the tokenizer files are unreadable ({type(err).__name__}: "
                               f"{str(err).strip().splitlines()[0] if str(err).strip() else ''})") from None
    check_tokenizer(tokenizer, path)
    return tokenizer


def head_margins(head_logits: torch.Tensor) -> torch.Tensor:
    """Each head's ranking score: positive minus negative logit."""
    return head_logits[..., 1] - head_logits[..., 0]


AutoConfig.register("cerberus", CerberusConfig)
AutoModel.register(CerberusConfig, CerberusForRanking)
