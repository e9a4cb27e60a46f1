import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel

from cerberus_core.model.modeling import CerberusConfig, CerberusForRanking, head_margins
from conftest import tiny_backbone

FAMILIES = ["bert", "mpnet", "electra", "roberta"]
PAIRS = [("what is the capital of france", "paris is the capital of france"),
         ("how long is the nile", "the nile is long"),
         ("who", "paris"),
         ("when was the river born", "the river of the city is km long in france")]


def batch(n=3, length=10, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 20, (n, length), generator=g)
    mask = torch.ones_like(ids)
    mask[0, length - 3:] = 0  # padding must not change anything
    return ids, mask


@pytest.mark.parametrize("family", FAMILIES)
def test_single_head_equals_backbone_last_layer(family):
    backbone = tiny_backbone(family)
    model = CerberusForRanking.from_backbone(backbone, body_layers=3, num_heads=1, head_layers=1)
    ids, mask = batch()
    out = model(input_ids=ids, attention_mask=mask, output_head_states=True)
    reference = backbone(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]
    assert torch.allclose(out.head_states[:, 0], reference, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_heads_are_independent_copies_and_save_with_safetensors(family, tmp_path):
    model = CerberusForRanking.from_backbone(tiny_backbone(family), body_layers=2, num_heads=3, head_layers=2)
    pointers = [p.data_ptr() for p in model.state_dict().values()]
    assert len(pointers) == len(set(pointers)), "no tensor may be shared"
    model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    assert any(k.startswith("heads.2.encoder.layer.1.") for k in weights)
    # training one head must not move another
    with torch.no_grad():
        for p in model.heads[0].encoder.parameters():
            p.add_(torch.randn_like(p))
    ids, mask = batch()
    logits = model(input_ids=ids, attention_mask=mask).head_logits
    assert torch.allclose(logits[:, 1], logits[:, 2])
    assert not torch.allclose(logits[:, 0], logits[:, 1])


def test_copy_init_makes_heads_identical_and_independent_does_not():
    ids, mask = batch()
    same = CerberusForRanking.from_backbone(tiny_backbone("bert"), body_layers=3, num_heads=3, head_init="copy")
    logits = same(input_ids=ids, attention_mask=mask).head_logits
    assert torch.equal(logits[:, 0], logits[:, 1]) and torch.equal(logits[:, 0], logits[:, 2])
    diff = CerberusForRanking.from_backbone(tiny_backbone("bert"), body_layers=3, num_heads=3, head_init="independent")
    logits = diff(input_ids=ids, attention_mask=mask).head_logits
    assert not torch.allclose(logits[:, 0], logits[:, 1])


def test_poolers():
    ids, mask = batch()
    backbone = tiny_backbone("bert")
    for pooler in ["mean_prob", "mean_logit", "learned"]:
        model = CerberusForRanking.from_backbone(backbone, body_layers=3, num_heads=2,
                                                 head_init="independent", pooler=pooler)
        out = model(input_ids=ids, attention_mask=mask)
        probs = out.head_logits.softmax(-1)[..., 1]
        if pooler == "mean_prob":
            expected = probs.mean(1)
        elif pooler == "mean_logit":
            expected = out.head_logits.mean(1).softmax(-1)[:, 1]
        else:
            assert model.parameter_counts()["pooler"] == 2 * 32 * 2 + 2
            continue
        assert torch.allclose(out.scores, expected, atol=1e-6)
    with pytest.raises(ValueError, match="pooler"):
        CerberusConfig(pooler="max")


def test_save_load_round_trip_with_tokenizer_and_auto_classes(tmp_path, tiny_tokenizer):
    model = CerberusForRanking.from_backbone(tiny_backbone("mpnet"), body_layers=2, num_heads=3,
                                             head_layers=1, pooler="learned", head_init="independent",
                                             tokenizer=tiny_tokenizer)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "tokenizer.json").is_file()
    assert not list(tmp_path.glob("*.bin"))
    loaded = CerberusForRanking.from_pretrained(tmp_path)
    assert isinstance(AutoModel.from_pretrained(tmp_path), CerberusForRanking)
    assert AutoConfig.from_pretrained(tmp_path).name == "B2 3H1"
    s1, h1 = model.predict(PAIRS, return_heads=True)
    s2, h2 = loaded.predict(PAIRS, return_heads=True)
    assert (abs(s1 - s2).max(), abs(h1 - h2).max()) == (0.0, 0.0)


def test_predict_is_batch_size_invariant_and_rank_sorts(tiny_tokenizer):
    model = CerberusForRanking.from_backbone(tiny_backbone("bert"), body_layers=2, num_heads=2,
                                             head_layers=2, head_init="independent", tokenizer=tiny_tokenizer)
    full, heads = model.predict(PAIRS, batch_size=64, return_heads=True)
    one = model.predict(PAIRS, batch_size=1)
    assert abs(full - one).max() < 1e-5  # padding in a batch changes nothing
    assert heads.shape == (len(PAIRS), 2)
    candidates = [c for _, c in PAIRS]
    ranked = model.rank("what is the capital of france", candidates)
    scores = [r["score"] for r in ranked]
    assert scores == sorted(scores, reverse=True)
    assert sorted(r["corpus_id"] for r in ranked) == list(range(len(candidates)))
    assert all(len(r["head_scores"]) == 2 and candidates[r["corpus_id"]] == r["text"] for r in ranked)


def test_body_gets_gradient_from_every_head():
    model = CerberusForRanking.from_backbone(tiny_backbone("bert"), body_layers=2, num_heads=2,
                                             head_layers=2, head_init="independent").train()
    ids, mask = batch()
    grads = []
    for i in range(2):
        model.zero_grad()
        head_margins(model(input_ids=ids, attention_mask=mask).head_logits)[:, i].sum().backward()
        grads.append(model.body.encoder.layer[0].output.dense.weight.grad.clone())
        assert model.heads[1 - i].scorer.out_proj.weight.grad is None or \
            model.heads[1 - i].scorer.out_proj.weight.grad.abs().sum() == 0
    assert grads[0].abs().sum() > 0 and grads[1].abs().sum() > 0 and not torch.allclose(grads[0], grads[1])


def test_parameter_counts_and_split_validation():
    model = CerberusForRanking.from_backbone(tiny_backbone("bert", layers=4), body_layers=3, num_heads=3)
    counts = model.parameter_counts()
    assert counts["head0"] == counts["head1"] == counts["head2"] > 0
    assert sum(v for k, v in counts.items() if k != "total") == counts["total"]
    with pytest.raises(ValueError, match="exceeds"):
        CerberusForRanking.from_backbone(tiny_backbone("bert", layers=4), body_layers=4, head_layers=1)


def _perturbed(model, seed=3):
    """Heads that differ (they start as copies), so a mix-up between heads would show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.heads.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


def _outputs_and_grads(model, ids, mask, batched):
    model.batched_heads = batched
    model.zero_grad()
    out = model(input_ids=ids, attention_mask=mask, output_head_states=True)
    weights = torch.linspace(-1, 1, out.head_logits.numel(), dtype=out.head_logits.dtype)
    ((out.head_logits.flatten() * weights).sum() + out.pooled_logits.sum()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out, grads


@pytest.mark.parametrize("family,head_layers,pooler", [
    ("bert", 1, "mean_prob"), ("bert", 2, "learned"), ("electra", 1, "mean_logit"), ("roberta", 2, "mean_prob")])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_batched_heads_equal_the_per_head_loop(family, head_layers, pooler, dtype, tol):
    model = CerberusForRanking.from_backbone(tiny_backbone(family), body_layers=4 - head_layers, num_heads=3,
                                             head_layers=head_layers, pooler=pooler)
    model = _perturbed(model.to(dtype))
    ids, mask = batch(n=4, length=9)
    from cerberus_core.model.batched_heads import can_batch
    assert can_batch(model.heads)
    batched, g_batched = _outputs_and_grads(model, ids, mask, batched=True)
    loop, g_loop = _outputs_and_grads(model, ids, mask, batched=False)
    for field in ("head_logits", "head_states", "pooled_logits", "scores"):
        assert torch.allclose(getattr(batched, field), getattr(loop, field), atol=tol, rtol=0), field
    assert g_batched.keys() == g_loop.keys() and any(k.startswith("body.") for k in g_loop)
    for name, grad in g_loop.items():  # gradients of the body and of every head's weights
        scale = max(1.0, grad.abs().max().item())
        assert torch.allclose(g_batched[name], grad, atol=tol * scale, rtol=0), name


def test_layers_the_batched_path_cannot_run_fall_back_to_the_loop():
    from cerberus_core.model.batched_heads import can_batch

    model = CerberusForRanking.from_backbone(tiny_backbone("mpnet"), body_layers=3, num_heads=2, head_layers=1)
    assert not can_batch(model.heads)  # MPNet's layer has another shape: the loop runs it
    ids, mask = batch()
    assert model(input_ids=ids, attention_mask=mask).head_logits.shape == (3, 2, 2)


def test_inference_reuses_stacked_weights_until_a_weight_changes():
    model = _perturbed(CerberusForRanking.from_backbone(tiny_backbone("bert"), body_layers=3, num_heads=2, head_layers=1))
    ids, mask = batch()
    with torch.inference_mode():
        first = model(input_ids=ids, attention_mask=mask).head_logits
        stacked = model._stacked["weights"]["ffn_in"][0]
        assert torch.equal(model(input_ids=ids, attention_mask=mask).head_logits, first)
        assert model._stacked["weights"]["ffn_in"][0] is stacked  # not restacked
    with torch.no_grad():
        model.heads[1].scorer.out_proj.bias.add_(1.0)  # an in-place update, as an optimizer step
    with torch.inference_mode():
        after = model(input_ids=ids, attention_mask=mask).head_logits
    assert torch.allclose(after[:, 0], first[:, 0]) and torch.allclose(after[:, 1], first[:, 1] + 1.0, atol=1e-6)
