"""Preflight of `harness run` and `harness reproduce`: every check that needs no write and no paid request.

Why: a run is fetch -> calibrate -> sample -> vote -> plot. Checked stage by stage, a damaged store or an
unreachable server would only show up after `fetch` had rewritten its outputs. Here, before any stage,
the dataset is read and checked row by row, the store is read (never created), and only when some
response is missing is the endpoint checked: the key variable first, then one probe. A warm store needs
neither a key nor a server, so neither is asked for (that is what makes a replay work anywhere).
"""

from __future__ import annotations

from .data import load_problems
from .files import store_dir
from .params import Params, load_params
from .requests.chain import check_may_request, missing_jobs
from .requests.store import ResponseStore
from .servers.embedded import check_installed, check_native_budget, model_for


def missing_samples(params: Params) -> tuple[int, int]:
    """(missing, planned): samples whose responses the store lacks, walked offline (nothing sent or written).

    Calibration asks for sample 0 of each problem and budget: a subset of the sample plan, so the sample
    plan covers every request a run makes.
    """
    from .stages.sample import (
        plan,  # the sample stage, with the HTTP client: only when there is a plan to walk
    )

    problems = load_problems(params)  # every row checked; nothing written
    store = ResponseStore(store_dir(), "sample", readonly=True)  # reads (and checks) every shard
    jobs = plan(params, problems, params.pool_size)
    return len(missing_jobs(params, jobs, store)), len(jobs)


def needs_embedded_model(params_path: str = "params.yaml") -> bool:
    """Will `harness reproduce` have to start the embedded model? (`nox -s reproduce` installs it only then.)

    Any problem (bad params, damaged store) answers False: `harness reproduce` itself then reports it in
    its one clear line, which is better than a traceback from here.
    """
    return bool(embedded_model_needed(params_path))


def embedded_model_needed(params_path: str = "params.yaml") -> str:
    """The name of the embedded model `harness reproduce` will have to start, or "" when none is needed
    (nox installs that model's packages only then; any problem answers "", see `needs_embedded_model`)."""
    try:
        params = load_params(params_path)
        return params.model.name if params.model.is_embedded and missing_samples(params)[0] > 0 else ""
    except Exception:  # noqa: BLE001 - harness reproduce itself reports it, in one clear line
        return ""


def preflight(params: Params) -> None:
    """Raise the user error a run would hit first (DataError, StoreError, ParamsError); else return."""
    from .requests.client import api_key_for, probe

    missing, planned = missing_samples(params)
    if not missing:
        return
    check_may_request("run", missing, planned)
    if params.model.is_embedded:
        # no key, and the stage that needs it starts the server; but its packages must be there now
        why = f"run: {missing} of {planned} samples are missing from {store_dir()}/"
        if params.budgets.method == "thinking":
            check_native_budget(why)
        check_installed(why, model_for(params.model.name))
        return
    api_key_for(params.model, params.model.base_url)
    probe(params.model.base_url)
