"""Preflight of `harness run` and `harness reproduce`: every check that needs no write and no paid request.

Why: a run is fetch -> calibrate -> sample -> vote -> plot. Checked stage by stage, a damaged store or an
unreachable server would only show up after `fetch` had rewritten its outputs. Here, before any stage,
the dataset is read and checked row by row, the store is read (never created), and only when some
response is missing is the endpoint checked: the key variable first, then one probe. A warm store needs
neither a key nor a server, so neither is asked for (that is what makes a replay work anywhere).
"""

from __future__ import annotations

import os

from .data import load_problems
from .files import STORE_DIR
from .params import Params


def preflight(params: Params) -> None:
    """Raise the user error a run would hit first (DataError, StoreError, ParamsError); else return."""
    from .client import api_key_for, probe
    from .sample import NO_REQUESTS_ENV, missing_jobs, plan
    from .store import ResponseStore, StoreError

    problems = load_problems(params)  # every row checked; nothing written
    store = ResponseStore(STORE_DIR, "sample", readonly=True)  # reads (and checks) every shard
    # Calibration asks for sample 0 of each problem and budget: a subset of the sample plan.
    jobs = plan(params, problems, params.pool_size)
    missing = missing_jobs(params, jobs, store)
    if not missing:
        return
    if os.environ.get(NO_REQUESTS_ENV):
        raise StoreError(
            f"run: {len(missing)} of {len(jobs)} samples are missing from {STORE_DIR}/ and {NO_REQUESTS_ENV} "
            "is set, so nothing may be requested; unset it to run the model, or restore the store"
        )
    if params.model.is_embedded:
        return  # the embedded server needs no key and is started by the stage that needs it
    api_key_for(params.model, params.model.base_url)
    probe(params.model.base_url)
