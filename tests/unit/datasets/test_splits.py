"""Split rules: the validation images `evaluate --calibrate` redoes are the trainer's."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.synthetic import make_voc_dataset

from detectflow.datasets import SPLITS, carve_validation, load_dataset, validation_items
from detectflow.datasets.splits import rule_split


def test_validation_items_are_the_trainers_own(tmp_path: Path) -> None:
    from trainer.config import TrainConfig
    from trainer.data import split_items

    root = make_voc_dataset(tmp_path / "voc", n_images=40)
    for config in (TrainConfig(data=str(root)), TrainConfig(data=str(root), val_fraction=0.4),
                   TrainConfig(data=str(root), val_split="val")):
        _, _, trainer_val = split_items(config)
        ours = validation_items(load_dataset(root), config.train_split, config.val_split,
                                config.val_fraction)

        assert [a.image_id for a in ours] == [a.image_id for a in trainer_val]


def test_carving_is_stable_when_images_are_added(tmp_path: Path) -> None:
    small = load_dataset(make_voc_dataset(tmp_path / "a", n_images=30)).split("all")
    large = load_dataset(make_voc_dataset(tmp_path / "b", n_images=60)).split("all")

    val_small = {a.image_id for a in carve_validation(small, 0.2)[1]}
    val_large = {a.image_id for a in carve_validation(large, 0.2)[1]}

    assert val_small and val_small == {i for i in val_large if i in {a.image_id for a in small}}


def test_rule_split_is_20_20_60_over_sorted_names() -> None:
    splits = rule_split([f"x{i:02d}" for i in reversed(range(10))])

    assert splits["test"] == ["x00", "x05"] and splits["val"] == ["x01", "x06"]
    assert len(splits["train"]) == 6 and set(splits["trainval"]) == set(splits["train"]) | {
        "x01", "x06"}
    assert SPLITS == ("train", "val", "trainval", "test", "all")


@pytest.mark.parametrize("name", ["train", "val", "trainval", "test", "all"])
def test_every_split_name_exists_in_a_loaded_dataset(name: str, voc_root: Path) -> None:
    assert isinstance(load_dataset(voc_root).split(name), list)
