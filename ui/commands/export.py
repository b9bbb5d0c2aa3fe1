"""`peftlab export` (a run's model for use outside peftlab) and `peftlab adapters` (several
adapters of one base: switch between them, or combine them into one).

The work is done in engine.adapters; these commands parse, check and print.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from kernel.config import KernelConfig
from kernel.errors import PeftlabError
from kernel.runs import RunFolder
from ui.context import CliState, fail, pass_state

DEFAULT_ATOL = 1e-4


def _runs_dir(state: CliState) -> Path:
    return KernelConfig(runs_dir=state.runs_dir).resolved_runs_dir()


def _find(state: CliState, refs: tuple[str, ...] | list[str]) -> list[RunFolder]:
    runs_dir = _runs_dir(state)
    try:
        return [RunFolder.find(runs_dir, ref) for ref in refs]
    except PeftlabError as exc:
        fail(exc)
    raise AssertionError("unreachable")


@click.command("export")
@click.argument("run_ref", metavar="RUN")
@click.option(
    "--merge",
    is_flag=True,
    help="Fold the adapter into the base weights and save a standalone transformers model.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where to write (default: <run>/merged with --merge, <run>/export without).",
)
@click.option(
    "--atol",
    type=float,
    default=DEFAULT_ATOL,
    show_default=True,
    help="Largest logit difference accepted between the merged model and base + adapter.",
)
@pass_state
def export_command(
    state: CliState, run_ref: str, merge: bool, out_dir: Path | None, atol: float
) -> None:
    """Export a run's trained model (RUN: id, unique prefix or folder).

    With --merge, a LoRA-family adapter (lora, qlora, adalora, loha, lokr, ia3, vera)
    is merged into its base with peft's merge_and_unload and saved with its tokenizer;
    the saved model is reloaded and its logits compared with base + adapter on the
    run's first validation texts. Without --merge the adapter folder is copied as is.
    """
    from engine.adapters import export_adapter, export_merged
    from engine.inference import run_info

    (run,) = _find(state, (run_ref,))
    out = out_dir or run.path / ("merged" if merge else "export")
    try:
        run_info(run)
        if not merge:
            export_adapter(run, out)
            click.echo(f"adapter of run {run.id} copied to {out}")
            return
        click.echo(f"merging the adapter of run {run.id} into its base model...")
        check = export_merged(run, out)
    except PeftlabError as exc:
        fail(exc)
    except (OSError, ValueError, RuntimeError) as exc:
        fail(f"cannot export run {run.id}: {exc}", code=1)
    if check.dequantized:
        click.echo("the 4-bit base was dequantized to float32 and the adapter merged into it")
    click.echo(
        f"merged {check.technique} model saved to {check.out_dir}\n"
        f"logits on {check.texts} validation texts, merged (reloaded from disk) vs base + adapter: "
        f"max abs diff {check.max_abs_diff:.3g} (in memory {check.max_abs_diff_in_memory:.3g})"
    )
    if not check.ok(atol):
        click.secho(f"error: the difference is above --atol {atol:g}", fg="red", err=True)
        raise SystemExit(1)
    click.echo(
        "load it with: AutoModelForSequenceClassification.from_pretrained"
        f"('{check.out_dir}') (no peft needed)"
    )


@click.group("adapters")
def adapters_group() -> None:
    """Several adapters of one base model: switch between them, or combine them."""


@adapters_group.command("predict")
@click.argument("run_refs", nargs=-1, required=True, metavar="RUN...")
@click.option(
    "--text", "texts", multiple=True, required=True, help="Text to classify (repeatable)."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def adapters_predict(
    state: CliState, run_refs: tuple[str, ...], texts: tuple[str, ...], as_json: bool
) -> None:
    """Load the base once, every run's adapter by its run id, and classify with each in turn."""
    from engine.adapters import AdapterSet

    runs = _find(state, run_refs)
    try:
        adapters = AdapterSet(runs)
        results = {name: adapters.predict(name, list(texts)) for name in adapters.names}
    except PeftlabError as exc:
        fail(exc)
    except (OSError, ValueError, RuntimeError) as exc:
        fail(f"cannot load the adapters: {exc}", code=1)
    if as_json:
        payload = {
            "adapters": {
                name: [
                    {"text": p.text, "label": p.label, "probabilities": p.probabilities}
                    for p in predictions
                ]
                for name, predictions in results.items()
            },
        }
        click.echo(json.dumps(payload, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(adapters.names)} adapter(s) on one base model")
    table.add_column("adapter (run)", overflow="fold")
    table.add_column("text", overflow="fold")
    table.add_column("label", style="bold")
    table.add_column("confidence", justify="right")
    for name, predictions in results.items():
        for p in predictions:
            table.add_row(name, p.text, p.label, f"{p.confidence:.4f}")
    Console(width=max(Console().width, 110)).print(table)


def _weights(raw: str | None) -> list[float] | None:
    if raw is None:
        return None
    try:
        return [float(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {raw!r}") from None


@adapters_group.command("merge")
@click.argument("run_refs", nargs=-1, required=True, metavar="RUN...")
@click.option(
    "--weights", help="One weight per run, comma-separated (default: equal, summing to 1)."
)
@click.option(
    "--method",
    type=click.Choice(
        ["linear", "svd", "cat", "ties", "dare_linear", "dare_ties", "magnitude_prune"]
    ),
    default="linear",
    show_default=True,
    help="peft add_weighted_adapter combination type.",
)
@click.option(
    "--density",
    type=click.FloatRange(0.0, 1.0),
    help="Share of values kept (ties, dare_*, magnitude_prune).",
)
@click.option("--svd-rank", type=click.IntRange(1), help="Rank of the result for svd.")
@click.option(
    "--head",
    type=click.Choice(["average", "first"]),
    default="average",
    show_default=True,
    help="The combined adapter's classification head: the weighted average of the runs' "
    "heads, or the first run's.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for the combined adapter.",
)
@pass_state
def adapters_merge(
    state: CliState,
    run_refs: tuple[str, ...],
    weights: str | None,
    method: str,
    density: float | None,
    svd_rank: int | None,
    head: str,
    out_dir: Path,
) -> None:
    """Combine the LoRA adapters of several runs of one base into one adapter (plain peft format)."""
    from engine.adapters import combine_adapters

    runs = _find(state, run_refs)
    try:
        result = combine_adapters(
            runs,
            out_dir,
            weights=_weights(weights),
            method=method,
            density=density,
            head=head,
            svd_rank=svd_rank,
        )
    except PeftlabError as exc:
        fail(exc)
    except (OSError, ValueError, RuntimeError, TypeError) as exc:
        fail(f"peft could not combine these adapters: {exc}", code=1)
    shown = ", ".join(f"{r} x {w:g}" for r, w in zip(result.runs, result.weights, strict=True))
    click.echo(f"combined ({result.method}): {shown}")
    for note in result.notes:
        click.echo(f"  {note}")
    click.echo(
        f"saved to {result.out_dir}; reloaded with plain peft, logits match the combined model "
        f"in memory within {result.max_abs_diff:.3g}"
    )
    click.echo(f"load it with: PeftModel.from_pretrained(base_model, '{result.out_dir}')")


def register(cli: click.Group) -> None:
    cli.add_command(export_command)
    cli.add_command(adapters_group)
