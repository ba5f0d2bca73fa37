"""The API's Prometheus metrics (``GET /metrics``): each request counted once in the duration
histogram, labelled with its route template (never the ids in the path) and status."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import ADMIN, Api

SHOW = "/v2/lbaas/loadbalancers/{lb_id}"


def counts(api: Api) -> dict[tuple[str, str, str], float]:
    response = api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "l3dist_api_request_duration_seconds_count":
                labels = sample.labels
                found[(labels["method"], labels["route"], labels["status"])] = sample.value
    return found


def test_requests_are_counted_by_route_template_and_status(api: Api) -> None:
    before = counts(api)
    missing = "00000000-0000-4000-8000-000000000000"
    assert api.client.get(f"/v2/lbaas/loadbalancers/{missing}", headers=ADMIN).status_code == 404
    assert api.client.get(f"/v2.0/lbaas/loadbalancers/{missing}", headers=ADMIN).status_code == 404
    assert api.client.get("/v2/lbaas/loadbalancers", headers=ADMIN).status_code == 200
    assert api.client.get("/no/such/path", headers=ADMIN).status_code == 404
    after = counts(api)

    def added(key: tuple[str, str, str]) -> float:
        return after.get(key, 0) - before.get(key, 0)

    assert added(("GET", SHOW, "404")) == 2  # /v2.0 is the same route
    assert added(("GET", "/v2/lbaas/loadbalancers", "200")) == 1
    assert added(("GET", "unmatched", "404")) == 1
    assert not any(missing in route for _, route, _ in after)  # ids never become labels
