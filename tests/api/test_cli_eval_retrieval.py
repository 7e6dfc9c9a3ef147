"""``siammatch eval retrieval`` end to end on a small generated set."""

from __future__ import annotations

import json

from api.cli import main
from matcher.embedder import build_embedder, save_embedder


def test_eval_retrieval_reports_each_embedder_and_the_baseline(tmp_path, capsys):
    from trainers.data.synth import generate

    data = generate(tmp_path / "set", num_products=6, num_scenes=6, seed=424242, workers=1)
    weights = save_embedder(tmp_path / "e.pth", build_embedder())
    report = tmp_path / "r.json"
    code = main(
        ["eval", "retrieval", "--data", str(data), "--embedder", str(weights), "--ks", "1,3",
         "--output", str(report)]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "| e |" in out and "pooled untrained features" in out
    document = json.loads(report.read_text())
    for name in ("e", "pooled untrained features"):
        recall = document["reports"][name]["recall"]
        assert 0.0 <= recall["1"] <= recall["3"] <= 1.0
        assert document["reports"][name]["num_products"] == 6


def test_eval_retrieval_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["eval", "retrieval", "--embedder", str(tmp_path / "missing.pth")]) == 2
    assert main(["eval", "retrieval", "--ks", "a,b"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("siammatch: error:") for line in err)
