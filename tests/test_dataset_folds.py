"""The k-fold group assignment: disjoint, complete, stratified, deterministic."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tools.dataset import Item, fold_groups


def _items() -> list[Item]:
    out = []
    for k in range(23):  # 23 urban gunshot groups of 1-3 files
        out += [Item(f"g{k}_{j}.flac", "gunshot", f"gun:{k}", "us8k", 1.0, "x") for j in range(1 + k % 3)]
    for k in range(40):
        out.append(Item(f"f{k}.flac", "gunshot", f"forest:{k // 4}", "forest", 1.0, "x"))
    for k in range(60):
        out.append(Item(f"d{k}.flac", "door", f"door:{k // 2}", "dcase", 1.0, "x"))
    out.append(Item("mixed.flac", "glass", "gun:0", "us8k", 1.0, "x"))  # a group holding two labels
    return out


def test_every_group_in_exactly_one_fold() -> None:
    items = _items()
    folds = fold_groups(items, 5, seed=0)
    dealt = [g for fold in folds for g in fold]
    assert len(dealt) == len(set(dealt)) == len({i.group for i in items})


def test_rare_strata_spread_evenly() -> None:
    items = _items()
    folds = fold_groups(items, 5, seed=0)
    fold_of = {g: k for k, fold in enumerate(folds) for g in fold}
    urban_guns = Counter(fold_of[i.group] for i in items if i.label == "gunshot" and i.urban)
    assert max(urban_guns.values()) - min(urban_guns.values()) <= 3
    assert len(urban_guns) == 5


def test_deterministic_for_a_seed_and_changes_with_it() -> None:
    items = _items()
    assert fold_groups(items, 4, seed=1) == fold_groups(items, 4, seed=1)
    assert fold_groups(items, 4, seed=1) != fold_groups(items, 4, seed=2)


def test_needs_two_folds() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        fold_groups(_items(), 1, seed=0)


def test_kfold_train_seed_retrains_the_same_folds() -> None:
    from tools import kfold

    args, extra = kfold.parse_args(["--data", "d", "--out", "o", "--seed", "2", "--train-seed", "7", "--quick"])
    assert args.seed == 2 and extra == ["--quick"]
    assert kfold._train_argv(args, Path("o/fold0"), extra)[4:] == ["--seed", "7", "--quick"]
    args, extra = kfold.parse_args(["--data", "d", "--out", "o", "--seed", "2"])
    assert kfold._train_argv(args, Path("o/fold0"), extra)[4:] == ["--seed", "2"]
