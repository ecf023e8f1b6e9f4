"""The break-free story of a sweep: per parameter element, the first size at which it leaves its prior's mode,
and one sentence per parameter group that says so with feature names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gpviz.tree.nodes import Compare, Differ, Div, Param, iter_nodes
from gpviz.values.columns import SIZE
from gpviz.values.keys import parse_key
from gpviz.words import plural


@dataclass(frozen=True)
class KeyStory:
    """Where one parameter element breaks free of its prior's mode, over the sizes of a sweep.

    Attributes:
        key: The parameter key.
        group: ``module path.name`` of its parameter (the elements of one ARD lengthscale share it).
        feature: The input feature(s) the element scales, or its index ("" for a scalar).
        story: ``at bound`` (every fold at every size on the same bound), ``held`` (every repeat held
            at every size), ``free`` (no repeat held at any size), ``breaks free`` (some size where not
            every repeat is held), ``no prior``.
        size: The first size where not every repeat is held (``breaks free``), else 0.
        repeats_free: Repeats not held at that size.
        repeats: Repeats judged at that size.
        still_held: Repeats still held at the largest size.
        largest: The largest size.
    """

    key: str
    group: str
    feature: str
    story: str
    size: int = 0
    repeats_free: int = 0
    repeats: int = 0
    still_held: int = 0
    largest: int = 0
    set_sizes: tuple[int, ...] = ()  # sizes where most members are set by the prior away from its mode
    label: str = ""  # what people read for the element's parameter (``lengthscale``, ``noise``), "" if unknown
    members: int = 0  # folds judged, over every size
    set_folds: int = 0  # of them, set by the prior away from its mode
    bound_folds: int = 0  # of them, at a bound
    never_folds: int = 0  # of them, never moved (the data carries no information about it)
    bound: str = ""  # "lower bound (1e-06)" when every fold at every size sits on that bound, else ""


def key_features(expr) -> dict[str, str]:
    """key -> the input feature names a parameter element divides (``Div(compare('a'), lengthscale)``)."""
    out: dict[str, list[str]] = {}
    for node in iter_nodes(expr.tree):
        if isinstance(node, Div) and isinstance(node.den, Param):
            names = [n.name for n in iter_nodes(node.num) if isinstance(n, (Compare, Differ)) and n.name]
            if names:
                out.setdefault(node.den.key, [])
                out[node.den.key] += [n for n in names if n not in out[node.den.key]]
    return {k: ", ".join(v) for k, v in out.items()}


def key_stories(table: pd.DataFrame, features: dict[str, str] | None = None) -> list[KeyStory]:
    """One :class:`KeyStory` per key of a :func:`gpviz.priors.verdicts.verdict_table`."""
    features = features or {}
    out = []
    for key, rows in table.groupby("key", sort=False):
        rows = rows.sort_values(SIZE)
        path, name, index = parse_key(str(key))
        group = f"{path}.{name}" if path else name
        feature = features.get(str(key), ",".join(str(i) for i in index))
        held, reps = rows["repeats_held"].to_numpy(), rows["repeats"].to_numpy()
        sizes = rows[SIZE].to_numpy()
        members = int(rows["members"].sum())
        bound_folds = int(rows["at_bound"].sum())
        bound = ""
        if members and bound_folds == members and "at_lower" in rows:
            lower = int(rows["at_lower"].sum()) == members
            value = rows["lower" if lower else "upper"].iloc[0]
            bound = f"{'lower' if lower else 'upper'} bound ({_number(value)})"
        label = str(rows["label"].iloc[0]) if "label" in rows and len(rows) else ""
        last: dict[str, Any] = dict(still_held=int(held[-1]), largest=int(sizes[-1]),
                                    set_sizes=tuple(int(z) for z in sizes[rows["set_share"].to_numpy() >= 0.5]),
                                    label=label.split("[", 1)[0], members=members, set_folds=int(rows["set"].sum()),
                                    bound_folds=bound_folds, bound=bound,
                                    never_folds=int(rows["never_moved"].sum()) if "never_moved" in rows else 0)
        if bound:
            out.append(KeyStory(str(key), group, feature, "at bound", **last))
        elif (rows["prior"].astype(str) == "none").all():
            out.append(KeyStory(str(key), group, feature, "no prior", **last))
        elif (held == reps).all():
            out.append(KeyStory(str(key), group, feature, "held", **last))
        elif (held == 0).all():
            out.append(KeyStory(str(key), group, feature, "free", **last))
        else:
            j = int(np.argmax(held < reps))
            out.append(KeyStory(str(key), group, feature, "breaks free", int(sizes[j]), int(reps[j] - held[j]),
                                int(reps[j]), **last))
    return out


def break_free_sentences(stories: list[KeyStory]) -> dict[str, str]:
    """group -> one sentence saying where each of its elements leaves the prior's mode.

    E.g. ``"lengthscale: 6 lengthscales leave the prior's mode at n = 80 in 2 of 4 repeats (x2, x3, x4,
    x5, x6, x7); 2 are never held at the prior's mode (x0, x1); over every size: set by the prior away from
    its mode in 40 of 320 folds."`` or ``"noise sits at its lower bound (1e-06) at every size."``: a group
    starts with its label (the module path where the rows carry none), and every verdict besides held and
    free that occurs is said with its count.
    """
    groups: dict[str, list[KeyStory]] = {}
    for st in stories:
        groups.setdefault(st.group, []).append(st)
    out = {}
    for group, items in groups.items():
        noun = group.rsplit(".", 1)[-1]
        name = items[0].label or group  # what people read: the label without its feature, else the module path
        clauses: dict[tuple, list[KeyStory]] = {}
        for st in items:
            clauses.setdefault((st.story, st.size, st.repeats_free, st.repeats, st.still_held, st.largest,
                                st.set_sizes, st.bound), []).append(st)
        parts = []
        for i, ((story, size, free, reps, still, largest, set_sizes, bound), sts) in enumerate(clauses.items()):
            count = len(sts)
            named = [s.feature for s in sts if s.feature]
            feats = f" ({', '.join(named)})" if named else ""
            subject = (name if len(items) == 1 else plural(count, noun)) if i == 0 else str(count)
            one = count == 1
            if set_sizes:
                feats = (f", set by the prior away from its mode at n = {', '.join(str(z) for z in set_sizes)}"
                         + feats)
            if story == "at bound":
                parts.append(f"{subject} {'sits' if one else 'sit'} at {'its' if one else 'their'} {bound} at "
                             f"every size{feats}")
            elif story == "no prior":
                parts.append(f"{subject} {'has' if one else 'have'} no prior: the data alone sets "
                             f"{'it' if one else 'them'}{feats}")
            elif story == "held":
                parts.append(f"{subject} {'stays' if one else 'stay'} at the prior's mode at every size{feats}")
            elif story == "free":
                parts.append(f"{subject} {'is' if one else 'are'} never held at the prior's mode{feats}")
            else:
                tail = f", still held in {still} of {reps} at n = {largest}" if still and largest != size else ""
                parts.append(f"{subject} {'leaves' if one else 'leave'} the prior's mode at n = {size} in {free} "
                             f"of {reps} repeats{tail}{feats}")
        # one element: its label starts the sentence; several: the label, then a clause per story
        out[group] = ("" if len(items) == 1 else f"{name}: ") + "; ".join(parts) + _counts(items) + "."
    return out


def _number(value) -> str:
    """A bound as people write it: ``1e-06``, ``0.025``."""
    return f"{float(value):.4g}"


def _counts(items: list[KeyStory]) -> str:
    """Every verdict besides held and free that occurs in a group, with its count over every fold and size
    (elements whose every fold sits on a bound are said already)."""
    rest = [st for st in items if not st.bound]
    members = sum(st.members for st in rest)
    said = []
    set_folds = sum(st.set_folds for st in rest)
    bound_folds = sum(st.bound_folds for st in rest)
    if set_folds:
        said.append(f"set by the prior away from its mode in {set_folds} of {members} folds")
    if bound_folds:
        said.append(f"at a bound in {bound_folds} of {members} folds")
    never_folds = sum(st.never_folds for st in rest)
    if never_folds:
        said.append(f"never moved (the data carries no information about it) in {never_folds} of {members} folds")
    return ("; over every size: " + ", ".join(said)) if said else ""
