"""Chain-of-thought elicitation patterns."""

from __future__ import annotations

import pyarrow as pa
import pytest

from distillwatch.enrich.cot import HEAD_CHARS, elicits_cot

ELICITING = [
    "Let's think step by step.",
    "Solve the problem. Think through it step-by-step before giving the final answer.",
    "Please show your reasoning.",
    "Explain your thought process before answering.",
    "Walk me through your reasoning.",
    "Reason through each step carefully and then answer.",
    "Put your reasoning inside <thinking></thinking> tags, then the answer.",
    "Write your internal monologue in a scratchpad first.",
    "Show all your work.",
    "Please show every step of your thinking, not just the answer.",
    "Format: reasoning, then final answer.",
    "Provide a detailed step-by-step solution.",
    "Use chain-of-thought prompting and give the final answer after ####.",
    "Before answering, think carefully about each assumption.",
    "Piensa paso a paso y luego responde.",
    "Explica tu razonamiento antes de responder.",
    "Réfléchis étape par étape avant de répondre.",
    "Explique ton raisonnement.",
    "Denke Schritt für Schritt nach.",
    "Erkläre deinen Gedankengang.",
    "Pense passo a passo.",
    "Подумай шаг за шагом и объясни ход своих рассуждений.",
    "请一步一步思考，然后回答。",
    "请展示你的推理过程。",
    "ステップバイステップで考えてください。",
    "단계별로 생각해 주세요.",
]
NOT_ELICITING = [
    "Give me step-by-step instructions to bake sourdough bread.",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did she sell?",
    "Write a Python function that reverses a linked list.",
    "What do you think about the new Star Wars movie?",
    "Describe your thoughts on the future of electric cars.",
    "Show me the steps to build an invoice app in Python.",
    "Explain the working of this Java snippet.",
    "Think of a name for my bakery.",
    "Just give me the answer, then a short summary.",
    "Escribe una receta paso a paso para hacer paella.",
    "",
]


@pytest.mark.parametrize("text", ELICITING)
def test_eliciting_phrasings_match(text: str) -> None:
    assert elicits_cot(pa.array([text])).to_pylist() == [True]


@pytest.mark.parametrize("text", NOT_ELICITING)
def test_ordinary_prompts_do_not_match(text: str) -> None:
    assert elicits_cot(pa.array([text])).to_pylist() == [False]


def test_system_prompt_counts_and_nulls() -> None:
    users = pa.array(["What is 17 * 23?", None, None, "Think step by step."])
    systems = pa.array(["You are a tutor. Always show your reasoning step by step.", "Be brief.", None, None])
    assert elicits_cot(users).to_pylist() == [False, None, None, True]
    assert elicits_cot(users, systems).to_pylist() == [True, None, None, True]
    with pytest.raises(ValueError, match="differ in length"):
        elicits_cot(users, systems.slice(1))


def test_long_and_hostile_text() -> None:
    filler = "lorem ipsum " * 200_000  # 2.4 MB
    tail = filler + " Think step by step."
    middle = "a" * (HEAD_CHARS + 10) + " show your reasoning " + "b" * 200_000
    tricky = "Think step\u202e by step\x00."
    assert elicits_cot(pa.array([tail, middle, filler, tricky])).to_pylist() == [True, False, False, False]
