"""Model parameters are checked the same way in every model (riskgrid.models._base.check_int / check_number)."""

import numpy as np
import pytest

from riskgrid.models import SEPP, CountHotspot, GridHawkes, KDEHotspot, ProspectiveHotspot


@pytest.mark.parametrize(
    "model,msg",
    [
        (GridHawkes(max_iter=True), r"max_iter must be an integer >= 1, got True"),
        (GridHawkes(spillover_rings=11), r"spillover_rings must be an integer in 0..10 \(H3 rings\)"),
        (GridHawkes(tol=float("nan")), r"tol must be a finite number > 0"),
        (GridHawkes(background_self_weight="half"), r"background_self_weight must be a finite number >= 0, got 'half'"),
        (GridHawkes(background_self_weight=1.5), r"background_self_weight must be in \[0, 1\], got 1.5"),
        (SEPP(max_iter=True), r"max_iter must be an integer >= 1, got True"),
        (SEPP(bandwidth_m=True), r"bandwidth_m must be a finite number > 0 \(metres\) or None, got True"),
        (SEPP(max_days=np.inf), r"max_days must be a finite number > 0 \(days\) or None"),
        (CountHotspot(window_days="365"), r"window_days must be a finite number > 0 \(days\) or None, got '365'"),
        (KDEHotspot(bandwidth_m=-1.0), r"bandwidth_m must be a finite number > 0 \(metres\), got -1.0"),
        (ProspectiveHotspot(window_weeks=0), r"window_weeks must be an integer >= 1 \(weeks\)"),
    ],
)
def test_bad_parameters_are_named(sim_city, model, msg):
    _, events, grid = sim_city
    with pytest.raises(ValueError, match=msg):
        model.fit(events, grid)


def test_numpy_numbers_are_accepted(sim_city):
    _, events, grid = sim_city
    GridHawkes(tol=np.float32(1e-2), max_iter=np.int64(200)).fit(events.between(None, "2024-03-01"), grid)
    KDEHotspot(bandwidth_m=np.float64(250.0), window_days=np.int64(60)).fit(events, grid)
