"""The params.yaml schema: every key, its type, its allowed values, and the one-line messages users see.

Why one module: a typo in params.yaml must cost nothing. Everything is checked here, before any stage
touches a file or sends a request, and every complaint names the key, the value and what is allowed.
"""

from __future__ import annotations

import difflib
import warnings
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .budget_axis import EFFORT_LEVELS, Budget, as_budget

EMBEDDED = "embedded"
NO_KEY = "none"  # model.api_key_env: the server needs no key, said on purpose (a keyless vLLM on a GPU node)
REASONING_GYM_PREFIX = "reasoning_gym:"
# `data.source` names of the benchmarks data.CATALOG describes (a test keeps them equal)
NAMED_DATASETS = ("aime2024", "aime2025", "math500", "gsm8k")

# The seed experiment's prompt (o1-mini on AIME 2024), with {problem} and {budget} substituted.
SEED_PROMPT = (
    "You are a math problem solver. I will give you a problem from the American Invitational Mathematics "
    "Examination (AIME). At the end, provide the final answer as a single integer.\n\n"
    "Important: You should try your best to use around {budget} tokens in your reasoning steps.\n"
    "If you feel like you are finished early, spend the extra tokens trying to double check your work "
    "until you are absolutely sure that you have the correct answer.\n"
    "Here's the problem:\n\n{problem}\n\n"
    "Solve this problem, use around {budget} tokens in your reasoning, and provide the final answer as a "
    "single integer.\n"
)

# Budget forcing's instruction: the model reasons freely, the harness cuts it at the budget.
FORCING_PROMPT = (
    "Solve the following problem. Reason step by step, then give the final answer in \\boxed{}.\n\n"
    "{problem}"
)


class ParamsError(ValueError):
    """A params.yaml problem, already phrased as the one line the user should read."""


class _Section(BaseModel):
    # strict: YAML already types its values, so `samples: yes` (a bool) or `samples: "4"` (a string) is a
    # mistake to report, not something to coerce into 1 or 4 behind the user's back.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ModelParams(_Section):
    base_url: str | list[str] = EMBEDDED  # one endpoint, or a list of replicas serving the same model
    name: str = "qwen2.5-coder-0.5b-instruct"
    api_key_env: str | None = None
    # a key of chain.CHAT_TEMPLATES (a test keeps them equal); the think-tag ones make `forcing` s1-style
    # chatml-think: prompted thinking (a system turn asking for <think> </think>, "<think>\n" prefilled) for
    # chat models never trained on think tags
    chat_template: Literal["chatml", "chatml-think", "qwen3", "deepseek-r1"] = "chatml"
    request_timeout: float = Field(default=600.0, gt=0)
    max_retries: int = Field(default=4, ge=0)
    backoff_base: float = Field(default=0.5, ge=0)
    backoff_max: float = Field(default=30.0, ge=0)

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | list[str]) -> str | list[str]:
        urls = v if isinstance(v, list) else [v]
        if not urls:
            raise ValueError("must list at least one endpoint")
        if isinstance(v, list) and EMBEDDED in v:
            raise ValueError(f"'{EMBEDDED}' is a single endpoint; it cannot be part of a list")
        for url in urls:
            if url != EMBEDDED and not url.startswith(("http://", "https://")):
                raise ValueError(f"must be '{EMBEDDED}' or http(s):// URLs of OpenAI-compatible endpoints")
        if len(set(urls)) != len(urls):
            raise ValueError("lists the same endpoint twice")
        return [u.rstrip("/") for u in v] if isinstance(v, list) else v.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and (not v.replace("_", "").isalnum() or v[0].isdigit()):
            raise ValueError(
                "must be the NAME of an environment variable (e.g. OPENAI_API_KEY), never the key itself"
            )
        return v

    @property
    def is_embedded(self) -> bool:
        return self.base_url == EMBEDDED

    @property
    def key_variable(self) -> str | None:
        """The environment variable holding the key, or None: not set, or `none` (no key on purpose)."""
        return None if self.api_key_env in (None, NO_KEY) else self.api_key_env

    @property
    def endpoints(self) -> list[str]:
        """Every endpoint requests may go to (replicas of one deployment, or a single URL)."""
        return list(self.base_url) if isinstance(self.base_url, list) else [self.base_url]


class DataParams(_Section):
    source: str = "reasoning_gym:basic_arithmetic"
    limit: int | None = Field(default=None, gt=0)
    split: str = "test"
    seed: int = 0
    config: dict[str, Any] = Field(default_factory=dict)
    # integer: every gold answer must be an integer (AIME); auto: integer when the source name says aime
    answer_type: Literal["auto", "integer", "any"] = "auto"
    path: str | None = None  # a named dataset (aime2024, aime2025, math500, gsm8k) read from a local copy

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must name a Hugging Face dataset id, reasoning_gym:<task>, or a .jsonl file")
        prefix = v.split(":", 1)[0] + ":" if ":" in v else ""
        if prefix and prefix != REASONING_GYM_PREFIX and not looks_like_local_file(v):
            # Hub ids never contain ':', so this is a misspelt scheme that would silently go to the Hub.
            close = difflib.get_close_matches(prefix, [REASONING_GYM_PREFIX], n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(
                f"unknown source prefix {prefix!r}{hint}; allowed: a Hugging Face dataset id, "
                f"{REASONING_GYM_PREFIX}<task>, or a .jsonl file"
            )
        return v


class BudgetParams(_Section):
    method: Literal["prompt", "forcing", "cap", "thinking", "effort"] = "forcing"
    # token counts, or for `effort` the reasoning_effort levels (e.g. [low, medium, high])
    requested: list[Budget] = Field(default_factory=lambda: list[Budget]([16, 32, 64, 128, 256]))
    prompt_template: str | None = None
    answer_cue: str = "\n\nFinal answer: \\boxed{"
    answer_tokens: int = Field(default=16, gt=0)
    max_tokens: int | None = Field(default=None, gt=0)
    wait: bool = False
    cap_field: Literal["max_completion_tokens", "max_tokens"] = "max_completion_tokens"
    thinking_body: dict[str, Any] = Field(
        default_factory=lambda: {"thinking": {"type": "enabled", "budget_tokens": "{budget}"}}
    )
    wait_cue: str = "\nWait,"
    max_waits: int = Field(default=8, ge=0)
    # a server family's own thinking-budget field (harness/requests/thinking.py PRESETS, docs/servers.md); null: the
    # `thinking_body` template (method thinking) or plain `reasoning_effort` (method effort)
    thinking_preset: Literal["vllm", "sglang", "llamacpp", "anthropic", "gemini", "openai"] | None = None

    @field_validator("requested")
    @classmethod
    def _budgets(cls, v: list[Budget], info: ValidationInfo) -> list[Budget]:
        if not v:
            raise ValueError("must list at least one token budget")
        if info.data.get("method") == "effort":
            return _effort_levels(v)
        for i, b in enumerate(v):
            if isinstance(b, str):
                hint = (" (an effort level: set budgets.method: effort)" if b in EFFORT_LEVELS
                        else "")
                # ValueError, not TypeError: pydantic turns only ValueError into a validation message
                raise ValueError(f"[{i}] = {b!r}: budgets must be positive integers (token counts){hint}")  # noqa: TRY004
            if b <= 0:
                raise ValueError(f"[{i}] = {b}: budgets must be positive integers")
        for i in range(1, len(v)):
            if v[i] <= v[i - 1]:  # type: ignore[operator]
                raise ValueError(f"[{i}] = {v[i]}: budgets must be strictly increasing")
        return v

    @field_validator("prompt_template")
    @classmethod
    def _template(cls, v: str | None) -> str | None:
        if v is not None and "{problem}" not in v:
            raise ValueError("must contain the placeholder {problem}")
        return v


def _effort_levels(v: list[Budget]) -> list[Budget]:
    """`effort` budgets are reasoning_effort levels, least to most, each once."""
    for i, b in enumerate(v):
        if not isinstance(b, str) or b not in EFFORT_LEVELS:
            close = difflib.get_close_matches(str(b), EFFORT_LEVELS, n=1) if isinstance(b, str) else []
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(f"[{i}] = {b!r}: method effort takes reasoning_effort levels{hint}; "
                             f"allowed, least to most: {', '.join(EFFORT_LEVELS)}")
    for i in range(1, len(v)):
        if EFFORT_LEVELS.index(str(v[i])) <= EFFORT_LEVELS.index(str(v[i - 1])):
            raise ValueError(f"[{i}] = {v[i]!r}: effort levels must be listed least to most, each once "
                             f"({', '.join(EFFORT_LEVELS)})")
    return v


class CalibrateParams(_Section):
    problems: int | None = Field(default=None, gt=0)


class SamplingParams(_Section):
    # one pool size for every budget, or a pool per budget ({16: 8, 256: 32}): every (budget, k) with k up
    # to the budget's pool becomes a point of the grid (maj@k, pass@k), from which the frontier is read
    samples: int | dict[Budget, int] = 4
    vote_samples: int | None = Field(default=None, gt=0)
    concurrency: int = Field(default=2, gt=0)
    n_per_request: int = Field(default=1, gt=0)
    seed: int = 0
    # null = not sent: OpenAI's reasoning models (o-series, gpt-5) reject any temperature/top_p in the request
    temperature: float | None = Field(default=0.7, ge=0, le=2)
    top_p: float | None = Field(default=1.0, gt=0, le=1)
    # live: one HTTP request per response; batch: the missing requests go through OpenAI's Batch API
    # (half price, answered within 24 h; harness/requests/batch.py), in rounds for multi-request chains
    mode: Literal["live", "batch"] = "live"
    batch_poll_s: float = Field(default=30.0, gt=0)  # batch: seconds between two looks at a batch's status
    # ask for token log-probabilities (chat: logprobs + top_logprobs 0; completions: logprobs 1) and keep
    # them in the store, for the confidence-weighted vote (harness/analysis/confidence.py). Changes every request,
    # so the store pays for them once more. Never sent under `effort` (OpenAI's reasoning models reject it).
    logprobs: bool = False
    # stream each live response (server-sent events) instead of waiting for the whole body: a long thought
    # is minutes of silence that proxies and load balancers cut. The stored record and its key are exactly
    # a non-streamed response's (requests/client.py), so a store serves either setting.
    stream: bool = False

    @field_validator("samples")
    @classmethod
    def _pools(cls, v: int | dict[Budget, int]) -> int | dict[Budget, int]:
        if isinstance(v, int) and v <= 0:
            raise ValueError("Input should be greater than 0")
        if isinstance(v, dict):
            if not v:
                raise ValueError("must be a number (one pool for every budget) or a map budget: pool size")
            for budget, size in v.items():
                if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
                    raise ValueError(f"[{budget}] = {size!r}: a pool size must be a positive integer")
        return v

    @property
    def smallest_pool(self) -> int:
        return min(self.samples.values()) if isinstance(self.samples, dict) else self.samples


class PriceParams(_Section):
    """Dollars per million tokens, for `harness estimate`, the run summary and `metrics.json` (`cost`)."""

    input_per_million: float = Field(default=0.0, ge=0)
    # prompt tokens the provider served from its prompt cache (usage.prompt_tokens_details.cached_tokens);
    # null = priced as ordinary input
    cached_input_per_million: float | None = Field(default=None, ge=0)
    output_per_million: float = Field(default=0.0, ge=0)  # completion tokens, reasoning tokens included
    batch_discount: float = Field(default=0.5, ge=0, lt=1)  # fraction off for batch requests (OpenAI: 0.5)

    @property
    def cached_price(self) -> float:
        return self.input_per_million if self.cached_input_per_million is None else self.cached_input_per_million

    @property
    def is_set(self) -> bool:
        return bool(self.input_per_million or self.output_per_million or self.cached_input_per_million)

    def dollars(self, input_tokens: float, output_tokens: float, cached_input_tokens: float = 0.0,
                batch: bool = False) -> float:
        """What these tokens cost at these prices: the one pricing formula (estimate, summary and metrics
        agree). `input_tokens` counts every prompt token, the cached ones included, as providers report them."""
        full = ((input_tokens - cached_input_tokens) * self.input_per_million
                + cached_input_tokens * self.cached_price + output_tokens * self.output_per_million) / 1e6
        return full * (1 - self.batch_discount) if batch else full


class AdaptiveParams(_Section):
    """Stopping rules replayed on each pool (harness/analysis/adaptive.py, docs/statistics.md "Votes that stop early")."""

    unanimity_window: list[int] = Field(default_factory=lambda: [2, 3])  # stop when the last w answers agree
    posterior_threshold: list[float] = Field(default_factory=lambda: [0.9, 0.95])  # P(leader is the majority)
    posterior_prior: float = Field(default=1.0, gt=0)  # Beta(a, a) pseudo-counts of the posterior rule
    max_samples: int | None = Field(default=None, gt=0)  # stop here at the latest; null: the pool size
    orderings: int = Field(default=2000, gt=1)  # seeded random orderings where the exact average is too costly

    @field_validator("unanimity_window")
    @classmethod
    def _windows(cls, v: list[int]) -> list[int]:
        for i, w in enumerate(v):
            if w < 1:
                raise ValueError(f"[{i}] = {w}: a window is a positive number of samples")
        if len(set(v)) != len(v):
            raise ValueError("lists a window twice")
        return v

    @field_validator("posterior_threshold")
    @classmethod
    def _thresholds(cls, v: list[float]) -> list[float]:
        for i, p in enumerate(v):
            if not 0.5 < p < 1:
                raise ValueError(f"[{i}] = {p}: a threshold must be above 0.5 (a tie already gives 1/2) and "
                                 "below 1 (never reached)")
        if len(set(v)) != len(v):
            raise ValueError("lists a threshold twice")
        return v


class VoteParams(_Section):
    min_samples: int = Field(default=1, gt=0)
    adaptive: AdaptiveParams = Field(default_factory=AdaptiveParams)
    # Retired: the saturation point is now fitted, with its own interval (docs/statistics.md). Still
    # accepted, so that existing params files and `-S vote.saturation_tolerance=...` scripts keep working,
    # but it changes nothing and says so.
    saturation_tolerance: float | None = None

    @field_validator("saturation_tolerance")
    @classmethod
    def _retired(cls, v: float | None) -> float | None:
        if v is not None:
            warnings.warn(
                "params.yaml: vote.saturation_tolerance is no longer used (the saturation point is fitted, "
                "with its own interval: docs/statistics.md); delete the line",
                stacklevel=2,
            )
        return v


REFERENCES_DIR = Path("data") / "references"


class PlotParams(_Section):
    # A published curve drawn beside the run (hollow markers, no interval: it has no per-problem data):
    # the name of a file in data/references/ (e.g. seed-o1-mini, the seed's o1-mini points), or a path.
    reference: str | None = None

    @field_validator("reference")
    @classmethod
    def _reference_exists(cls, v: str | None) -> str | None:
        if v is None:
            return v
        path = Path(v) if Path(v).suffix else REFERENCES_DIR / f"{v}.json"
        if not path.is_file():
            known = sorted(p.stem for p in REFERENCES_DIR.glob("*.json")) if REFERENCES_DIR.is_dir() else []
            raise ValueError(f"no reference at {path}; known: {', '.join(known) or 'none'} (data/references/), "
                             "or give a path to a reference file")
        return v

    @property
    def reference_path(self) -> Path | None:
        if self.reference is None:
            return None
        return Path(self.reference) if Path(self.reference).suffix else REFERENCES_DIR / f"{self.reference}.json"


class Params(_Section):
    model: ModelParams = Field(default_factory=ModelParams)
    data: DataParams = Field(default_factory=DataParams)
    budgets: BudgetParams = Field(default_factory=BudgetParams)
    calibrate: CalibrateParams = Field(default_factory=CalibrateParams)
    sampling: SamplingParams = Field(default_factory=SamplingParams)
    vote: VoteParams = Field(default_factory=VoteParams)
    prices: PriceParams = Field(default_factory=PriceParams)
    plot: PlotParams = Field(default_factory=PlotParams)

    @model_validator(mode="after")
    def _cross_checks(self) -> Params:
        _check_pools(self.sampling, self.budgets.requested)
        if (self.sampling.vote_samples is not None and isinstance(self.sampling.samples, int)
                and self.sampling.vote_samples < self.sampling.samples):
            raise ValueError(
                f"sampling.vote_samples = {self.sampling.vote_samples}: must be >= sampling.samples "
                f"({self.sampling.samples}); it is the larger pool drawn at the largest budget"
            )
        if self.sampling.mode == "batch" and (self.model.is_embedded or isinstance(self.model.base_url, list)):
            raise ValueError(
                f"sampling.mode = 'batch': needs model.base_url to be one provider's http(s) URL whose Batch API "
                f"takes OpenAI's format (got {self.model.base_url!r}); use sampling.mode: live for the embedded "
                "model and replica lists"
            )
        _check_embedded_model(self.model)
        limit = self.data.limit
        if limit is not None and self.calibrate.problems is not None and self.calibrate.problems > limit:
            raise ValueError(
                f"calibrate.problems = {self.calibrate.problems}: must be <= data.limit ({limit}); "
                "calibration draws from the fetched problems"
            )
        _check_thinking_preset(self)
        pool = self.sampling.smallest_pool
        if limit is not None and self.vote.min_samples > limit * pool:
            # Every point would be refused by the vote stage, after all the requests were paid for.
            raise ValueError(
                f"vote.min_samples = {self.vote.min_samples}: must be <= data.limit x sampling.samples "
                f"({limit} x {pool} = {limit * pool}), the most samples the smallest pool's point can rest on"
            )
        return self

    # --- derived values every stage agrees on -------------------------------------------------------
    @property
    def vote_budget(self) -> Budget:
        """Majority vote runs at the largest budget, as in the seed ("many samples at the largest budget")."""
        return self.budgets.requested[-1]

    def pool_size(self, budget: Budget) -> int:
        """Samples drawn per problem at `budget`: sample indices 0..n-1, each seeded by its index and not
        by n, so raising n later only asks for the new indices (the store keeps the old ones)."""
        samples = self.sampling.samples
        if isinstance(samples, dict):
            return samples[as_budget(budget)]
        if budget == self.vote_budget and self.sampling.vote_samples:
            return self.sampling.vote_samples
        return samples

    @property
    def prompt_template(self) -> str:
        if self.budgets.prompt_template is not None:
            return self.budgets.prompt_template
        return SEED_PROMPT if self.budgets.method == "prompt" else FORCING_PROMPT


def _check_embedded_model(model: ModelParams) -> None:
    """With `base_url: embedded`, `model.name` selects the weights (embedded.MODELS): any other name would
    only fail when the server is started, after the preflight."""
    from .servers.embedded import MODELS

    if model.is_embedded and model.name not in MODELS:
        close = difflib.get_close_matches(model.name, list(MODELS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ValueError(f"model.name = {model.name!r}: not an embedded model{hint}; with model.base_url: "
                         f"embedded, model.name selects the weights: {', '.join(MODELS)}")


def _check_pools(sampling: SamplingParams, requested: list[Budget]) -> None:
    """A per-budget map of pools names exactly the requested budgets (a typo there would silently leave a
    budget without samples, or draw a pool nobody asked for)."""
    if not isinstance(sampling.samples, dict):
        return
    pools = {as_budget(b) for b in sampling.samples}
    wanted = [as_budget(b) for b in requested]
    unknown = [b for b in sampling.samples if as_budget(b) not in wanted]
    if unknown:
        raise ValueError(f"sampling.samples = {sampling.samples!r}: budget {unknown[0]!r} is not in budgets.requested "
                         f"{wanted}; key the map by the requested budgets")
    missing = [b for b in wanted if b not in pools]
    if missing:
        raise ValueError(f"sampling.samples = {sampling.samples!r}: no pool for budget {missing[0]!r}; give every "
                         "budget in budgets.requested a pool size (or one number for all)")
    if sampling.vote_samples is not None:
        raise ValueError(f"sampling.vote_samples = {sampling.vote_samples}: with a pool per budget in "
                         "sampling.samples, set the largest budget's pool there and delete vote_samples")


def _check_thinking_preset(params: Params) -> None:
    """A preset's documented rejections, caught before any token is spent (docs/servers.md cites each)."""
    from .requests.thinking import EFFORT_PRESETS, PRESETS

    b = params.budgets
    name = b.thinking_preset
    if name is None:
        return
    key = f"budgets.thinking_preset = {name!r}"
    if b.method == "effort":
        if name not in EFFORT_PRESETS:
            raise ValueError(f"{key}: method effort sends reasoning_effort levels; presets for it: "
                             f"{', '.join(EFFORT_PRESETS)} (token budgets: set budgets.method: thinking)")
        return
    if b.method != "thinking":
        raise ValueError(f"{key}: applies to budgets.method thinking (token budgets) or effort (levels), "
                         f"not {b.method!r}")
    if name not in PRESETS:
        raise ValueError(f"{key}: OpenAI takes reasoning_effort levels, not token budgets; set "
                         "budgets.method: effort with levels such as [low, medium, high]")
    if b.thinking_body != BudgetParams.model_fields["thinking_body"].get_default(call_default_factory=True):
        raise ValueError(f"{key}: the preset fills the request body; delete budgets.thinking_body (or the preset)")
    preset = PRESETS[name]
    budgets = [int(x) for x in b.requested]
    if budgets[0] < preset.min_budget:
        raise ValueError(f"{key}: budgets.requested[0] = {budgets[0]}: this server rejects thinking budgets "
                         f"below {preset.min_budget} ({preset.source})")
    if preset.max_budget is not None and budgets[-1] > preset.max_budget:
        raise ValueError(f"{key}: budgets.requested[-1] = {budgets[-1]}: above the largest thinking budget "
                         f"this server accepts ({preset.max_budget}; per model, {preset.source})")
    if preset.needs_max_tokens_above_budget and (b.max_tokens is None or b.max_tokens <= budgets[-1]):
        raise ValueError(f"{key}: budgets.max_tokens = {b.max_tokens}: must be set above the largest budget "
                         f"({budgets[-1]}); the server rejects max_tokens <= budget_tokens ({preset.source})")
    if preset.no_temperature and params.sampling.temperature is not None:
        raise ValueError(f"{key}: sampling.temperature = {params.sampling.temperature}: thinking is "
                         "incompatible with temperature changes; set sampling.temperature: null")
    if preset.single_choice and params.sampling.n_per_request != 1:
        raise ValueError(f"{key}: sampling.n_per_request = {params.sampling.n_per_request}: this endpoint "
                         "requires n = 1; set sampling.n_per_request: 1")


def _known_keys(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def _section_model(section: str) -> type[BaseModel] | None:
    field = Params.model_fields.get(section)
    return field.annotation if field is not None else None  # type: ignore[return-value]


def _describe(err: dict[str, Any], raw: dict[str, Any]) -> str:
    """Turn one pydantic error into `key = value: what is allowed`."""
    err = {**err, "loc": _without_union_tags(err["loc"])}
    loc = [str(p) for p in err["loc"]]
    key = _dotted(err["loc"])
    etype = err["type"]
    if etype == "extra_forbidden":
        parent = _section_model(loc[0]) if len(loc) > 1 else Params
        allowed = _known_keys(parent) if parent is not None else []
        close = difflib.get_close_matches(loc[-1], allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        where = f"'{loc[0]}'" if len(loc) > 1 else "the top level"
        return f"{key}: unknown key{hint}; allowed in {where}: {', '.join(allowed)}"
    value: Any = raw
    for p in err["loc"]:
        try:
            value = value[p]
        except (KeyError, IndexError, TypeError):
            value = None
            break
    msg = err["msg"]
    if etype == "literal_error":
        msg = "allowed values: " + err.get("ctx", {}).get("expected", "")
    elif etype == "model_type":
        msg = "must be a mapping of keys (key: value lines indented under it)"
    elif etype == "value_error":
        msg = msg.removeprefix("Value error, ")
        if key == "" and " = " in msg:  # a cross-check: its message already names key and value
            return msg
        if msg.startswith("["):  # an item of a list: keep `key[i] = v: ...`
            return f"{key}{msg}"
    elif msg.startswith("Value error, "):
        msg = msg.removeprefix("Value error, ")
    shown = "missing" if value is None and etype == "missing" else repr(value)
    if key == "model.api_key_env":
        shown = "(value hidden: it may be a key)"
    return f"{key} = {shown}: {msg}"


def _without_union_tags(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """pydantic names the union member it tried (`requested.1.int`); the user wrote `requested[1]`."""
    tags = {"int", "str", "float", "bool", "list[str]", "list[int]"}
    loc = tuple(p for p in loc if not (isinstance(p, str) and p.startswith("dict[")))  # samples: {budget: n}
    while len(loc) > 1 and loc[-1] in tags:
        loc = loc[:-1]
    return loc


def _inside_a_map(err: dict[str, Any]) -> bool:
    """An error about one entry of a map (`samples: {16: '8'}`): more telling than the union's other
    member complaining that the whole map is not a number."""
    loc = [str(p) for p in err["loc"]]
    return any(p.startswith("dict[") for p in loc[:-1])


def _dotted(loc: tuple[Any, ...] | list[Any]) -> str:
    """`budgets.requested[1]`, as the user would write it, not pydantic's `budgets.requested.1`."""
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml; raise ParamsError with a single line naming the problem."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: not found; run from the project root or pass --params PATH")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ParamsError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: must be a mapping of sections (model, data, budgets, sampling, ...)")
    try:
        params = Params.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        first = next((e for e in errors if _inside_a_map(dict(e))), errors[0])
        raise ParamsError(f"{path}: {_describe(dict(first), raw)}") from None
    _check_local_files(params, path)
    return params


def _check_local_files(params: Params, path: Path) -> None:
    local = params.data.path
    if local is not None:
        if params.data.source not in NAMED_DATASETS:
            raise ParamsError(
                f"{path}: data.path = {local!r}: only applies to the named datasets "
                f"({', '.join(NAMED_DATASETS)}); point data.source at the file instead"
            )
        if not Path(local).is_file():
            raise ParamsError(f"{path}: data.path = {local!r}: file not found (a .jsonl or .parquet copy)")
    src = params.data.source
    if looks_like_local_file(src) and not Path(src).exists():
        raise ParamsError(
            f"{path}: data.source = {src!r}: file not found (a local source must be an existing .jsonl file)"
        )


def looks_like_local_file(source: str) -> bool:
    return source.endswith(".jsonl") or source.startswith(("./", "../", "/"))
