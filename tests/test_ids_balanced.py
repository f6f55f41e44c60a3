"""Balanced residual k-means: capacities hold, and a loose capacity changes nothing."""

import math

import numpy as np
import pytest

from semid.ids import balanced, rqkmeans
from semid.ids.config import IdsConfig
from semid.ids.dedup import collision_stats
from semid.ids.methods import METHODS


def test_loose_capacity_is_the_nearest_assignment():
    rng = np.random.default_rng(0)
    x, cents = rng.normal(size=(300, 8)).astype(np.float32), rng.normal(size=(10, 8)).astype(np.float32)
    assert (balanced.balanced_assign(x, cents, cap=300) == rqkmeans.nearest(x, cents)).all()


def test_tight_capacity_is_respected_on_a_hand_made_case():
    # five points at 0 and one at 10; two clusters at 0 and 10 holding at most 3 each:
    # the three points nearest to 10 among the crowd must move (all equal: the first three stay at 0)
    x = np.array([[0.0], [0.1], [0.2], [0.3], [0.4], [10.0]], dtype=np.float32)
    got = balanced.balanced_assign(x, np.array([[0.0], [10.0]], dtype=np.float32), cap=3)
    assert got.tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="cannot hold"):
        balanced.balanced_assign(x, np.array([[0.0], [10.0]], dtype=np.float32), cap=2)


def test_fit_keeps_every_code_under_its_capacity_and_uses_them_all():
    rng = np.random.default_rng(1)
    # a skewed catalogue: most items in one blob, where plain k-means crowds codes
    x = np.concatenate([rng.normal(0, 0.05, (900, 16)), rng.normal(3, 1.0, (100, 16))]).astype(np.float32)
    books, codes = balanced.fit(x, levels=2, codebook_size=16, seed=0, niter=10, balance_iters=3)
    cap = math.ceil(len(x) / 16)
    assert books.shape == (2, 16, 16) and codes.shape == (1000, 2)
    for level in range(2):
        counts = np.bincount(codes[:, level], minlength=16)
        assert counts.max() <= cap and (counts > 0).all()
    plain = rqkmeans.assign(x, rqkmeans.fit(x, levels=2, codebook_size=16, seed=0, niter=10))
    assert np.bincount(plain[:, 0], minlength=16).max() > cap  # what balancing prevents
    assert collision_stats(codes)["collision_share"] <= collision_stats(plain)["collision_share"]


def test_registered_as_an_ids_method_whose_codec_assigns_new_items_by_nearest_code():
    cfg = IdsConfig(method="rqkmeans_balanced", levels=2, codebook_size=8, kmeans_iters=5, balance_iters=2)
    assert cfg.folder_name() == "rqkmeans_balanced-2x8" and "balance_iters" in cfg.id_fields()
    x = np.random.default_rng(2).normal(size=(200, 4)).astype(np.float32)
    codec, codes, _ = METHODS["rqkmeans_balanced"].fit(x, cfg)
    assert codes.shape == (200, 2)
    assert (codec.codes(x) == rqkmeans.assign(x, codec.codebooks)).all()
