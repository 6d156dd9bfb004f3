"""Capability classifier: shipped model, labels, long-horizon rule, accuracy floor."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from distillwatch.enrich import capability as cap

SHARED = Path("/work/shared/data")
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_capability_model.py"


def test_classes_and_null_handling() -> None:
    assert cap.CAPABILITIES == (
        "software_engineering", "agentic_tool_use", "long_horizon", "math_reasoning", "writing", "chat", "other",
    )
    out = cap.classify(pa.array(["hello there", None, ""]))
    assert out.type == pa.string()
    assert out[1].as_py() is None
    assert all(v in cap.CAPABILITIES for v in out.to_pylist() if v is not None)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Write a Python function that merges two sorted lists and add unit tests for it.", "software_engineering"),
        ("Fix this bug:\n```js\nconst x = arr.map(a => a.id;\n```", "software_engineering"),
        ("Tom has 12 marbles. He gives 5 to Sara and buys 3 times as many as he has left. How many marbles does he have now?",
         "math_reasoning"),
        ("I just got back from a long day at work and I'm bored, what should I do tonight?", "chat"),
        ("Imagine you are a pirate captain. Write a dramatic monologue to your crew before the final battle.", "writing"),
    ],
)
def test_obvious_examples(text: str, label: str) -> None:
    assert cap.classify(pa.array([text])).to_pylist() == [label]


def test_long_horizon_rule() -> None:
    spec = "Build a complete web application for managing a warehouse, end to end.\n" + "\n".join(
        f"{i}. Implement module {i}: " + "the module must handle inventory records, validation, persistence and an API. " * 3
        for i in range(1, 8)
    )
    assert len(spec) > cap.LONG_HORIZON_MIN_CHARS
    short = "Build a todo app.\n1. add\n2. remove\n3. list\n4. save\n5. load"
    essay = "word " * 400  # long but unstructured
    assert cap.is_long_horizon(pa.array([spec, short, essay, None])).to_pylist() == [True, False, False, None]
    assert cap.classify(pa.array([spec])).to_pylist() == ["long_horizon"]


def test_system_prompts_are_used() -> None:
    user = pa.array(["Do it now.", None])
    system = pa.array([
        "You are a coding agent in a git repository. Read the Python files, write a function that parses the "
        "config, and fix the failing pytest unit tests.",
        "x",
    ])
    assert cap.classify(user, system).to_pylist() == ["software_engineering", None]
    with pytest.raises(ValueError, match="differ in length"):
        cap.classify(user, system.slice(1))


def test_deterministic_and_batch_independent() -> None:
    texts = ["Prove that the square root of 2 is irrational.", "Write a haiku about rain.", "SELECT * FROM users;"] * 50
    a = cap.classify(pa.array(texts)).to_pylist()
    b = [cap.classify(pa.array([t])).to_pylist()[0] for t in texts[:3]]
    assert a == cap.classify(pa.array(texts)).to_pylist()
    assert a[:3] == b


def test_hostile_text() -> None:
    out = cap.classify(pa.array(["x" * 1_000_000, "a\x00b\u202ec" * 1000, "\U0001f600" * 10_000]))
    assert all(v in cap.CAPABILITIES for v in out.to_pylist())


def test_model_file_and_info() -> None:
    info = cap.model_info()
    assert set(info["training_data"]) <= {"gpteacher", "toolbench", "gsm8k", "hh-rlhf", "arena-hard", "vicuna", "self-instruct"}
    assert all(("MIT" in v) or ("Apache" in v) for v in info["training_data"].values())
    assert info["held_out"]["accuracy"] >= 0.9
    assert cap.MODEL_PATH.stat().st_size < 5_000_000
    with np.load(cap.MODEL_PATH, allow_pickle=False) as z:  # loads without pickle
        assert z["weights"].shape == (cap.N_FEATURES, len(z["classes"]))


def test_feature_layout_mismatch_is_refused(tmp_path: Path) -> None:
    with np.load(cap.MODEL_PATH, allow_pickle=False) as z:
        parts = {k: z[k] for k in z.files}
    bad = tmp_path / "bad.npz"
    np.savez(bad, **{**parts, "weights": parts["weights"][:100]})
    with pytest.raises(ValueError, match="retrain"):
        cap.CapabilityModel(bad)


@pytest.mark.skipif(not SHARED.exists(), reason="needs the shared training data")
def test_held_out_accuracy_floor() -> None:
    """Re-split the training data exactly as the training script did and score the held-out rows."""
    spec = importlib.util.spec_from_file_location("train_capability_model", SCRIPT)
    assert spec and spec.loader
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    examples = train.load_examples(SHARED)
    _, test = train.split(examples, seed=cap.model_info()["seed"])
    texts = pa.array([examples[i][0] for i in test])
    want = np.array([examples[i][1] for i in test])
    got = np.array(cap.classify(texts).to_pylist())
    # long_horizon is a rule on top of the model; count it as agreeing with the model's coarse class
    agree = (got == want) | ((got == "long_horizon") & np.isin(want, ["software_engineering", "agentic_tool_use", "other"]))
    assert agree.mean() >= 0.93
    for label in ("software_engineering", "agentic_tool_use", "math_reasoning", "chat"):
        assert agree[want == label].mean() >= 0.9, label


def test_threaded_batches_equal_small_batches() -> None:
    rng = np.random.default_rng(5)
    pool = ["def f(x): return x", "How many apples are left if Sam eats 3 of 10?", "tell me a joke",
            "Write a sonnet about the sea", "Use the weather API to get tomorrow's forecast for Oslo"]
    texts = pa.array([pool[i] + " " + str(j) for j, i in enumerate(rng.integers(0, len(pool), 25_000))])
    whole = cap.classify(texts).to_pylist()
    pieces = sum((cap.classify(texts.slice(i, 5_000)).to_pylist() for i in range(0, len(texts), 5_000)), [])
    assert whole == pieces


@pytest.mark.parametrize(
    "text",
    [
        "Plan and execute a 12-step migration of our billing service from Django to FastAPI. Produce step 4 in full.",
        "We are on step 3 of 9 of the data platform rebuild; design the ingestion component next.",
        "Multi-step project: build an inventory tracker. Continue with the next phase.",
    ],
)
def test_explicit_multi_step_requests_are_long_horizon(text: str) -> None:
    assert cap.is_long_horizon(pa.array([text])).to_pylist() == [True]


def test_short_system_follow_up_takes_the_system_label() -> None:
    system = pa.array(["You are a coding agent in a git repository. Read the Python files, write a function that "
                       "parses the config, and fix the failing pytest unit tests."] * 2)
    user = pa.array(["ok do it", "Write a limerick about my cat sleeping in the sun all afternoon long, please, thanks"])
    assert cap.classify(user, system).to_pylist() == ["software_engineering", "writing"]
