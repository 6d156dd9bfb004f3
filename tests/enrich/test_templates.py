"""Template normalisation, stable hashes, MinHash and LSH."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pytest

from distillwatch.enrich import templates as T
from distillwatch.enrich._text import mix64


def norm(*texts: str | None) -> list[str | None]:
    return T.normalize(pa.array(list(texts), pa.string())).to_pylist()


def test_slot_values_become_placeholders() -> None:
    a, b = norm(
        'Write a Python function "fizz" for N=15, see https://x.com/a?b=1',
        'write a   Rust function "buzz" for N=7, see http://y.org/z',
    )
    assert a == b == "write a ⟪name⟫ function ⟪str⟫ for n=⟪num⟫, see ⟪url⟫"
    (c,) = norm("Please review src/app/main.py:\n```python\ndef f(x):\n    return x\n```\nmail bob@corp.io, id 9f8e7d6c5b4a")
    assert c == "please review ⟪path⟫ : ⟪code⟫ mail ⟪email⟫ , id ⟪num⟫"


def test_template_hash_groups_filled_copies() -> None:
    filled = [f"Solve for x: {a}x + {b} = {c}. Show the answer as a fraction." for a, b, c in [(3, 4, 5), (10, -2, 7), (1, 1, 1)]]
    other = ["Translate the sentence 'good morning' into French."]
    h = T.template_hash(pa.array(filled + other + [None])).to_pylist()
    assert h[0] == h[1] == h[2]
    assert h[3] != h[0]
    assert h[4] is None


def test_template_hash_is_documented_md5() -> None:
    text = "Hello World 42"
    template = T.normalize(pa.array([text])).to_pylist()[0]
    want = int.from_bytes(hashlib.md5(template.encode()).digest()[:8], "little", signed=True)
    assert T.template_hash(pa.array([text])).to_pylist() == [want]


def test_invisible_and_control_characters_do_not_split_templates() -> None:
    plain, hidden = norm("ignore this text please", "ignore\u200b this\u202e text\x00 please")
    assert plain == hidden


def test_hostile_long_text_is_bounded() -> None:
    out = T.normalize(pa.array(["word " * 300_000, "\"" * 1_000_000, "`" * 1_000_000]))
    assert all(len(v) <= T.MAX_CHARS for v in out.to_pylist())
    h = T.template_hash(pa.array(["x" * 1_000_000]))
    assert h.null_count == 0


def test_parallel_path_equals_serial() -> None:
    rng = np.random.default_rng(1)
    words = np.array(["alpha", "Beta", "42", "x.py", '"q"', "gamma", "\n", "https://a.b/c"])
    texts = [" ".join(rng.choice(words, size=12)) for _ in range(25_000)]  # above the threading threshold
    arr = pa.array(texts)
    whole = T.normalize(arr).to_pylist()
    pieces = sum((T.normalize(arr.slice(i, 5000)).to_pylist() for i in range(0, len(texts), 5000)), [])
    assert whole == pieces


def _jaccard(a: str, b: str, k: int = 3) -> float:
    def sh(t: str) -> set[tuple[str, ...]]:
        w = t.split(" ")
        return {tuple(w[i : i + k]) for i in range(max(1, len(w) - k + 1))}

    x, y = sh(a), sh(b)
    return len(x & y) / len(x | y)


def test_minhash_estimates_jaccard() -> None:
    rng = np.random.default_rng(3)
    vocab = [f"w{i}" for i in range(400)]
    base = [" ".join(rng.choice(vocab, 60)) for _ in range(40)]
    variants = []
    for t in base:
        w = t.split(" ")
        for j in rng.choice(len(w), size=int(rng.integers(1, 20)), replace=False):
            w[j] = "zz"
        variants.append(" ".join(w))
    sig = T.minhash(pa.array(base + variants), num_perm=128, normalized=True)
    assert sig.shape == (80, 128) and sig.dtype == np.uint64
    est = T.jaccard_estimate(sig[:40], sig[40:])
    true = np.array([_jaccard(a, b) for a, b in zip(base, variants, strict=True)])
    assert np.mean(np.abs(est - true)) < 0.06
    assert T.jaccard_estimate(sig[0], sig[1]) < 0.1  # unrelated texts


def test_minhash_identity_empty_and_determinism() -> None:
    texts = pa.array(["the same words here", "The same words   here", None, "", "one", "one two"])
    s1 = T.minhash(texts)
    s2 = T.minhash(texts)
    assert np.array_equal(s1, s2)
    assert np.array_equal(s1[0], s1[1])
    assert (s1[2] == T.EMPTY_SIGNATURE).all() and (s1[3] == T.EMPTY_SIGNATURE).all()
    assert not (s1[4] == T.EMPTY_SIGNATURE).any() and not np.array_equal(s1[4], s1[5])


def test_lsh_bands_pair_near_duplicates_only() -> None:
    base = "you are an expert engineer implement the following feature in the repository and write tests for every branch"
    near = base.replace("every branch", "each branch")
    far = "what is a good recipe for a vegetarian lasagna with spinach and ricotta for six people tonight"
    keys = T.lsh_bands(T.minhash(pa.array([base, near, far, None])), bands=16, rows=4)
    assert keys.shape == (4, 16)
    assert len(set(keys[0]) & set(keys[1])) > 0
    assert len(set(keys[0]) & set(keys[2])) == 0
    assert (keys[3] == 0).all() and (keys[:3] != 0).all()
    with pytest.raises(ValueError, match="bands"):
        T.lsh_bands(np.zeros((2, 8), np.uint64), bands=4, rows=4)


def test_chunked_and_large_string_inputs() -> None:
    base = ["a b c", None, "d e f"]
    want = T.template_hash(pa.array(base)).to_pylist()
    assert T.template_hash(pa.chunked_array([base[:1], base[1:]])).to_pylist() == want
    assert T.template_hash(pa.array(base, pa.large_string())).to_pylist() == want
    assert T.minhash(pa.array([], pa.string())).shape == (0, 64)


def test_union_sketch_from_raw_signatures() -> None:
    """The element-wise min of raw signatures is exactly the raw signature of the union of shingle sets."""
    words = [f"w{i}" for i in range(40)]
    a = " ".join(words[:25])
    b = " ".join(words[23:])  # overlaps a by two words, so shingles(a) | shingles(b) == shingles(a + rest of b)
    c = " ".join(words)
    raw = T.minhash(pa.array([a, b, c]), densify=False)
    assert np.array_equal(np.minimum(raw[0], raw[1]), raw[2])
    assert np.array_equal(T.densify_signatures(raw), T.minhash(pa.array([a, b, c])))


def test_single_letter_capitals_are_not_names() -> None:
    assert norm("and I have a question for Maria") == ["and i have a question for ⟪name⟫"]


def test_template_hash_of_template_strings_equals_that_of_the_texts() -> None:
    texts = pa.array(['Write a Python function "fizz" for N=15', None, "", "Ship 3 boxes to Berlin by Friday"])
    assert T.template_hash(T.normalize(texts), normalized=True).equals(T.template_hash(texts))


def _densify_by_definition(sig: np.ndarray) -> np.ndarray:
    """``densify_signatures`` as its docstring states it, one bin at a time."""
    golden = 0x9E3779B97F4A7C15
    out = sig.copy()
    n, p = sig.shape
    for i in range(n):
        filled = [k for k in range(p) if sig[i, k] != T.EMPTY_SIGNATURE]
        if not filled:
            continue
        for j in range(p):
            if sig[i, j] == T.EMPTY_SIGNATURE:
                k = next((k for k in filled if k > j), filled[0] + p)
                value = (int(sig[i, k % p]) + (k - j) * golden) % 2**64
                out[i, j] = mix64(np.array([value], dtype=np.uint64))[0]
    return out


@pytest.mark.parametrize("p", [1, 2, 3, 8, 64])
def test_densify_follows_its_definition(p: int) -> None:
    rng = np.random.default_rng(p)
    for trial in range(40):
        sig = rng.integers(0, 2**63, size=(int(rng.integers(1, 12)), p), dtype=np.uint64)
        sig[rng.random(sig.shape) < rng.random()] = T.EMPTY_SIGNATURE
        if trial % 5 == 0:
            sig[0] = T.EMPTY_SIGNATURE  # a row with no non-empty bin
        before = sig.copy()
        assert np.array_equal(T.densify_signatures(sig), _densify_by_definition(sig)), trial
        assert np.array_equal(sig, before)  # the input is not modified
