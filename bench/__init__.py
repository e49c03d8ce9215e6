"""bennettbot's benchmarks: ``python -m bench`` runs them and prints figures.

Each benchmark is a module with ``async def run(root: Path, quick: bool) ->
list[Line]`` (or another function of that shape, named after a colon:
``"module:function"``) and runs in a worker process of its own
(``bench.worker``), so that memory figures and leftovers of one never weigh
on another. See ``bench/README.md``.
"""

# name → module (or module:function); the order is the order they run in.
BENCHMARKS: dict[str, str] = {
    "dispatch_latency": "bench.latency",
    "throughput": "bench.throughput",
    "memory": "bench.memory",
    "ssh": "bench.ssh",
    "slack_acks_steady": "bench.slack_acks:run_steady",
    "slack_acks_burst": "bench.slack_acks:run_burst",
    "slack_mention": "bench.slack_mention",
    "idle_all_roles": "bench.idle",
    "web_check": "bench.web:run_check",
    "web_ping": "bench.web:run_ping",
    "web_merged_pr": "bench.web:run_merged_pr",
    "web_redelivery": "bench.web:run_redelivery",
    "split_roles": "bench.split_roles",
    "history": "bench.history",
    "progress": "bench.progress",
    "app_home": "bench.history:run_home",
}
