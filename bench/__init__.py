"""bennettbot's benchmarks: ``python -m bench`` runs them and prints figures.

Each benchmark is a module with ``async def run(root: Path, quick: bool) ->
list[Line]`` and runs in a worker process of its own (``bench.worker``), so
that memory figures and leftovers of one never weigh on another. See
``bench/README.md``.
"""

# name → module; the order is the order they run in.
BENCHMARKS: dict[str, str] = {
    "dispatch_latency": "bench.latency",
    "throughput": "bench.throughput",
    "memory": "bench.memory",
    "ssh": "bench.ssh",
}
