"""``siammatch eval pairs``'s held-out checks: the synthetic sets recipes train on are found,
an evaluation set never shares their seed or their product designs, and the held-out set is
generated once and reused."""

from __future__ import annotations

import pytest

import matcher
from trainers.evaluate import heldout


def test_synth_sources_found_in_any_yaml(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.yaml").write_text(
        "train:\n  data:\n    - {kind: synth, root: x, seed: 7, products: 12}\n"
        "    - {kind: coco, root: y}\n"
    )
    (tmp_path / "sub" / "_b.yaml").write_text(
        "train: {val_data: [{kind: synth, root: z, seed: 8}]}\n"
    )
    found = sorted((s.seed, s.products) for s in heldout.synth_sources(tmp_path))
    assert found == [(7, 12), (8, 100)]


def test_project_recipes_train_on_seeds_the_default_eval_seed_avoids():
    from api.cli_eval_pairs import DEFAULT_EVAL_SEED
    from matcher.recipes import recipe_dir

    seeds = {s.seed for s in heldout.synth_sources(recipe_dir())}
    assert 11 in seeds and 12 in seeds  # configs/tiny/_data.yaml
    assert DEFAULT_EVAL_SEED not in seeds


def test_check_held_out_refuses_training_seed_and_drops_shared_designs(monkeypatch):
    sources = [heldout.SynthSource(seed=3, products=8, where="recipe x")]
    with pytest.raises(matcher.InvalidArgumentError, match="recipe x"):
        heldout.check_held_out(3, 8, sources)

    class Spec:
        def __init__(self, pid, family):
            self.product_id, self.family_name = pid, family

    catalogs = {
        3: [Spec(1, "Zen Crunch"), Spec(2, "Zen Crunch"), Spec(3, "Lo Cola")],
        9: [Spec(1, "Mar Juice"), Spec(2, "Lo Cola"), Spec(3, "Lo Cola"), Spec(4, "Vi Tea")],
    }
    import trainers.data.synth

    monkeypatch.setattr(
        trainers.data.synth, "design_catalog", lambda n, *, seed: catalogs[seed][:n]
    )
    excluded, record = heldout.check_held_out(9, 4, sources)
    assert excluded == {2, 3}
    assert record["excluded_products"] == [2, 3]
    assert record["training_seeds_checked"] == [3]


def test_real_catalogs_of_other_seeds_share_no_design():
    from trainers.data.synth import design_catalog

    sources = [heldout.SynthSource(seed=11, products=40, where="tiny")]
    excluded, _ = heldout.check_held_out(1_000_003, 40, sources)
    train = {s.family_name for s in design_catalog(40, seed=11)}
    held = design_catalog(40, seed=1_000_003)
    assert excluded == {s.product_id for s in held if s.family_name in train}


def test_ensure_held_out_set_generates_then_reuses(tmp_path):
    root = tmp_path / "held"
    out = heldout.ensure_held_out_set(
        root, seed=977, num_scenes=2, num_products=3, workers=1, progress=False
    )
    info = heldout.read_dataset_info(out)
    assert (info["seed"], info["num_scenes"], info["num_products"]) == (977, 2, 3)
    stamp = (out / "annotations.json").stat().st_mtime_ns
    heldout.ensure_held_out_set(
        root, seed=977, num_scenes=1, num_products=3, workers=1, progress=False
    )
    assert (out / "annotations.json").stat().st_mtime_ns == stamp
    heldout.ensure_held_out_set(
        root, seed=978, num_scenes=1, num_products=3, workers=1, progress=False
    )
    assert heldout.read_dataset_info(out)["seed"] == 978
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "file.txt").write_text("x")
    with pytest.raises(matcher.InvalidArgumentError):
        heldout.ensure_held_out_set(
            tmp_path / "other", seed=1, num_scenes=1, num_products=2, workers=1
        )
