"""``--max-ops-per-s`` (sync --mode scan, verify): the option, and the line that reports what
the limiter did and the source's latency meanwhile."""

from __future__ import annotations

from typing import Annotated, Any

import typer

MaxOpsPerS = Annotated[float | None, typer.Option(
    "--max-ops-per-s", metavar="N",
    help="At most N commands a second to the source (a production primary): scan mode's "
         "reads (per shard of a cluster) and verify's; its PING latency is reported.")]


def throttle_line(throttle: dict[str, Any], latency: dict[str, Any]) -> str:
    """``source reads: 12,000 at most 2,000/s over 6.0 s (waited 5.2 s); source latency
    (PING, 7 samples): min 0.1 / median 0.2 / max 0.9 ms``."""
    line = (f"source reads: {throttle['ops']:,} at most {throttle['max_ops_per_s']:,g}/s over "
            f"{throttle['span_s']:.1f} s (waited {throttle['waited_s']:.1f} s)")
    if latency.get("samples"):
        line += (f"; source latency (PING, {latency['samples']} samples): min "
                 f"{latency['min_ms']:.2f} / median {latency['median_ms']:.2f} / max "
                 f"{latency['max_ms']:.2f} ms")
    return line
