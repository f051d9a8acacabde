"""``meshlib demo``: the Bookinfo story, told by meshlib.

For now it loads Istio's Bookinfo samples and prints what each VirtualService would do.
"""

from __future__ import annotations

from importlib import resources

from meshlib._compile import Workload, compile_table
from meshlib.config import read_yaml

__all__ = ["run_demo"]

_STEPS = (
    "destination-rule-all.yaml",
    "virtual-service-all-v1.yaml",
    "virtual-service-reviews-80-20.yaml",
    "virtual-service-reviews-test-v2.yaml",
)


def _load(name: str) -> str:
    return resources.files("meshlib._demo_data").joinpath(name).read_text(encoding="utf-8")


def run_demo() -> int:
    """Run the demo; returns the exit status."""
    rules = _load(_STEPS[0])
    for step in _STEPS[1:]:
        found = read_yaml(rules + "\n---\n" + _load(step), source=step).raise_for_errors()
        table = compile_table(found.resources, Workload())
        print(f"== {step}")
        for host, virtual_host in sorted(table.virtual_hosts.items()):
            for route in virtual_host.routes:
                when = " or ".join(str(m) for m in route.spec.match) or "any request"
                targets = route.targets.targets if route.targets else ()
                total = sum(t.weight for t in targets)
                split = ", ".join(
                    f"{t.subset or '(all)'} {100 * t.weight / total:.0f}%" for t in targets
                )
                print(f"  {host}: {when} -> {split}")
    return 0
