"""Is NATS better for this traffic? A verdict from the Milvus NATS article's pub/sub figures.

Source: Milvus blog, "Milvus embraces NATS messaging" (Nov 2023; Milvus 2.3, M1 Pro, 16 GB),
50 ops each, seconds per op. Below ~64 KB per message RocksMQ wins; above, NATS wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from migrator.rocksmq.inspect import LARGE_MESSAGE_BYTES, RocksmqStats

ARTICLE = 'Milvus blog "Milvus embraces NATS messaging" (2023)'
FIGURES_LARGE = (
    "5MB*100: NATS 1.65 s/op vs RocksMQ 2.48",
    "1MB*500: NATS 2.25 vs 2.55",
    "64KB*10000: NATS 2.13 vs 3.25",
)
FIGURE_SMALL = "1KB*50000: NATS 2.63 s/op vs RocksMQ 0.90"
FIGURE_MEMORY = "NATS used 0.6-4.3 GB of memory vs RocksMQ 0.2-1.2 GB"
FIGURE_SEARCH = "search at 100M vectors: 20.17 ms (NATS) vs 23.55 ms (RocksMQ), similar below 100M"

# Verdict thresholds on the share of BYTES: pub/sub cost follows the bytes moved, while message
# counts are dominated by tiny time-tick messages on every channel.
MAJORITY = 0.5


@dataclass
class Advice:
    verdict: str  # "nats" | "rocksmq" | "either" | "no-data"
    share_messages_over_64kb: float
    share_bytes_over_64kb: float
    share_bytes_under_1kb: float
    exact: bool  # from a deep scan, or estimated from samples
    paragraph: str
    figures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "share_messages_over_64kb": round(self.share_messages_over_64kb, 4),
            "share_bytes_over_64kb": round(self.share_bytes_over_64kb, 4),
            "share_bytes_under_1kb": round(self.share_bytes_under_1kb, 4),
            "exact": self.exact,
            "paragraph": self.paragraph,
            "figures": self.figures,
        }


def _percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def advice(stats: RocksmqStats) -> Advice:
    """The share of messages and bytes at or above 64 KB, and a one-paragraph verdict citing the article."""
    histogram = stats.histogram
    messages, total_bytes = histogram.total_messages(), histogram.total_bytes()
    if messages == 0 or total_bytes == 0:
        return Advice(
            verdict="no-data",
            share_messages_over_64kb=0.0,
            share_bytes_over_64kb=0.0,
            share_bytes_under_1kb=0.0,
            exact=stats.exact,
            paragraph=(
                "RocksMQ holds no messages, so its traffic says nothing about which queue is faster. "
                f"Per the {ARTICLE}, the remaining difference is {FIGURE_MEMORY}, and {FIGURE_SEARCH}."
            ),
            figures=[FIGURE_MEMORY, FIGURE_SEARCH],
        )
    share_messages = histogram.messages_at_least(LARGE_MESSAGE_BYTES) / messages
    share_bytes = histogram.bytes_at_least(LARGE_MESSAGE_BYTES) / total_bytes
    share_small = histogram.bytes["<1KB"] / total_bytes
    basis = "measured over every message" if stats.exact else "estimated from the newest messages of each topic"
    shares = (
        f"{_percent(share_messages)} of the {messages} messages and {_percent(share_bytes)} of the "
        f"bytes are 64 KB or larger ({basis})"
    )
    if share_bytes >= MAJORITY:
        verdict, figures = "nats", [*FIGURES_LARGE, FIGURE_MEMORY]
        reason = (
            f"most bytes travel in large messages, where NATS was faster in the {ARTICLE}: "
            f"{'; '.join(FIGURES_LARGE)}. The price is memory: {FIGURE_MEMORY}"
        )
    elif share_small >= MAJORITY:
        verdict, figures = "rocksmq", [FIGURE_SMALL, FIGURE_MEMORY]
        reason = (
            f"{_percent(share_small)} of the bytes are in messages under 1 KB, where RocksMQ was about "
            f"three times faster in the {ARTICLE} ({FIGURE_SMALL}) and is lighter ({FIGURE_MEMORY})"
        )
    else:
        verdict, figures = "either", [FIGURE_SMALL, FIGURES_LARGE[-1], FIGURE_MEMORY]
        reason = (
            f"the traffic is mixed: the {ARTICLE} has RocksMQ ahead for small messages ({FIGURE_SMALL}) and "
            f"NATS ahead from 64 KB ({FIGURES_LARGE[-1]}), so neither queue should be clearly faster; "
            f"RocksMQ is lighter ({FIGURE_MEMORY})"
        )
    paragraph = (
        f"{shares}. Verdict: {verdict}: {reason}. Search latency hardly depends on the queue "
        f"({FIGURE_SEARCH}). The figures are from one machine and Milvus 2.3; treat them as a direction, not a promise."
    )
    return Advice(verdict, share_messages, share_bytes, share_small, stats.exact, paragraph, figures)
