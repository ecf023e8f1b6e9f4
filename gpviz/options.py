"""One set of view options, with one meaning, for every entry point that draws a model.

``feature_names``, ``units``, ``tasks``, ``outputs`` and ``title`` are accepted by
:func:`gpviz.render`, ``Sweep.render``, ``FitTracer.render``, :func:`gpviz.compare`,
:func:`gpviz.model_expr` and :func:`gpviz.prior_pull` (where each applies). An option an entry point does not
take, or one that does not apply to the object given (``tasks`` for a model without
tasks, ``outputs`` for a single-output model), is an :class:`~gpviz.errors.InputError`
that names the option and what would be accepted; never a ``TypeError``.
"""

from __future__ import annotations

import difflib
from typing import Mapping, Sequence

from gpviz.errors import InputError
from gpviz.tree.nodes import Call, Node, TaskCovar, iter_nodes

#: The shared options and what each means.
OPTIONS: dict[str, str] = {
    "feature_names": "names of the input columns (a list, or a DataFrame of inputs)",
    "units": "'model' (the model's own space) or 'original' (converted back to the data's units)",
    "tasks": "display names of the tasks of a multi-task model",
    "outputs": "display names of the outputs of a multi-output model or a ModelListGP",
    "title": "the figure's title",
    "verdicts": "prior_pull verdicts: None (when cheap), True (always) or False (never)",
    "element_id": "a fixed container id for reproducible output (a model's figure)",
}


def reject_unknown(entry: str, unknown: Mapping[str, object], accepted) -> None:
    """Raises :class:`InputError` for keyword options ``entry`` does not take (none: returns).

    Args:
        entry: The entry point's name, for the message (``"Sweep.render"``).
        unknown: The options left over after the entry point's own keywords.
        accepted: Every keyword ``entry`` takes.
    """
    if not unknown:
        return
    name = next(iter(unknown))
    accepted = sorted(accepted)
    close = difflib.get_close_matches(name, accepted, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    if name in OPTIONS:
        raise InputError(f"{entry}() does not take {name}= ({OPTIONS[name]}): it does not apply there. "
                         f"Options it takes: {', '.join(accepted)}")
    raise InputError(f"{entry}() got an unknown option {name!r}{hint} Options it takes: {', '.join(accepted)}")


def check_names(option: str, names, count: int | None, what: str):
    """``names`` as a tuple of strings, checked against ``count`` (None: no check), or None if not given.

    Raises:
        InputError: ``names`` is a bare string, not a sequence, or of the wrong length.
    """
    if names is None:
        return None
    if isinstance(names, (str, bytes)) or not hasattr(names, "__iter__"):
        raise InputError(f"{option} must be a list of names, got {type(names).__name__} {names!r}")
    names = tuple(str(n) for n in names)
    if count is not None and len(names) != count:
        raise InputError(f"{option} has {len(names)} names but the model has {count} {what}")
    return names


def _has_tasks(tree) -> bool:
    """Whether an expression tree has anything per task (a task covariance or a ``per_task`` list)."""
    return any(isinstance(n, TaskCovar) or (isinstance(n, Call) and n.fn == "per_task") for n in iter_nodes(tree))


def check_applies(model: str, trees: Sequence[Node], *, tasks=None, outputs=None, has_outputs: bool = False) -> None:
    """Raises :class:`InputError` when ``tasks`` / ``outputs`` were given for a model that has none.

    Args:
        model: The model's class name, for the message.
        trees: The trees of the model's expression (its sections), searched for anything per task.
        tasks: The ``tasks`` option as given (None: not given).
        outputs: The ``outputs`` option as given.
        has_outputs: Whether the model has several outputs to name.
    """
    if tasks is not None and not any(_has_tasks(t) for t in trees):
        raise InputError(f"tasks={list(tasks)!r} does not apply: {model} has no tasks "
                         f"(tasks name the tasks of a multi-task model such as MultiTaskGP)")
    if outputs is not None and not has_outputs:
        raise InputError(f"outputs={list(outputs)!r} does not apply: {model} has one output "
                         f"(outputs name the outputs of a multi-output model or a ModelListGP)")


__all__ = ["OPTIONS", "reject_unknown", "check_names", "check_applies"]
