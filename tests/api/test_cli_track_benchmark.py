"""``siammatch synth --video``, ``track-benchmark`` and ``eval tracking`` end to end, for every
tracker family, on synthetic sequences in each benchmark's layout (tiny untrained networks:
the scores mean nothing, the files and protocols are what is checked)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.cli import main

SIZE = "64x96"
#: family -> (recipe, overrides, layout, benchmark, frames)
RUNS = {
    "siamfc": ("tiny/siamfc_alexnet", [], "otb", "OTB100", 5),
    "siamrpn": ("tiny/siamrpn_alexnet", [], "uav123", "UAV123", 6),
    "dasiamrpn": (
        "tiny/siamrpn_alexnet",
        ["inference.track.tracker=dasiamrpn"],
        "lasot",
        "LaSOT",
        6,
    ),
    "siamrpnpp": ("siamrpnpp_alexnet", [], "otb", "OTB100", 5),
    "siamfcpp": ("tiny/siamfcpp_alexnet", [], "got10k", "GOT-10k", 6),
    "siammask": ("tiny/siammask_r50", [], "vot", "VOT2018", 14),
    "siamrpn_lt": ("tiny/siamrpn_alexnet", [], "vot-lt", "VOT2018-LT", 6),
}
SCORES = {
    "OTB100": {"success_auc", "precision"},
    "UAV123": {"success_auc", "precision"},
    "LaSOT": {"success_auc", "precision", "norm_precision"},
    "GOT-10k": {"success_auc", "precision", "ao", "sr50", "sr75"},
    "VOT2018": {"accuracy", "robustness", "failures", "eao"},
    "VOT2018-LT": {"lt_precision", "lt_recall", "lt_f1"},
}


def run(args, capsys):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    """Untrained tiny networks saved as siammatch checkpoints (the CLI wants weights)."""
    import torch

    import matcher
    from matcher.checkpoints.io import save_checkpoint

    folder = tmp_path_factory.mktemp("weights")
    out = {}
    for recipe in sorted({r for r, *_ in RUNS.values()}):
        torch.manual_seed(0)
        m = matcher.load(recipe)
        out[recipe] = save_checkpoint(
            folder / f"{recipe.split('/')[-1]}.pth", m.net, m.recipe.to_dict()
        )
    return out


@pytest.mark.parametrize("family", list(RUNS))
def test_synth_track_and_score_end_to_end(family, weights, tmp_path, capsys):
    recipe, overrides, layout, bench, frames = RUNS[family]
    data = tmp_path / layout
    code, out, err = run(
        ["synth", "--video", "--layout", layout, "--out", data, "--sequences", 2,
         "--frames", frames, "--seed", 5, "--size", SIZE, "--workers", 1],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert f"--dataset {bench}" in out
    results = tmp_path / "results"
    args = ["track-benchmark", "--dataset", bench, "--root", data, "--recipe", recipe]
    args += ["--weights", weights[recipe], "--out", results, "--name", family, "--no-progress"]
    for item in overrides:
        args += ["--set", item]
    code, out, err = run(args, capsys)
    assert code == 0, err
    assert out.startswith(f"{family}: ") and "frames of " + bench in out
    folder = results / bench / family
    first = {
        "otb": folder / "Synth01.txt",
        "uav123": folder / "synth1.txt",
        "lasot": folder / "product-1.txt",
        "got10k": folder / "GOT-10k_Val_000001" / "GOT-10k_Val_000001_001.txt",
        "vot": folder / "baseline" / "product1" / "product1_001.txt",
        "vot-lt": folder / "longterm" / "product1" / "product1_001_confidence.value",
    }[layout]
    lines = first.read_text().splitlines()
    assert len(lines) == frames
    if layout == "vot":
        assert lines[0] == "1" and all(len(x.split(",")) in (1, 4, 8) for x in lines)
    if layout == "vot-lt":
        assert lines[0] == "" and 0.0 <= float(lines[1]) <= 1.0
    report_path, plots = tmp_path / "report.json", tmp_path / "plots"
    code, out, err = run(
        ["eval", "tracking", "--dataset", bench, "--root", data, "--results", results,
         "--output", report_path, "--plots", plots, "--markdown", tmp_path / "t.md",
         "--no-progress"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert f"| {family} |" in out and (tmp_path / "t.md").read_text() in out
    report = json.loads(report_path.read_text())
    scores = report[bench]["trackers"][family]
    assert SCORES[bench] <= set(scores)
    if bench == "VOT2018":
        # an untrained tracker fails often: each re-initialisation's 10 burn-in frames are
        # not scored, so accuracy may have no frame left (null)
        assert scores["accuracy"] is None or 0 <= scores["accuracy"] <= 1
        assert scores["failures"] >= 0 and scores["robustness"] >= 0
        assert scores["eao"] is None  # 14-frame sequences never reach VOT2018's interval
        assert set(scores["attributes"]) >= {"occlusion", "camera_motion"}
    else:
        key = "lt_f1" if bench == "VOT2018-LT" else "success_auc"
        # null where an untrained tracker never overlaps (F = 0 / 0, as in PySOT)
        assert scores[key] is None or 0 <= scores[key] <= 1
    assert sorted(p.name for p in plots.iterdir()) and all(
        p.name.startswith(bench) and p.suffix == ".png" for p in plots.iterdir()
    )


@pytest.mark.slow
def test_workers_run_in_spawned_processes_with_the_same_results(weights, tmp_path, capsys):
    data = tmp_path / "otb"
    code, _, err = run(
        ["synth", "--video", "--layout", "otb", "--out", data, "--sequences", 3, "--frames", 4,
         "--size", SIZE, "--workers", 1],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    outputs = {}
    for workers in (1, 2):
        results = tmp_path / f"results{workers}"
        args = ["track-benchmark", "--dataset", "OTB2015", "--root", data, "--out", results]
        args += ["--weights", weights["tiny/siamrpn_alexnet"], "--workers", workers]
        code, _, err = run([*args, "--no-progress"], capsys)
        assert code == 0, err
        folder = results / "OTB100" / "siamrpn_alexnet"  # the weights file's stem
        outputs[workers] = {p.name: p.read_text() for p in sorted(folder.iterdir())}
    assert list(outputs[1]) == ["Synth01.txt", "Synth02-1.txt", "Synth02-2.txt", "Synth03.txt"]
    assert outputs[1] == outputs[2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["track-benchmark", "--dataset", "VOT2077", "--root", "{data}", "--out", "{tmp}/r",
          "--recipe", "siamfc_pixels"], "unknown tracking benchmark 'VOT2077'"),
        (["track-benchmark", "--dataset", "VOT2018", "--root", "{tmp}/none", "--out", "{tmp}/r",
          "--recipe", "siamfc_pixels"], "does not exist"),
        (["track-benchmark", "--dataset", "VOT2018", "--root", "{data}", "--out", "{tmp}/r",
          "--recipe", "siamfc_pixels", "--workers", "0"], "--workers must be between"),
        (["track-benchmark", "--dataset", "VOT2018", "--root", "{data}", "--out", "{tmp}/r",
          "--recipe", "siamfc_pixels", "--sequences", "nope"], "has no sequence nope"),
        (["track-benchmark", "--dataset", "VOT2018", "--root", "{data}", "--out", "{tmp}/r",
          "--weights", "{tmp}/missing.pth"], "does not exist"),
        (["eval", "tracking", "--dataset", "VOT2018", "--root", "{data}", "--results",
          "{tmp}/none"], "no results for VOT2018"),
        (["eval", "tracking", "--dataset", "OTB100", "--root", "{data}", "--results",
          "{tmp}"], "holds no OTB100 sequence"),
        (["synth", "--video", "--out", "{tmp}/v", "--layout", "vot"],
         "needs --sequences, --frames"),
        (["synth", "--out", "{tmp}/v", "--products", "2"], "needs --products and --scenes"),
    ],
)  # fmt: skip
def test_mistakes_give_one_line_and_status_2(args, message, tmp_path, capsys):
    data = tmp_path / "vot"
    (data / "seq").mkdir(parents=True)
    (data / "list.txt").write_text("seq\n")
    (data / "seq" / "groundtruth.txt").write_text("1,1,9,1,9,9,1,9\n")
    (data / "seq" / "00000001.jpg").write_bytes(b"")
    argv = [a.format(data=data, tmp=tmp_path) for a in args]
    code, _, err = run(argv, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("siammatch: error: "), err
    assert message in lines[0]


def test_siamfc_pixels_tracks_a_synthetic_product(tmp_path, capsys):
    """The training-free template matcher follows the product: the scores are meaningful."""
    data = tmp_path / "otb"
    code, _, err = run(
        ["synth", "--video", "--layout", "otb", "--out", data, "--sequences", 1, "--frames", 8,
         "--size", "120x160", "--seed", 2],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    args = ["track-benchmark", "--dataset", "OTB100", "--root", data, "--out", tmp_path / "r"]
    code, _, err = run([*args, "--recipe", "siamfc_pixels", "--no-progress"], capsys)
    assert code == 0, err
    code, _, err = run(
        ["eval", "tracking", "--dataset", "OTB100", "--root", data, "--results", tmp_path / "r",
         "--output", tmp_path / "r.json", "--no-progress"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    scores = json.loads((tmp_path / "r.json").read_text())["OTB100"]["trackers"]["siamfc_pixels"]
    assert scores["success_auc"] > 0.5 and scores["precision"] > 0.6
