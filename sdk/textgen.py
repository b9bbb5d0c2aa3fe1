"""Text generation tasks: turning prompt/completion and source/target pairs into training
examples, generating text with a trained model, and scoring it with ROUGE.

The trainer and the inference code (`peftlab predict`, the playground) share
these functions, so a prompt is shown to the model the same way in training
and afterwards: wrapped in the dataset's template, tokenized the same way,
and generated greedily.

Causal LM examples are `prompt tokens + completion tokens + EOS`; the labels
are -100 over the prompt (only the completion is learned) and the collator
pads them with -100 too. A causal LM whose tokenizer carries a chat template
(instruction-tuned Llama, Qwen, Mistral ...) sees each prompt as a user turn
rendered by that template, with the assistant cue, and learns the assistant
turn as the template writes it (its end-of-turn marker included); the dataset's
plain template is for tokenizers without one. Seq2seq examples are the
source's tokens as input and the target's as labels.

torch, transformers and rouge-score are imported inside functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: label value the loss ignores (prompt tokens and padding)
IGNORE_INDEX = -100
GENERATION_TASKS = ("causal-lm", "seq2seq")
ROUGE_KEYS = ("rouge1", "rouge2", "rougeL")


def apply_template(template: str | None, text: str) -> str:
    """`text` placed where the template says `{input}`; the text itself without a template."""
    return template.replace("{input}", text) if template else text


def uses_chat_template(tokenizer: Any) -> bool:
    """Whether causal LM prompts go through the tokenizer's own chat template."""
    return bool(getattr(tokenizer, "chat_template", None))


def render_prompt(tokenizer: Any, template: str | None, text: str) -> str:
    """The prompt as the model sees it: a user turn in the tokenizer's chat template, followed
    by the assistant cue; without a chat template, `text` placed in the plain template."""
    if not uses_chat_template(tokenizer):
        return apply_template(template, text)
    turn = [{"role": "user", "content": text}]
    return str(tokenizer.apply_chat_template(turn, tokenize=False, add_generation_prompt=True))


def render_completion(tokenizer: Any, prompt: str, rendered_prompt: str, completion: str) -> str:
    """The assistant turn as the chat template writes it after `rendered_prompt` (the
    completion and the end-of-turn marker); the completion itself when the template renders
    the conversation some other way."""
    turns = [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
    whole = str(tokenizer.apply_chat_template(turns, tokenize=False))
    if not whole.startswith(rendered_prompt):
        return completion
    # the whitespace after the end-of-turn marker only separates turns: not learned
    return whole[len(rendered_prompt) :].rstrip()


def fit_pair(prompt: list[int], completion: list[int], max_length: int) -> tuple[list, list]:
    """Cut a prompt and its completion to `max_length` tokens together.

    The completion keeps at least half the room (it is what is learned); the
    prompt loses tokens from its start, so its end (the template's "Response:"
    cue) stays next to the completion.
    """
    if len(prompt) + len(completion) <= max_length:
        return prompt, completion
    keep_completion = min(len(completion), max(max_length - len(prompt), max_length // 2))
    keep_prompt = max_length - keep_completion
    return (prompt[len(prompt) - keep_prompt :] if keep_prompt > 0 else []), completion[
        :keep_completion
    ]


def encode_causal(
    prompts: Sequence[str],
    completions: Sequence[str],
    tokenizer: Any,
    *,
    template: str | None,
    max_length: int,
) -> dict[str, list[Any]]:
    """input_ids, attention_mask, labels (-100 over the prompt) and length per example."""
    eos = tokenizer.eos_token_id
    chat = uses_chat_template(tokenizer)
    shown = [render_prompt(tokenizer, template, p) for p in prompts]
    if chat:
        completions = [
            render_completion(tokenizer, p, r, c)
            for p, r, c in zip(prompts, shown, completions, strict=True)
        ]
    # a chat template writes the special tokens (BOS) itself
    prompt_ids = tokenizer(shown, add_special_tokens=not chat)["input_ids"]
    completion_ids = tokenizer(list(completions), add_special_tokens=False)["input_ids"]
    out: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "labels": []}
    lengths: list[int] = []
    for p_ids, c_ids in zip(prompt_ids, completion_ids, strict=True):
        c_ids = list(c_ids)
        if eos is not None and (not c_ids or c_ids[-1] != eos):
            c_ids.append(eos)  # the model must learn to stop
        p_ids, c_ids = fit_pair(list(p_ids), c_ids, max_length)
        ids = p_ids + c_ids
        out["input_ids"].append(ids)
        out["attention_mask"].append([1] * len(ids))
        out["labels"].append([IGNORE_INDEX] * len(p_ids) + c_ids)
        lengths.append(len(ids))
    return {**out, "length": lengths}


def encode_seq2seq(
    sources: Sequence[str],
    targets: Sequence[str],
    tokenizer: Any,
    *,
    template: str | None,
    max_length: int,
    max_target_length: int,
) -> dict[str, list[list[int]]]:
    """input_ids, attention_mask (the source), labels (the target, ending in EOS) and length."""
    encoded = tokenizer(
        [apply_template(template, s) for s in sources], truncation=True, max_length=max_length
    )
    targets_encoded = tokenizer(
        text_target=list(targets), truncation=True, max_length=max_target_length
    )
    labels = targets_encoded["input_ids"]
    eos = tokenizer.eos_token_id
    if eos is not None:  # tokenizers that add no EOS themselves: the model must learn to stop
        labels = [
            ids if ids and ids[-1] == eos else (list(ids) + [eos])[-max_target_length:]
            for ids in labels
        ]
    return {
        "input_ids": encoded["input_ids"],
        "attention_mask": encoded["attention_mask"],
        "labels": labels,
        "length": [len(ids) for ids in encoded["input_ids"]],
    }


def encode_pairs(
    dataset: Any,
    tokenizer: Any,
    task: str,
    *,
    template: str | None,
    max_length: int,
    max_target_length: int,
) -> Any:
    """A `datasets.Dataset` of text pairs -> token ids and labels (padding waits for the batch)."""
    if task not in GENERATION_TASKS:
        raise ValueError(f"task '{task}' is not a generation task ({', '.join(GENERATION_TASKS)})")
    source, target = pair_columns(task)
    options: dict[str, Any] = {"template": template, "max_length": max_length}
    encoder: Any = encode_causal
    if task == "seq2seq":
        encoder = encode_seq2seq
        options["max_target_length"] = max_target_length

    def encode(batch: dict[str, list[Any]]) -> dict[str, Any]:
        return encoder(batch[source], batch[target], tokenizer, **options)

    return dataset.map(
        encode, batched=True, remove_columns=list(dataset.column_names), desc="tokenizing"
    )


def pair_columns(task: str) -> tuple[str, str]:
    """The (input, reference) columns of a generation task's splits."""
    return ("prompt", "completion") if task == "causal-lm" else ("source", "target")


def _left_padded_prompts(
    tokenizer: Any, template: str | None, texts: list[str], max_length: int, pad: int
) -> tuple[Any, Any]:
    """input_ids and attention_mask of causal LM prompts shown as in training, padded on the
    left (the last `max_length` tokens of each)."""
    import torch

    shown = [render_prompt(tokenizer, template, t) for t in texts]
    encoded = tokenizer(shown, add_special_tokens=not uses_chat_template(tokenizer))
    rows = [row[-max_length:] for row in encoded["input_ids"]]
    width = max(len(r) for r in rows)
    input_ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    return input_ids, mask


def generate_texts(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    task: str,
    *,
    template: str | None = None,
    max_new_tokens: int = 64,
    max_length: int = 512,
    batch_size: int = 16,
) -> list[str]:
    """Greedy generations for `texts` (only the new text, special tokens dropped).

    Causal LM prompts are shown as in training (`render_prompt`) and padded on the
    left, so every row's new tokens start at the same position; the model is put in
    eval mode and left there.
    """
    import torch

    model.eval()
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    results: list[str] = []
    for start in range(0, len(texts), batch_size):
        chunk = [str(t) for t in texts[start : start + batch_size]]
        if task == "causal-lm":
            input_ids, mask = _left_padded_prompts(tokenizer, template, chunk, max_length, pad)
        else:
            batch = tokenizer(
                [apply_template(template, t) for t in chunk],
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            )
            input_ids, mask = batch["input_ids"], batch["attention_mask"]
        with torch.no_grad():
            output = model.generate(
                input_ids=input_ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                num_beams=1,
                pad_token_id=pad,
                eos_token_id=tokenizer.eos_token_id,
            )
        if task == "causal-lm":
            # generate returns prompt + new tokens (peft drops its virtual tokens): keep the new
            output = output[:, input_ids.shape[1] :]
        results += [
            text.strip() for text in tokenizer.batch_decode(output, skip_special_tokens=True)
        ]
    return results


def rouge_scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F-measures (0..1), with stemming, as rouge-score computes them."""
    from rouge_score import rouge_scorer

    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not references:
        return {key: 0.0 for key in ROUGE_KEYS}
    scorer = rouge_scorer.RougeScorer(list(ROUGE_KEYS), use_stemmer=True)
    totals = dict.fromkeys(ROUGE_KEYS, 0.0)
    for prediction, reference in zip(predictions, references, strict=True):
        scores = scorer.score(reference, prediction)
        for key in ROUGE_KEYS:
            totals[key] += scores[key].fmeasure
    return {key: total / len(references) for key, total in totals.items()}
