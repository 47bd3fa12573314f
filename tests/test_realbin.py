"""The real-binary helpers start, answer and stop."""

import json
import urllib.request


def test_prometheus_starts_and_evaluates(prometheus_factory):
    prom = prometheus_factory("global: {scrape_interval: 1s}\n")
    with urllib.request.urlopen(f"{prom.url}/api/v1/query?query=vector(42)") as r:
        body = json.load(r)
    assert body["data"]["result"][0]["value"][1] == "42"


def test_alertmanager_starts(alertmanager_factory):
    am = alertmanager_factory("route: {receiver: none}\nreceivers: [{name: none}]\n")
    with urllib.request.urlopen(f"{am.url}/api/v2/status") as r:
        body = json.load(r)
    assert "name: none" in body["config"]["original"]
