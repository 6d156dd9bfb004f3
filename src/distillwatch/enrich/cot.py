"""Chain-of-thought elicitation: does a prompt ask the model to reveal its reasoning?

Harvesting campaigns that want a model's reasoning ask for it explicitly
("think step by step", "show your reasoning", "<thinking>" tags, "explain your
thought process before answering"), in the system prompt or the user turn,
often in the same phrasing across thousands of accounts.

One case-insensitive RE2 alternation runs over whole Arrow arrays.  Bare
"step by step" is *not* enough ("give me step-by-step instructions to bake
bread" asks for a how-to, not for reasoning): it must sit next to a reasoning
verb (think, reason, solve, work out, calculate, derive...) or noun
(reasoning, solution, derivation).  English, Spanish, French, German,
Portuguese, Italian, Russian, Chinese, Japanese and Korean phrasings.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from distillwatch.enrich._text import as_strings, in_chunks

# Only the head and tail of a text are searched: elicitation sits at the start
# (system prompt, instruction) or the end ("... Think step by step.").
HEAD_CHARS = 4096
TAIL_CHARS = 1024

_SBS = r"step[- ]?by[- ]?step"
_REASON_VERB = r"(?:think|reason|solve|work|figure|calculate|compute|derive|deduce|answer|go|walk|proceed|approach)"
_PATTERNS_EN = (
    rf"\b{_REASON_VERB}\w*\b[^.?!\n]{{0,40}}\b{_SBS}",
    rf"\b{_SBS}[^.?!\n]{{0,15}}\b(?:reasoning|solution|derivation|thinking|thought|logic|calculation|proof|explanation of (?:your|the) (?:reasoning|answer|solution))",
    r"\blet'?s (?:think|reason|work (?:this|it) out|break (?:this|it) down)\b",
    r"\bthink (?:carefully |hard |deeply )?(?:out loud|aloud|through (?:this|it|the problem|each))\b",
    r"\b(?:show|explain|describe|outline|detail|give|reveal|include|write out|lay out|present|provide) (?:me |us )?(?:all |each of )?(?:your|the|full|complete|detailed|all|intermediate|each) (?:\w+ ){0,2}(?:reasoning|thought process|thinking|chain of thought|derivation|rationale)\b",
    r"\bshow (?:me |us )?(?:all )?(?:your|all your|all of your|all the) (?:work|working|steps|calculations|intermediate steps)\b",
    r"\bshow (?:me |us )?(?:every|each|all the|all of the) steps? (?:of|in) (?:your|the) (?:thinking|reasoning|work|working|solution|calculations?|derivation)\b",
    r"\bnot (?:just|only|simply) (?:the|a|your) (?:final )?(?:answer|result)\b",
    r"\b(?:reasoning|thinking|work|working|rationale)(?: first)?,? (?:then|and then|followed by|before) (?:the |your |a )?(?:final )?answer\b",
    r"\bwalk (?:me |us )?through (?:your|the) (?:reasoning|thinking|thought process|logic|solution)\b",
    r"\b(?:reason|think) (?:through|about) (?:this|it|the problem|each step)[^.?!\n]{0,20}(?:carefully|step|before)",
    r"\bchain[- ]of[- ]thoughts?\b",
    r"\b(?:internal monologue|scratch ?pad|reasoning (?:trace|steps|process|chain))\b",
    r"\bbefore (?:answering|you answer|giving (?:your|the|a|an) (?:final )?answer|responding|replying)[^.?!\n]{0,40}\b(?:think|reason|explain|consider|analy[sz]e|work)",
    r"\b(?:explain|justify) (?:each|every) step\b",
    r"</?(?:thinking|think|reasoning|scratchpad|thought|thoughts|inner_monologue|analysis)>",
)
_PATTERNS_OTHER = (
    # Spanish / Portuguese / Italian
    r"\b(?:piensa|piense|pensemos|razona|razone|resuelve|resuelva|pense|pensa|raciocine|resolva|ragiona|risolvi|pensa)\b[^.?!\n]{0,30}\b(?:paso a paso|passo a passo|passo dopo passo|passo passo)",
    r"\b(?:paso a paso|passo a passo|passo dopo passo)\b[^.?!\n]{0,15}\b(?:razonamiento|racioc[ií]nio|ragionamento)",
    r"\b(?:explica|explique|muestra|muestre|mostre|mostra|spiega|mostrami|explicame|explícame)\b[^.?!\n]{0,20}\b(?:razonamiento|racioc[ií]nio|ragionamento|proceso de pensamiento|processo de pensamento)",
    # French
    r"\b(?:r[ée]fl[ée]chi(?:s|ssez|ssons)|raisonne[zr]?|r[ée]sous|r[ée]solvez)\b[^.?!\n]{0,30}[ée]tape par [ée]tape",
    r"\b(?:explique[rz]?|montre[rz]?|d[ée]taille[rz]?)\b[^.?!\n]{0,20}\b(?:raisonnement|cheminement|d[ée]marche)",
    # German
    r"\b(?:denke?|denken sie|überlege?|überlegen sie|löse|lösen sie|rechne)\b[^.?!\n]{0,30}\bschritt für schritt",
    r"\b(?:erkläre?|erklären sie|zeige?|zeigen sie)\b[^.?!\n]{0,25}\b(?:gedankengang|überlegungen|rechenweg|lösungsweg|argumentation|denkprozess)",
    # Russian
    r"(?:подумай|думай|рассуждай|рассуждайте|реши|решите)[^.?!\n]{0,30}(?:шаг за шагом|пошагово|по шагам)",
    r"(?:объясни|объясните|покажи|покажите|опиши)[^.?!\n]{0,25}(?:ход (?:своих |твоих |ваших )?(?:рассуждени|мысл|решени)|свои рассуждения|рассуждения)",
    # Chinese
    r"(?:一步一步|一步步|逐步)(?:地)?(?:思考|推理|分析|解答|求解|计算|想)",
    r"(?:请|請)?(?:展示|给出|給出|说明|說明|写出|寫出|列出)(?:你的|完整的|详细的)?(?:思考过程|思考過程|推理过程|推理過程|思路|解题过程|思维链)",
    r"思维链|思維鏈|让我们一步步|讓我們一步步",
    # Japanese
    r"(?:ステップバイステップ|段階的に|順を追って|一歩ずつ)(?:で)?(?:考え|推論|解い|説明|思考)",
    r"(?:思考過程|推論過程|考え方|推論の過程)(?:を)?(?:示して|説明して|見せて|書いて)",
    # Korean
    r"(?:단계별로|차근차근|한 단계씩)[^.?!\n]{0,10}(?:생각|추론|풀|설명)",
    r"(?:추론 과정|사고 과정|풀이 과정)(?:을|를)?[^.?!\n]{0,6}(?:보여|설명|작성)",
)
PATTERN = "(?i)(?:" + "|".join(_PATTERNS_EN + _PATTERNS_OTHER) + ")"


def elicits_cot(texts: pa.Array | pa.ChunkedArray, systems: pa.Array | pa.ChunkedArray | None = None) -> pa.BooleanArray:
    """True where the text (or, when given, the matching system prompt) asks for visible reasoning.

    Null text gives null, unless the system prompt alone elicits (then True).
    """
    hit = _match(as_strings(texts))
    if systems is None:
        return hit
    sys_hit = _match(as_strings(systems))
    if len(sys_hit) != len(hit):
        raise ValueError(f"texts and systems differ in length: {len(hit)} vs {len(sys_hit)}")
    # Kleene OR: null only when neither side says True and one is unknown
    return pc.or_kleene(hit, sys_hit)


def _match(s: pa.Array) -> pa.BooleanArray:
    return pa.concat_arrays(in_chunks(_match_chunk, s)) if len(s) else _match_chunk(s)


def _match_chunk(s: pa.Array) -> pa.BooleanArray:
    head = pc.utf8_slice_codeunits(s, 0, HEAD_CHARS)
    hit = pc.match_substring_regex(head, PATTERN)
    long_rows = pc.fill_null(pc.greater(pc.utf8_length(s), HEAD_CHARS), False)
    if pc.any(long_rows).as_py():
        tail = pc.utf8_slice_codeunits(s, -TAIL_CHARS)
        hit = pc.or_(hit, pc.and_(long_rows, pc.match_substring_regex(tail, PATTERN)))
    return hit
