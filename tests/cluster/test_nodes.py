"""The cluster fixture itself: three nodes of one database see each other."""
import json

from gust_e2e import run_gust


def test_three_nodes_join_one_cluster(cluster):
    _, nodes = cluster(3)
    out = run_gust(nodes[2], "cluster", "status", "--json", cwd=nodes[2].state_dir)
    seen = {n["name"]: n for n in json.loads(out.stdout)["nodes"]}
    assert set(seen) == {"n1", "n2", "n3"}
    assert all(n["state"] == "up" for n in seen.values()), seen
    assert {n["advertise"] for n in seen.values()} == {e.url for e in nodes}
