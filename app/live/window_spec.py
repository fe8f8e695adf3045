"""What a served bundle needs from a feed: the feature spec, column order and lookback.

The bundle's ``feature_spec`` is ``FeatureSpec.to_dict()``, plus ``news_impact`` when it was
trained with the fold-fitted news-impact columns (app/tuning/walkforward.fill_news_impact);
then its ``feature_names`` end with ``IMPACT_COLUMNS`` and the feed rebuilds them from the
stored ridge (``{"fitted": false}``: too few training headlines, the columns are 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.errors import InputError
from app.features.spec import FeatureSpec
from app.text.impact import IMPACT_COLUMNS, NewsImpactModel


@dataclass(frozen=True)
class WindowSpec:
    spec: FeatureSpec
    lookback: int
    feature_names: tuple[str, ...]
    impact_columns: bool = False  # the windows end with IMPACT_COLUMNS
    impact_model: NewsImpactModel | None = None  # None with impact_columns: zeros

    def __post_init__(self) -> None:
        if not isinstance(self.lookback, int) or self.lookback < 1:
            raise InputError(f"lookback={self.lookback!r}: must be an integer >= 1")
        expected = self.spec.feature_names + (IMPACT_COLUMNS if self.impact_columns else ())
        if tuple(self.feature_names) != expected:
            extra = [n for n in self.feature_names if n not in expected]
            missing = [n for n in expected if n not in self.feature_names]
            raise InputError(
                f"feature_names: do not follow the feature spec (unknown {extra[:5]}, "
                f"missing {missing[:5]}, or another order)"
            )

    @classmethod
    def for_spec(cls, spec: FeatureSpec, lookback: int) -> WindowSpec:
        return cls(spec, lookback, spec.feature_names)

    @classmethod
    def from_bundle(cls, bundle: Any) -> WindowSpec:
        """From a ``ModelBundle``; InputError when its spec cannot rebuild its columns."""
        raw = dict(bundle.feature_spec or {})
        if not raw:
            raise InputError("bundle.feature_spec: empty; the model cannot be served by a feed")
        impact = raw.pop("news_impact", None)
        spec = FeatureSpec.from_dict(raw)
        has_columns = tuple(bundle.feature_names[-len(IMPACT_COLUMNS) :]) == IMPACT_COLUMNS
        if has_columns and impact is None:
            raise InputError(
                "bundle.feature_spec.news_impact: missing, but feature_names end with "
                f"{list(IMPACT_COLUMNS)}; the impact columns cannot be rebuilt"
            )
        model = None
        if impact is not None and impact.get("fitted"):
            model = NewsImpactModel.from_dict(impact)
        return cls(spec, int(bundle.lookback), tuple(bundle.feature_names), has_columns, model)
