"""tools.train's weight categories: which share each training file's patches draw from."""

from __future__ import annotations

import numpy as np
import pytest

from tools.dataset import Item
from tools.train import Recipe, _category, parse_args, recipe_from_args, sample_weights


def _item(label: str, source: str) -> Item:
    return Item(f"{source}/{label}.flac", label, f"{source}:{label}", source, 4.0, "test")


def test_forest_negatives_get_their_own_share_only_when_asked() -> None:
    forest_bg, urban_bg = _item("background", "forest"), _item("background", "freesound")
    default = Recipe()
    argv = ["--data", "d", "--out", "o", "--share", "forest_neg=0.1", "--share", "hard=0.3"]
    own = recipe_from_args(parse_args(argv))
    assert _category(forest_bg, default) == "other" and "forest_neg" not in default.shares
    assert _category(forest_bg, own) == "forest_neg"
    assert own.shares == {**default.shares, "forest_neg": 0.1, "hard": 0.3}
    assert _category(urban_bg, own) == "other"
    assert _category(_item("gunshot", "forest"), own) == "gun_forest"
    assert _category(_item("fireworks", "freesound"), own) == "hard"


def test_each_category_gets_its_share_split_between_its_labels() -> None:
    cats = ["gun_urban", "gun_urban", "hard", "hard", "hard", "forest_neg"]
    labels = ["gunshot", "gunshot", "glass", "door", "door", "background"]
    w = sample_weights(cats, labels, {"gun_urban": 0.5, "hard": 0.25, "forest_neg": 0.25, "other": 0.3})
    total = w.sum()
    assert np.isclose(w[:2].sum() / total, 0.5) and np.isclose(w[5] / total, 0.25)
    assert np.isclose(w[2] / total, 0.125) and np.isclose(w[3:5].sum() / total, 0.125)


@pytest.mark.parametrize("bad", ["forest=0.1", "hard=lots", "hard=-1"])
def test_a_bad_share_is_refused_with_the_categories(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--data", "d", "--out", "o", "--share", bad])
    assert "--share" in capsys.readouterr().err
