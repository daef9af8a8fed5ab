"""The report's figures show what a cosmologist expects: spectra up to k_Nyq, empty predictions said
out loud, galaxies as points over the DM slab in Mpc/h, r < 0 on the cross-matrix colour scale."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.image import AxesImage

from evaluate_helpers import as_prediction, clustered_truth, write_set
from galaxygen.evaluate.pipeline import compute
from galaxygen.report import figures

GRID = 16


@pytest.fixture
def evaluated(tmp_path, make_box):
    """Metrics and slabs of three predictions on two truth boxes: exact, empty, 2 Poisson realisations."""
    truths = [clustered_truth(make_box, f"CV_{i}", seed=i, grid=GRID) for i in range(2)]
    tdir = write_set(tmp_path / "truth", truths)
    exact = write_set(tmp_path / "exact", [as_prediction(t, t.galaxies) for t in truths])
    empty = write_set(tmp_path / "empty", [as_prediction(t, np.zeros_like(t.galaxies)) for t in truths])
    rng = np.random.default_rng(0)
    samples = tmp_path / "samples"
    for r in range(2):
        write_set(samples, [as_prediction(t, rng.poisson(t.galaxies), realisation=r, realisations=2)
                            for t in truths], suffix=f"_r{r}")
    return compute([tdir], {"exact": [exact], "nothing": [empty], "samples": [samples]})


def _curves(ax):
    """The data lines of an axes (not the horizontal / vertical reference lines)."""
    return [line for line in ax.get_lines() if len(line.get_xdata()) > 2]


@pytest.mark.parametrize("make", [figures.power_figure, figures.correlation_figure])
def test_spectra_stop_at_the_nyquist_wavenumber(evaluated, make):
    metrics, _ = evaluated
    k_nyq = metrics["truth"]["k_nyquist"]
    assert max(metrics["predictions"]["exact"]["power"]["k"]) > 1.5 * k_nyq  # the data go beyond it
    fig = make(metrics)
    lines = [line for ax in fig.axes for line in _curves(ax)]
    assert lines
    for line in lines:
        assert max(line.get_xdata()) <= k_nyq * (1 + 1e-9), line.get_label()
    for ax in fig.axes:
        assert ax.get_xlim()[1] == pytest.approx(k_nyq)
        for coll in ax.collections:  # realisation bands too
            for path in coll.get_paths():
                assert path.vertices[:, 0].max() <= k_nyq * (1 + 1e-9)


@pytest.mark.parametrize("make", [figures.power_figure, figures.correlation_figure])
def test_empty_prediction_has_no_line_and_is_named(evaluated, make):
    metrics, _ = evaluated
    fig = make(metrics)
    ax = fig.axes[0]
    labels = [line.get_label() for ax_ in fig.axes for line in ax_.get_lines()]
    assert "exact" in labels and "samples" in labels and "nothing" not in labels
    legend = ax.get_legend()
    assert "nothing" not in [t.get_text() for t in legend.get_texts()]
    assert "empty" in legend.get_title().get_text() and "nothing" in legend.get_title().get_text()


def test_slab_figure_points_over_dm_in_mpc_per_h(evaluated):
    metrics, slabs = evaluated
    totals = {label: res["galaxies"]["pred_total"] for label, res in metrics["predictions"].items()}
    fig = figures.slices_figure(slabs, totals)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.images]
    titles = [ax.get_title() for ax in panels]
    # the truth once per truth box shown, then each prediction beside it
    assert sum(t.startswith("truth:") for t in titles) == len({(s["suite"], s["name"]) for s in slabs.values()}) == 1
    assert [t.split("\n")[0] for t in titles] == ["truth: CV_0 (A)", "exact", "nothing", "samples"]
    box_size = next(iter(slabs.values()))["box_size"]
    for ax in panels:
        assert ax.get_xlim() == pytest.approx((0, box_size)) and ax.get_ylim() == pytest.approx((0, box_size))
        assert "Mpc" in ax.get_xlabel() and "Mpc" in ax.get_ylabel()
    # one colour scale per field, shared by every panel
    images = [im for ax in panels for im in ax.images if isinstance(im, AxesImage)]
    assert len({(im.norm.vmin, im.norm.vmax) for im in images}) == 1
    points = [c for ax in panels for c in ax.collections if isinstance(c, PathCollection)]
    assert len({(c.norm.vmin, c.norm.vmax) for c in points}) == 1
    # galaxies as points: one per column of the slab holding galaxies, in Mpc/h
    truth_slab = slabs["exact"]["truth"]
    [truth_points] = [c for c in panels[0].collections if isinstance(c, PathCollection)]
    assert len(truth_points.get_offsets()) == int((truth_slab > 0).sum()) > 0
    assert np.asarray(truth_points.get_offsets()).max() < box_size
    # the empty prediction: no points, an explicit note
    empty_panel = panels[2]
    assert not [c for c in empty_panel.collections if isinstance(c, PathCollection)]
    assert any("empty" in t.get_text() for t in empty_panel.texts)
    assert not any("empty" in t.get_text() for ax in panels if ax is not empty_panel for t in ax.texts)
    thickness = next(iter(slabs.values()))["thickness"]
    assert f"{thickness:.3g}" in " ".join(t.get_text() for t in fig.texts)  # the suptitle


def test_cross_matrix_colour_scale_covers_negative_r():
    matrices = {"net": {"rows_trained_on": ["A", "B"], "cols_tested_on": ["A", "B"],
                        "f1": [[0.9, 0.2], [0.1, None]], "min_r": [[0.95, -0.6], [0.0, None]]}}
    fig = figures.cross_matrix_figure(matrices)
    r_image = fig.axes[1].images[0]
    assert r_image.norm.vmin <= -1.0 and r_image.norm.vmax >= 1.0
    colour = lambda v: tuple(r_image.cmap(r_image.norm(v)))  # noqa: E731
    assert colour(-0.6) != colour(0.0)  # a scale clipped at 0 would draw r = -0.6 like r = 0
    texts = [t.get_text() for t in fig.axes[1].texts]
    assert "-0.600" in texts and "—" in texts


def test_samples_figure_shows_each_realisation_of_a_stochastic_prediction(evaluated, tmp_path):
    metrics, slabs = evaluated
    # only the prediction with two realisations has a samples row; each panel is its own realisation
    picked = figures.sample_slabs(slabs)
    assert sorted(picked) == ["samples, sample 0", "samples, sample 1"]
    s0, s1 = (picked[f"samples, sample {r}"]["pred"] for r in (0, 1))
    assert not np.array_equal(s0, s1)  # two Poisson draws differ
    assert np.array_equal(s0, slabs["samples"]["pred"])  # the slices figure's panel is sample 0
    assert all(np.array_equal(p["truth"], slabs["samples"]["truth"]) for p in picked.values())
    fig = figures.samples_figure(slabs)
    titles = [ax.get_title().split("\n")[0] for ax in fig.axes if ax.get_visible() and ax.images]
    assert titles == ["truth: CV_0 (A; samples)", "samples, sample 0", "samples, sample 1"]
    counts = [float(ax.get_title().split("\n")[1].split()[0]) for ax in fig.axes if ax.get_visible() and ax.images]
    assert counts[1:] == [float(s0.sum()), float(s1.sum())]
    written = figures.write_all(metrics, slabs, tmp_path / "figs")
    assert written["samples"].name == "samples.png" and written["samples"].stat().st_size > 0
    deterministic = {k: v for k, v in slabs.items() if k != "samples"}
    assert "samples" not in figures.write_all(metrics, deterministic, tmp_path / "figs2")
