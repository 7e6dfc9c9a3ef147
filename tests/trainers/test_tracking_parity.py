"""The tracking toolkit's scores equal PySOT's toolkit's on the same data.

The reference values were computed once with PySOT's own toolkit — STVIR/pysot commit
d04028f8e18c6b27ee150a7c0d8aab9a1807219e (2025-06-22), ``toolkit/`` with its Cython
``region`` module built (Cython 0.29.37, gcc, Python 3.11.7, numpy 2.4) — on 2026-12-06,
outside this repository, on the set that ``python -m tests.trainers.tracking_parity_data
DIR`` writes (the same files :func:`write_parity_set` writes here; a digest guards that).
The toolkit was driven as its ``tools/eval.py`` drives it: ``OTBDataset`` / ``UAVDataset``
/ ``LaSOTDataset`` with ``OPEBenchmark`` (``eval_success``, ``eval_precision``,
``eval_norm_precision``; AUC = mean of the success curves, precision = mean curve at
index 20, per attribute the mean over ``dataset.attr[a]``), ``VOTDataset`` with
``AccuracyRobustnessBenchmark`` and ``EAOBenchmark(dataset, tags=["all", <5 tags>])``
(accuracy, robustness and lost number as ``show_result`` computes them), and
``VOTLTDataset`` with ``F1Benchmark`` (precision, recall, F at the best mean F). The VOT
region overlaps were computed with the toolkit's ``region.vot_overlap`` on
``overlap_pairs()`` (``tests/trainers/tracking_reference/pysot_vot_overlaps.json``).
PySOT has no GOT-10k scorer: GOT-10k's AO and SR0.5 are checked against the GOT-10k
toolkit's own ``ExperimentGOT10k(root, subset="val").report(trackers)`` (got-10k/toolkit
commit 956e7286fdf209cbb125adac9a46376bd8297ffb, 2021-05-23; run the same day, same way).
Neither toolkit is needed to run these tests.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.trainers.tracking_parity_data import overlap_pairs, write_parity_set
from trainers.evaluate.tracking.datasets import load_dataset
from trainers.evaluate.tracking.region import Regions, vot_overlap, vot_overlaps
from trainers.evaluate.tracking.scoring import score_trackers

TOLERANCE = 1e-6
#: sha256 over the parity set's non-image files (relative path, then bytes, sorted by path).
PARITY_SET_SHA256 = "76f2462d986dc1e50dae827ad9048f43f90b42329613f1246eed8a141ed24400"
REFERENCE = Path(__file__).parent / "tracking_reference" / "pysot_vot_overlaps.json"


PYSOT_SCORES = {
    "OTB100": {
        "alpha": {
            "success_auc": 0.8003174603174603,
            "precision": 0.9461111111111111,
            "attributes": {
                "SV": 0.8084126984126984,
                "IV": 0.7901587301587304,
                "OCC": 0.7901587301587304,
            },
        },
        "beta": {
            "success_auc": 0.6855291005291005,
            "precision": 0.8527777777777779,
            "attributes": {
                "SV": 0.6892063492063492,
                "IV": 0.689404761904762,
                "OCC": 0.689404761904762,
            },
        },
        "gamma": {
            "success_auc": 0.5854320987654321,
            "precision": 0.5942592592592592,
            "attributes": {
                "SV": 0.5987830687830689,
                "IV": 0.5784126984126985,
                "OCC": 0.5784126984126985,
            },
        },
    },
    "UAV123": {
        "alpha": {
            "success_auc": 0.791358024691358,
            "precision": 0.9748148148148147,
            "attributes": {
                "SV": 0.7957671957671958,
                "IV": 0.7896825396825397,
                "OCC": 0.7896825396825397,
            },
        },
        "beta": {
            "success_auc": 0.6439506172839506,
            "precision": 0.8962962962962963,
            "attributes": {
                "SV": 0.6421164021164021,
                "IV": 0.6503174603174603,
                "OCC": 0.6503174603174603,
            },
        },
        "gamma": {
            "success_auc": 0.5542680776014111,
            "precision": 0.7631481481481481,
            "attributes": {
                "SV": 0.5611640211640212,
                "IV": 0.5523015873015874,
                "OCC": 0.5523015873015874,
            },
        },
    },
    "LaSOT": {
        "alpha": {
            "success_auc": 0.7752645502645503,
            "precision": 0.9187037037037037,
            "norm_precision": 0.9187037037037037,
        },
        "beta": {
            "success_auc": 0.6524074074074074,
            "precision": 0.8811111111111112,
            "norm_precision": 0.813888888888889,
        },
        "gamma": {
            "success_auc": 0.555167548500882,
            "precision": 0.7166666666666667,
            "norm_precision": 0.505,
        },
    },
    "VOT2016": {
        "alpha": {
            "accuracy": 0.6188538791176433,
            "robustness": 0.3389830508474576,
            "failures": 4.0,
            "eao": 0.40127780762585724,
            "attributes": {
                "camera_motion": 0.3092813764444806,
                "illum_change": 0.5481499574626937,
                "motion_change": 0.42953846061771567,
                "size_change": 0.37376981934137415,
                "occlusion": 0.1695108229971745,
            },
        },
        "beta": {
            "accuracy": 0.6310395770862993,
            "robustness": 0.7627118644067797,
            "failures": 9.0,
            "eao": 0.28271221781544614,
            "attributes": {
                "camera_motion": 0.3515147901507038,
                "illum_change": 0.30929241160100157,
                "motion_change": 0.32659942058451247,
                "size_change": 0.27728376447251346,
                "occlusion": 0.15276815931340962,
            },
        },
        "gamma": {
            "accuracy": 0.5232672534227647,
            "robustness": 1.6101694915254237,
            "failures": 19.0,
            "eao": 0.09652931217781523,
            "attributes": {
                "camera_motion": 0.1771593697256211,
                "illum_change": 0.08231193881312554,
                "motion_change": 0.1034771181981672,
                "size_change": 0.10777595478364012,
                "occlusion": 0.18000380037296,
            },
        },
    },
    "VOT2018": {
        "alpha": {
            "accuracy": 0.6130624808811983,
            "robustness": 0.5932203389830508,
            "failures": 7.0,
            "eao": 0.28030161171107904,
            "attributes": {
                "camera_motion": 0.3354297316259911,
                "illum_change": 0.26080457164619686,
                "motion_change": 0.3008124039214873,
                "size_change": 0.7464857093699566,
                "occlusion": 0.16053987497369604,
            },
        },
        "beta": {
            "accuracy": 0.599221523079461,
            "robustness": 1.1016949152542372,
            "failures": 13.0,
            "eao": 0.17405448978629093,
            "attributes": {
                "camera_motion": 0.18596348262134693,
                "illum_change": 0.20721244722140902,
                "motion_change": 0.19523751573339973,
                "size_change": 0.16728516311497077,
                "occlusion": 0.2308904983190247,
            },
        },
        "gamma": {
            "accuracy": 0.5189064774810753,
            "robustness": 1.7740112994350286,
            "failures": 20.933333333333334,
            "eao": 0.10740435882996956,
            "attributes": {
                "camera_motion": 0.12805427222400323,
                "illum_change": 0.11880841314908595,
                "motion_change": 0.10559494126631593,
                "size_change": 0.14004461545540664,
                "occlusion": 0.10009988807576639,
            },
        },
    },
    "VOT2019": {
        "alpha": {
            "accuracy": 0.6046058275174718,
            "robustness": 0.1694915254237288,
            "failures": 2.0,
            "eao": 0.582686782488978,
            "attributes": {
                "camera_motion": 0.6812799987269611,
                "illum_change": 0.5329634045445641,
                "motion_change": 0.5569122188944158,
                "size_change": 0.5550546285098161,
                "occlusion": 0.6499720799729107,
            },
        },
        "beta": {
            "accuracy": 0.6160372420526433,
            "robustness": 0.847457627118644,
            "failures": 10.0,
            "eao": 0.33975450997430134,
            "attributes": {
                "camera_motion": 0.4437024450399042,
                "illum_change": 0.21062607130384056,
                "motion_change": 0.4116126177756767,
                "size_change": 0.48141166507228605,
                "occlusion": 0.5461003873648682,
            },
        },
        "gamma": {
            "accuracy": 0.4960612394085177,
            "robustness": 1.694915254237288,
            "failures": 20.0,
            "eao": 0.14633810447483528,
            "attributes": {
                "camera_motion": 0.17357419994546147,
                "illum_change": 0.0993487190576346,
                "motion_change": 0.12543470088422784,
                "size_change": 0.24985945933475728,
                "occlusion": 0.11668672810906802,
            },
        },
    },
    "VOT2018-LT": {
        "alpha": {
            "lt_precision": 0.7336912517423729,
            "lt_recall": 0.7365456492595909,
            "lt_f1": 0.7351156796600444,
        },
        "beta": {
            "lt_precision": 0.6393032147687217,
            "lt_recall": 0.638856081818573,
            "lt_f1": 0.6390795700843522,
        },
        "gamma": {
            "lt_precision": 0.5587139407777837,
            "lt_recall": 0.5488724222628568,
            "lt_f1": 0.5537494578478773,
        },
    },
}


GOT10K_SCORES = {
    "alpha": {"ao": 0.8248082029207927, "sr50": 0.963302752293578},
    "beta": {"ao": 0.6772556881881032, "sr50": 0.9357798165137615},
    "gamma": {"ao": 0.5672940120579735, "sr50": 0.7217125382262997},
}


@pytest.fixture(scope="module")
def parity_set(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("parity")
    data, results = write_parity_set(root)
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix not in (".jpg", ".png"):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    assert digest.hexdigest() == PARITY_SET_SHA256, (
        "the parity set differs from the one PySOT's reference values were computed on"
    )
    return data, results


def _close(ours: float, theirs: float) -> bool:
    return abs(ours - theirs) <= TOLERANCE


@pytest.mark.parametrize("name", list(PYSOT_SCORES))
def test_scores_equal_pysot_toolkit(parity_set, name):
    data, results = parity_set
    report = score_trackers(load_dataset(name, data / name), results)
    assert set(report["trackers"]) == set(PYSOT_SCORES[name])
    for tracker, expected in PYSOT_SCORES[name].items():
        ours = report["trackers"][tracker]
        for key, value in expected.items():
            if key != "attributes":
                assert _close(ours[key], value), (tracker, key, ours[key], value)
                continue
            for attr, attr_value in value.items():
                got = ours["attributes"][attr]
                got = got["eao"] if "eao" in got else got["success_auc"]
                assert _close(got, attr_value), (tracker, attr, got, attr_value)


def test_vot_overlap_equals_pysot_region_module():
    pairs = overlap_pairs()
    doc = json.loads(REFERENCE.read_text())
    assert hashlib.sha256(json.dumps(pairs).encode()).hexdigest() == doc["pairs_sha256"]
    expected = [math.nan if v is None else v for v in doc["overlaps"]]
    single = [vot_overlap(a, b, bounds) for a, b, bounds in pairs]
    np.testing.assert_array_equal(single, expected)  # bit for bit (float32 values)
    # One vectorised call over every bounded pair gives the same values.
    bounded = [i for i, (_, _, bounds) in enumerate(pairs) if bounds is not None]
    batch = vot_overlaps(
        Regions.from_rows([pairs[i][0] for i in bounded]),
        Regions.from_rows([pairs[i][1] for i in bounded]),
        np.array([pairs[i][2] for i in bounded], float),
    )
    np.testing.assert_array_equal(batch, [expected[i] for i in bounded])


def test_got10k_scores_equal_the_got10k_toolkit(parity_set):
    data, results = parity_set
    report = score_trackers(load_dataset("GOT-10k", data / "GOT-10k"), results)
    for tracker, expected in GOT10K_SCORES.items():
        ours = report["trackers"][tracker]
        for key, value in expected.items():
            assert _close(ours[key], value), (tracker, key, ours[key], value)
