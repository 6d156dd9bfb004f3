"""Train the capability classifier shipped in src/distillwatch/enrich/data/.

    .venv/bin/python scripts/train_capability_model.py /work/shared/data [--out DIR] [--seed 0]

Uses only MIT / Apache-2.0 prompt sets (licences in the shared data's
SOURCES.md).  Each source, or each arena-hard cluster / vicuna category /
self-instruct app, is mapped to a capability class (tables below).  A
stratified 20% of every (source, class) group is held out; the report
(per-class precision/recall on all held-out rows and on the human-written
held-out rows alone) goes into the model file and MODEL_CARD.md.

``long_horizon`` is not learned (no public data labels it); it is a rule in
``distillwatch.enrich.capability.is_long_horizon``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import classification_report, confusion_matrix

from distillwatch.enrich import capability as cap

OUT = Path(__file__).resolve().parents[1] / "src" / "distillwatch" / "enrich" / "data"
CLASSES = ("software_engineering", "agentic_tool_use", "math_reasoning", "writing", "chat", "other")
PER_SOURCE_CAP = 2500  # keep big single-style sources from drowning the rest
# The roleplay set is nearly all of the writing class and speaks in one voice ("Imagine you are ...
# explain your ..."); at full size the model learns "your" and "explain" as writing words.
CAPS = {("gpteacher", "writing"): 600}

# arena-hard has one category for all rows; its 250 `cluster` names say the topic.
# Clusters are matched by these keywords, first match wins, the rest are "other".
ARENA_RULES: tuple[tuple[str, str], ...] = (
    ("math_reasoning", r"\b(math|algebra|number theory|probabilit|statistic|geometry|calculus|dice|prime|"
                       r"proving|real analysis|continuity|sequence puzzle|puzzle|riddle|sample size|standard deviation|"
                       r"investment growth|bulk ticket|train time|circular motion|consecutive draws|money and transaction|"
                       r"number substitution|pattern completion|optimal walking|triangle|rubik|calculation|vector subset|"
                       r"lambda calculus|electromagnetic)\w*"),
    ("software_engineering", r"\b(python|code|coding|program|sql|java|javascript|typescript|css|html|react|rust|c\+\+|"
                             r"kotlin|php|django|flask|docker|kubernetes|linux|api|apis|development|developer|script|"
                             r"scripting|regex|vba|excel column|hdl|shader|cuda|pytorch|jax|matplotlib|pandas|tidyverse|"
                             r"tkinter|gradio|streamlit|shiny|laravel|symfony|odoo|swift|wpf|android|assembly|bot|web|"
                             r"node\.js|nix|awk|algorithm|linked list|string|array|fibonacci|factorial|git\b|database|"
                             r"concurrency|socket|webhook|cron|kernel|memory mapping|package management|terminal|"
                             r"deobfuscation|reverse engineering|ffmpeg|debugging|testing|mocking|monads|structs|traits|"
                             r"vb6|rnn implementation|autoencoder|yolo|gui|caldav|scim|cors|sap|databricks|spark|json|"
                             r"csv|pdf processing|audio processing|encoding|archive formats|tag validation|roblox|"
                             r"game development|discord|browser extension|chatbot development|huggingface|llm chatbot ui|"
                             r"interactive data visualization|ray tracing|random number|kalman|gis|subtitle|"
                             r"networking|network configuration|ssh|xss|cve|cryptography|redis|multisig|video download|"
                             r"data processing|data structures|character indexing|word position|fourier|retry|"
                             r"batch size|gradient descent|transformers|sharding|vram|gpu|local llm|matrix multiplication|"
                             r"sorting|e-commerce|query transformation|entity relationship|excel)\w*"),
    ("writing", r"\b(writing|essay|poem|poetry|story|narrative|translation|translate|slide|powerpoint|debate|"
                r"marketing|seo|advertising|prompt engineering|word count|longest words|prepositions|etymology|"
                r"conceptual associations|inner dialog|rpg character|text-based rpg|character interactions|"
                r"bob, alice|satire|lojban|review analysis|mindmap|leave request|documentation)\w*"),
)
VICUNA_MAP = {"coding": "software_engineering", "math": "math_reasoning", "writing": "writing", "roleplay": "writing",
              "generic": "chat", "common-sense": "chat", "knowledge": "other", "fermi": "math_reasoning",
              "counterfactual": "other"}
SELF_INSTRUCT_APPS = {
    "software_engineering": {"StackOverflow", "Leetcode", "GeeksforGeeks", "w3schools", "Github", "Markdown",
                             "https://cohere.ai/"},
    "math_reasoning": {"Wolfram alpha", "(Wolfram alpha)?", "Socratic by Google", "Sudoku"},
    "writing": {"Grammarly", "Gmail", "Blogger", "MS Word", "Google Docs", "you.com (YouWrite)", "LinkedIn",
                "Twitter", "Instagram", "Overleaf", "ludwig.guru", "MS Powerpoint", "Messenger", "Telegram",
                "https://abcnotation.com/", "Facebook", "Scribd"},
    "chat": {"Wysa", "Reddit", "Quora", "Workout", "Tasty", "Strava"},
}
LICENCES = {
    "gpteacher": "MIT (teknium1/GPTeacher)",
    "toolbench": "Apache-2.0 (OpenBMB/ToolBench)",
    "gsm8k": "MIT (openai/grade-school-math)",
    "hh-rlhf": "MIT (anthropics/hh-rlhf)",
    "arena-hard": "Apache-2.0 (lmarena/arena-hard-auto)",
    "vicuna": "Apache-2.0 (lm-sys/FastChat)",
    "self-instruct": "Apache-2.0 (yizhongw/self-instruct)",
}
HUMAN_SOURCES = {"hh-rlhf", "arena-hard", "vicuna", "self-instruct"}

# Real requests often carry a generic system prompt.  In the training data only the roleplay
# set opens with "You are ...", so without help the model learns "you are" => writing and
# labels every "You are a helpful assistant." request as writing.  A share of the training rows
# of every class gets one of these class-neutral preambles, so a persona opener says nothing
# about the capability.  Held-out rows are never augmented.
GENERIC_PREAMBLES = (
    "You are a helpful assistant.",
    "You are a helpful, honest and harmless AI assistant.",
    "You are an AI assistant. Answer the user's request accurately and concisely.",
    "You are a friendly assistant that helps people.",
    "You are a knowledgeable assistant. Be clear and correct.",
    "You are an expert assistant. Follow the instructions carefully.",
    "You are a large language model trained to be helpful.",
    "Always answer truthfully. If you do not know, say so.",
    "Respond in English.",
    "You are an assistant for our customers. Be polite and precise.",
    # inline persona openers ("As a ..., <task>") are as common in real prompts as system lines
    "As an expert,",
    "As a professional,",
    "As an experienced specialist,",
    "Acting as a careful assistant,",
)
AUGMENT_SHARE = 0.3
# Likewise reasoning requests ("explain your reasoning") say nothing about the capability asked for,
# but in the data only roleplay says "explain your ...".  Harvesting traffic appends them to
# everything, so a share of every class gets one.
GENERIC_SUFFIXES = (
    "Explain your reasoning.",
    "Explain your answer.",
    "Think step by step.",
    "Show your work.",
    "Explain your reasoning step by step before the final answer.",
    "Describe your thought process.",
    "Please be concise.",
    "Give your final answer at the end.",
)
SUFFIX_SHARE = 0.2


# An arena-hard prompt that plainly asks for code is software engineering whatever its cluster
# (clusters group by topic: "Python Prime Number Validation" holds a MATLAB task).
CODE_PROMPT = re.compile(
    r"```|\b(python|javascript|typescript|java|c\+\+|c#|rust|golang|kotlin|swift|php|ruby|matlab|vba|sql|mysql|"
    r"postgres|bash|shell script|powershell|html|css|react|vue|django|flask|fastapi|node\.?js|docker|kubernetes|"
    r"pytorch|tensorflow|pandas|numpy|regex|function|class|script|code|program|api|debug|compile|git)\b",
    re.IGNORECASE,
)


def arena_class(cluster: str, prompt: str = "") -> str:
    if CODE_PROMPT.search(prompt):
        return "software_engineering"
    low = cluster.lower()
    for label, pattern in ARENA_RULES:
        if re.search(pattern, low):
            return label
    return "other"


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _first_human_turn(transcript: str) -> str:
    return transcript.split("\n\nHuman: ", 1)[1].split("\n\nAssistant:", 1)[0].strip()


def _strip_toolformer_header(instruction: str) -> str:
    # "toolformer: enabled / toolformer access: X" is a GPTeacher formatting artefact, not something
    # a real request carries; keep the tool description and the call signature.
    lines = [ln for ln in instruction.splitlines() if not ln.lower().startswith("toolformer")]
    return "\n".join(lines).strip()


def load_examples(shared: Path) -> list[tuple[str, str, str]]:
    """(text, class, source) triples."""
    ex: list[tuple[str, str, str]] = []
    g = shared / "distill" / "gpteacher"
    for r in json.loads((g / "codegen-instruct.json").read_text(encoding="utf-8")):
        ex.append(((r["instruction"] + "\n" + r["input"]).strip(), "software_engineering", "gpteacher"))
    for r in json.loads((g / "toolformer-dedupe-only-dataset.json").read_text(encoding="utf-8")):
        ex.append((_strip_toolformer_header(r["instruction"]) + "\n" + r["input"], "agentic_tool_use", "gpteacher"))
    for r in json.loads((g / "roleplay-simple-deduped-roleplay-instruct.json").read_text(encoding="utf-8")):
        ex.append(((r["instruction"] + "\n" + r["input"]).strip(), "writing", "gpteacher"))
    for name in ("G1_query.json", "G2_query.json", "G3_query.json"):
        for r in json.loads((shared / "distill" / "toolbench" / name).read_text(encoding="utf-8")):
            ex.append((r["query"], "agentic_tool_use", "toolbench"))
    for r in _jsonl(shared / "distill" / "gsm8k" / "gsm8k_train.jsonl"):
        ex.append((r["question"], "math_reasoning", "gsm8k"))
    for r in _jsonl(shared / "human" / "hh-rlhf" / "harmless-base_test.jsonl"):
        ex.append((_first_human_turn(r["chosen"]), "chat", "hh-rlhf"))
    for r in _jsonl(shared / "human" / "arena-hard" / "arena-hard-v0.1_question.jsonl"):
        ex.append((r["prompt"], arena_class(r["cluster"], r["prompt"]), "arena-hard"))
    for r in _jsonl(shared / "human" / "fastchat" / "vicuna_bench_question.jsonl"):
        ex.append((r["turns"][0], VICUNA_MAP[r["category"]], "vicuna"))
    app_class = {app: label for label, apps in SELF_INSTRUCT_APPS.items() for app in apps}
    for r in _jsonl(shared / "human" / "self-instruct" / "user_oriented_instructions.jsonl"):
        text = r["instruction"]
        inst = r.get("instances") or []
        if inst and inst[0].get("input"):
            text += "\n" + inst[0]["input"]
        ex.append((text, app_class.get(r["motivation_app"], "other"), "self-instruct"))
    return [(t, c, s) for t, c, s in ex if t.strip()]


def split(examples: list[tuple[str, str, str]], seed: int) -> tuple[list[int], list[int]]:
    """Cap each (source, class) group, then hold out 20% of each group."""
    rng = np.random.default_rng(seed)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, (_, c, s) in enumerate(examples):
        groups.setdefault((s, c), []).append(i)
    train: list[int] = []
    test: list[int] = []
    for key in sorted(groups):
        idx = np.array(groups[key])
        rng.shuffle(idx)
        idx = idx[: CAPS.get(key, PER_SOURCE_CAP)]
        n_test = max(1, int(round(len(idx) * 0.2))) if len(idx) >= 3 else 0
        test += idx[:n_test].tolist()
        train += idx[n_test:].tolist()
    return sorted(train), sorted(test)


def report(y_true: list[str], y_pred: list[str]) -> dict:
    rep = classification_report(y_true, y_pred, labels=list(CLASSES), output_dict=True, zero_division=0)
    return {
        "accuracy": round(float(np.mean(np.array(y_true) == np.array(y_pred))), 4),
        "macro_f1": round(rep["macro avg"]["f1-score"], 4),
        "n": len(y_true),
        "per_class": {c: {k: round(rep[c][k], 4) for k in ("precision", "recall", "f1-score", "support")} for c in CLASSES},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("shared", type=Path, help="the shared data directory (with human/ and distill/)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--C", type=float, default=8.0, help="inverse regularisation strength")
    ap.add_argument("--human-weight", type=float, default=1.0, help="sample weight of human-written prompts")
    args = ap.parse_args()

    examples = load_examples(args.shared)
    train, test = split(examples, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    texts = [e[0] for e in examples]
    for i in train:
        if rng.random() < AUGMENT_SHARE:
            pre = GENERIC_PREAMBLES[int(rng.integers(len(GENERIC_PREAMBLES)))]
            texts[i] = pre + (" " if pre.endswith(",") else "\n") + texts[i]
        if rng.random() < SUFFIX_SHARE:
            texts[i] = texts[i] + " " + GENERIC_SUFFIXES[int(rng.integers(len(GENERIC_SUFFIXES)))]
    labels = np.array([e[1] for e in examples])
    sources = np.array([e[2] for e in examples])
    X = cap.features(pa.array(texts))
    clf = LogisticRegression(C=args.C, max_iter=3000, class_weight="balanced", solver="lbfgs")
    # Human-written prompts are what a provider's benign traffic looks like but are few; weigh them up.
    weight = np.where(np.isin(sources[train], list(HUMAN_SOURCES)), args.human_weight, 1.0)
    clf.fit(X[train], labels[train], sample_weight=weight)

    # Evaluate through the same code path the product uses (weights -> numpy scores).
    order = [list(clf.classes_).index(c) for c in CLASSES]
    weights = clf.coef_[order].T.astype(np.float16)
    bias = clf.intercept_[order].astype(np.float32)
    scores = np.asarray(X[test] @ weights.astype(np.float32)) + bias
    pred = np.array(CLASSES)[scores.argmax(axis=1)]
    human = np.isin(sources[test], list(HUMAN_SOURCES))
    held_out = report(labels[test].tolist(), pred.tolist())
    held_out_human = report(labels[test][human].tolist(), pred[human].tolist())
    cm = confusion_matrix(labels[test], pred, labels=list(CLASSES)).tolist()

    used = sorted({e[2] for e in examples})
    info = {
        "trained_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "features": {"version": cap.FEATURE_VERSION, "hash_bits": cap.HASH_BITS, "n_features": cap.N_FEATURES,
                     "kind": "hashed word unigrams+bigrams (md5), log2 length and line-count buckets"},
        "model": f"multinomial logistic regression (scikit-learn, C={args.C}, class_weight=balanced, "
                 f"human-written sample weight {args.human_weight}), float16 weights",
        "classes": list(CLASSES),
        "training_data": {s: LICENCES[s] for s in used},
        "examples": {"train": len(train), "test": len(test),
                     "by_source_class": {f"{s}/{c}": n for (s, c), n in sorted(Counter(zip(sources[train], labels[train], strict=True)).items())}},
        "held_out": held_out,
        "held_out_human_written": held_out_human,
        "confusion_matrix": {"labels": list(CLASSES), "rows_true_cols_pred": cm},
        "augmentation": {"preamble_share": AUGMENT_SHARE, "generic_preambles": list(GENERIC_PREAMBLES),
                         "suffix_share": SUFFIX_SHARE, "generic_suffixes": list(GENERIC_SUFFIXES)},
        "seed": args.seed,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "capability_model.npz"
    np.savez_compressed(path, weights=weights, bias=bias, classes=np.array(CLASSES), info=np.array(json.dumps(info)))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    print(json.dumps({k: info[k] for k in ("examples", "held_out", "held_out_human_written")}, indent=1))
    (args.out / "capability_eval.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
