"""How a run's episodes are scored, and the seeds its evaluation and validation episodes use."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

EVAL_SEED_OFFSET = 10_000  # evaluation episodes use seed + this, apart from the training stream
# Validation rounds (which choose the weights to evaluate) use their own episodes, so that the
# evaluation stays an independent measurement of the chosen weights.
VALIDATION_SEED_OFFSET = 20_000


class Episodes(Protocol):
    """What scoring reads of played episodes (an agent's recorder or a scripted player's log)."""

    # Read-only properties: a plain attribute would be settable, and so would only match a
    # `Sequence` attribute exactly, not the players' and recorder's lists.
    @property
    def returns(self) -> Sequence[float]: ...

    @property
    def lengths(self) -> Sequence[int]: ...

    @property
    def final_infos(self) -> Sequence[dict]: ...


def score_episodes(env: Any, played: Episodes) -> tuple[float, str]:
    """The game's own score if its env class defines one (Catch: catch rate), else mean return."""
    game = type(env.unwrapped)
    scorer = getattr(game, "score_episodes", None)
    if scorer is None:
        return float(np.mean(played.returns)), "mean_return"
    return float(scorer(played.final_infos)), str(getattr(game, "score_name", "score"))


def crash_counts(final_infos: Sequence[dict]) -> dict[str, int]:
    """How many episodes ended on each crash cause a game reports in its last `info` (CAVE:
    ceiling, floor, block), most frequent first; {} for games that report none."""
    counts = Counter(str(info["crash"]) for info in final_infos if info.get("crash") is not None)
    return dict(counts.most_common())


def episodes_result(played: Episodes, score: float, score_name: str) -> dict[str, Any]:
    """What a summary keeps of played episodes: the score, the mean return, each episode's return
    and length, and what the episodes crashed into (only for games that name it)."""
    result: dict[str, Any] = {
        "score": score,
        "score_name": score_name,
        "mean_return": float(np.mean(played.returns)),
        "returns": list(played.returns),
        "lengths": list(played.lengths),
    }
    crashes = crash_counts(played.final_infos)
    if crashes:
        result["crashes"] = crashes
    return result


def counts_text(counts: dict[str, int], separator: str = ", ") -> str:
    """Crash counts as text: "block 12, ceiling 5" ("" for none)."""
    return separator.join(f"{cause} {n}" for cause, n in counts.items())


def crashes_text(result: dict[str, Any]) -> str:
    """The text "; crashes: block 12, ceiling 5" for a result that counted them, else ""."""
    crashes = result.get("crashes")
    return "; crashes: " + counts_text(crashes) if crashes else ""
